"""Random and expert reference returns per task, used to normalise scores and to define "medium".

Sources (documented per entry in `source`):
- DMC expert: approximate returns of converged pixel agents as reported for V-D4RL's expert datasets and
  DrQ-v2's final performance (Lu et al. 2022; Yarats et al. 2021), rounded to 10. They are references,
  not measurements of our SAC agent; a dataset records the eval return its behaviour policy really reached.
- CoWorld transfer tasks keep the stock reward (walker walk / cheetah run), so they use the stock task's
  expert reference; their random returns are measured on the transferred task.
- Meta-World expert: the shipped scripted policy, measured here (mean of 5 episodes, seeds 0-4, 500 steps).
- Random: uniform random actions, measured here (DMC: 10 episodes, seeds 0-9; Meta-World: 5 episodes).
Untabulated tasks are measured on first use (random; Meta-World scripted expert); an untabulated DMC
task's expert reference is the return's upper bound, 1000, and says so in `source`.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from collectors.envs import Env, make, spec

DMC_UPPER_BOUND = 1000.0


@dataclass(frozen=True)
class Reference:
    random: float
    expert: float
    source: str

    def as_attrs(self) -> dict[str, object]:
        return {"random": self.random, "expert": self.expert, "source": self.source}


_DMC = "expert ~V-D4RL expert data / DrQ-v2 final return (approx.); random measured (10 episodes)"
_TRANSFER = "expert = stock task's reference (same reward); random measured on this task (10 episodes)"
_MW = "expert = metaworld scripted policy, measured (5 episodes); random measured (5 episodes)"

TABLE: dict[str, Reference] = {
    "walker_walk": Reference(41.7, 960.0, _DMC),
    "walker_run": Reference(25.3, 770.0, _DMC),
    "walker_stand": Reference(137.4, 980.0, _DMC),
    "cheetah_run": Reference(5.6, 880.0, _DMC),
    "hopper_stand": Reference(1.8, 900.0, _DMC),
    "hopper_hop": Reference(0.02, 300.0, _DMC),
    "quadruped_walk": Reference(197.2, 930.0, _DMC),
    "quadruped_run": Reference(201.3, 800.0, _DMC),
    "walker_downhill": Reference(78.7, 960.0, _TRANSFER),
    "walker_uphill": Reference(25.8, 960.0, _TRANSFER),
    "walker_nofoot": Reference(43.2, 960.0, _TRANSFER),
    "cheetah_downhill": Reference(41.7, 880.0, _TRANSFER),
    "cheetah_uphill": Reference(0.3, 880.0, _TRANSFER),
    "cheetah_nopaw": Reference(9.2, 880.0, _TRANSFER),
    # Meta-World v3 (metaworld 3.1.1, mujoco 3.3.0), measured on this code base
    "mw_window-close": Reference(346.4, 3624.0, _MW),
    "mw_door-close": Reference(51.8, 4446.9, _MW),
    "mw_handle-press": Reference(934.1, 1338.5, _MW),
    "mw_button-press-topdown": Reference(188.7, 3767.1, _MW),
    "mw_drawer-close": Reference(32.5, 4251.6, _MW),
    "mw_button-press": Reference(174.7, 561.6, _MW),
    "mw_stick-push": Reference(9.3, 1237.6, _MW),
    "mw_assembly": Reference(232.1, 4325.4, _MW),
    "mw_door-open": Reference(394.3, 3979.0, _MW),
    "mw_peg-insert-side": Reference(7.1, 3975.4, _MW),
    "mw_pick-place": Reference(5.8, 4296.9, _MW),
    "mw_push": Reference(20.8, 4106.7, _MW),
    "mw_drawer-open": Reference(627.8, 4039.7, _MW),
}


def episode_return(env: Env, act, seed: int) -> tuple[float, bool]:
    """Return and success of one physics-only episode (no rendering) under `act(env)`."""
    env.reset(seed=seed)
    total, success = 0.0, False
    while True:
        reward, terminated, truncated, info = env.step_physics(act(env))
        total += reward
        success |= bool(info["success"])
        if terminated or truncated:
            return total, success


@functools.cache
def reference_returns(env_id: str) -> Reference:
    """The task's random and expert reference returns (tabulated, else measured now)."""
    s = spec(env_id)
    if s.id in TABLE:
        return TABLE[s.id]
    from collectors.policies.scripted import RandomPolicy, ScriptedExpert

    episodes = 5
    with make(s.id) as env:
        rand = RandomPolicy(s.action_dim, np.random.default_rng(0))
        random_return = float(np.mean([episode_return(env, rand.act, i)[0] for i in range(episodes)]))
        if s.suite == "metaworld":
            expert = ScriptedExpert(s.id)
            expert_return = float(np.mean([episode_return(env, expert.act, i)[0] for i in range(episodes)]))
            return Reference(random_return, expert_return, f"measured now ({episodes} episodes each): {_MW}")
    return Reference(random_return, DMC_UPPER_BOUND,
                     f"untabulated: random measured now ({episodes} episodes), expert = DMC upper bound 1000")
