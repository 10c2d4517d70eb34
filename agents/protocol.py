"""The fixed evaluation protocol (DESIGN.md §5), one function for every method.

N episodes (default 10), deterministic policy (`eval_mode=True`), evaluation seeds disjoint from
training seeds, returns + Meta-World success, normalised score from reference returns.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from agents.contract import Agent
from collectors.envs import Env
from collectors.seeds import eval_seeds

EVAL_EPISODES = 10

@dataclass(frozen=True)
class EvalResult:
    """Per-episode returns and success flags; `frames` holds the first episode when recorded."""

    returns: np.ndarray
    successes: np.ndarray
    lengths: np.ndarray
    seeds: list[int]
    frames: np.ndarray | None = field(default=None, repr=False)

    @property
    def mean(self) -> float:
        return float(np.mean(self.returns))

    @property
    def std(self) -> float:
        return float(np.std(self.returns))

    @property
    def success_rate(self) -> float:
        return float(np.mean(self.successes))


def normalized_score(returns: np.ndarray | float, random_return: float, expert_return: float) -> np.ndarray:
    """100 * (R - random) / (expert - random), the D4RL convention."""
    return 100.0 * (np.asarray(returns, np.float64) - random_return) / (expert_return - random_return)


def run_episode(agent: Agent, env: Env, seed: int, eval_mode: bool = True,
                record_frames: bool = False) -> tuple[float, bool, int, np.ndarray | None]:
    """One episode; returns (return, success at any step, length, frames or None)."""
    obs = env.reset(seed=seed)
    state, total, success, length = None, 0.0, False, 0
    frames = [obs["image"]] if record_frames else None
    done = False
    while not done:
        action, state = agent.act(obs, state, eval_mode=eval_mode)
        obs, reward, terminated, truncated, info = env.step(action)
        total += reward
        success |= bool(info.get("success", False))
        length += 1
        done = terminated or truncated
        if record_frames:
            frames.append(obs["image"])
    return total, success, length, (np.stack(frames) if record_frames else None)


def evaluate(agent: Agent, make_env: Callable[[], Env], episodes: int = EVAL_EPISODES,
             training_seed: int = 0, record_frames: bool = False) -> EvalResult:
    """Evaluate `agent` deterministically on `episodes` fixed evaluation seeds."""
    seeds = eval_seeds(episodes, training_seed)
    returns, successes, lengths, frames = [], [], [], None
    env = make_env()
    try:
        for i, seed in enumerate(seeds):
            ret, succ, length, ep_frames = run_episode(agent, env, seed, True, record_frames and i == 0)
            returns.append(ret)
            successes.append(succ)
            lengths.append(length)
            frames = ep_frames if ep_frames is not None else frames
    finally:
        env.close()
    return EvalResult(np.asarray(returns), np.asarray(successes), np.asarray(lengths), seeds, frames)
