"""Online training of a sequence agent on its target task (Vid2Act Algorithm 1, lines 2-24; DreamerV2
from scratch at the same budget).

The loop: prefill the replay with uniform random actions (optionally each held for a random number
of steps: i.i.d. actions at action repeat 2 move a cartpole's cart by under a pixel at 32 px, and a small
model then learns dynamics that ignore the action), then alternate `train_every` agent
steps of the (stochastic) policy with one `agent.update` on B windows of T rows drawn uniformly
from the replay, the unfinished episode included. Budget (`OnlineConfig.budget`): `ctx.steps`
updates, or `ctx.steps` x the task's own action repeat environment frames, prefill included, so that
methods with different prefills, update rates or action repeats see the same frames (`paper`).
metrics.csv logs `env_steps`, the real environment frames so far (agent steps x action repeat, prefill
included). `action_repeat` repeats each action on top of the task's (WPT's Meta-World 2). Every finished
episode is appended to `run_dir/replay.zarr` (the crash-safe dataset store), so a killed run resumes
from `run_dir/checkpoints/latest.pt` with its replay. Checkpoints, metrics.csv, eval.csv (the fixed
evaluation protocol) and the progress bar are agents/training.py's, as in the offline loop.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from agents.contract import Agent, Metrics
from agents.protocol import EvalResult, evaluate
from agents.training import (EVAL_COLUMNS, Checkpointer, CsvLog, MetricsLogger, TrainContext, TrainProgress,
                                _summary, log_eval)
from collectors import store
from collectors.envs import Env, EnvSpec
from collectors.errors import OwbenchError, unknown

STEP_KEYS = ("image", "state", "action", "reward", "discount", "is_first", "is_last", "is_terminal", "physics")


@dataclass(frozen=True)
class OnlineConfig:
    """How the agent meets its environment."""

    prefill: int = 5000  # agent steps of uniform random actions before the first update (Alg. 1 line 2)
    prefill_hold: float = 1.0  # mean agent steps a prefill action is held (geometric); 1 = i.i.d. as in DreamerV2
    train_every: int = 1  # agent steps between updates
    action_repeat: int = 0  # environment frames per agent step; 0 = the task's own (DMC 2, Meta-World 1)
    budget: str = "updates"  # what ctx.steps counts: "updates", or "env_steps" (x the task's action repeat)

    def __post_init__(self) -> None:
        if self.budget not in ("updates", "env_steps"):
            raise unknown("online budget", self.budget, ("updates", "env_steps"))

    @classmethod
    def preset(cls, name: str) -> "OnlineConfig":
        presets = {"smoke": cls(prefill=16, train_every=1), "quick": cls(prefill=2000, train_every=2),
                   "paper": cls(budget="env_steps")}
        if name not in presets:
            raise unknown("preset", name, presets)
        return presets[name]

    def repeat(self, spec: EnvSpec) -> int:
        """How many times the loop repeats each action on top of the task's own action repeat."""
        if not self.action_repeat:
            return 1
        if self.action_repeat % spec.action_repeat:
            raise OwbenchError(f"online.action_repeat {self.action_repeat} is not a multiple of {spec.id}'s action "
                               f"repeat {spec.action_repeat}; set online.action_repeat={spec.action_repeat} or a multiple")
        return self.action_repeat // spec.action_repeat

    def spec(self, spec: EnvSpec) -> EnvSpec:
        """`spec` as the agent meets it: its action repeat (and so its episode length) at this loop's."""
        return replace(spec, action_repeat=spec.action_repeat * self.repeat(spec))

    def make_env(self, make_env: Callable[[], Env]) -> Callable[[], Env]:
        """The loop's environments: `make_env`'s, with each action repeated as `repeat` says."""
        def make() -> Env:
            env = make_env()
            times = self.repeat(env.spec)
            return RepeatedActions(env, times, self.spec(env.spec)) if times > 1 else env

        return make


class RepeatedActions:
    """An environment whose every step repeats the action `times` times: rewards summed, success at
    any of the steps, the episode ends at the first terminal or truncated step."""

    def __init__(self, env: Env, times: int, spec: EnvSpec):
        self.env, self.times, self.spec = env, times, spec

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def step(self, action: np.ndarray) -> tuple[dict[str, np.ndarray], float, bool, bool, dict[str, Any]]:
        total, success = 0.0, False
        for _ in range(self.times):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total, success = total + reward, success or bool(info.get("success", False))
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, {**info, "success": success}


class Replay:
    """The online replay buffer B: finished episodes (persisted) plus the one being collected. With
    `keep=False` finished episodes are only committed, not held (a frozen policy's data, never sampled)."""

    def __init__(self, location: Path, env_id: str, keep: bool = True):
        self.location, self.env_id, self.keep = str(location), env_id, keep
        self.episodes: list[dict[str, np.ndarray]] = []
        self.current: dict[str, list[np.ndarray]] = {k: [] for k in STEP_KEYS}
        self.writer: store.DatasetWriter | None = None
        if store.exists(self.location):
            data = store.open_dataset(self.location)
            self.episodes = [data.episode(i) for i in range(data.n_episodes)] if keep else []
            self.writer = store.open_writer(self.location)

    @property
    def steps(self) -> int:
        return sum(len(e["reward"]) for e in self.episodes) + len(self.current["reward"])

    @property
    def agent_steps(self) -> int:
        """Environment interactions: rows less each episode's reset row."""
        return self.steps - len(self.episodes) - (1 if self.current["reward"] else 0)

    def add(self, obs: dict[str, np.ndarray], action: np.ndarray, reward: float, discount: float,
            first: bool, last: bool, terminal: bool, physics: np.ndarray) -> None:
        """Row t: o_t, a_{t-1} (zeros where first), r_t, discount and the flags."""
        row = {"image": obs["image"], "state": obs["state"], "action": np.asarray(action, np.float32),
               "reward": np.float32(reward), "discount": np.float32(discount), "is_first": first,
               "is_last": last, "is_terminal": terminal, "physics": physics}
        for k in STEP_KEYS:
            self.current[k].append(row[k])

    def finish(self, meta: dict[str, Any]) -> None:
        """Commit the current episode to the store and start a new one."""
        episode = {k: np.stack(v) for k, v in self.current.items()}
        if self.writer is None:
            shapes = {k: episode[k].shape[1:] for k in ("image", "state", "action", "physics")}
            attrs = {"env_id": self.env_id, "quality": "online-replay", "image_size": int(episode["image"].shape[1]),
                     "action_dim": int(episode["action"].shape[1])}
            self.writer = store.create_dataset(self.location, attrs, shapes)
        self.writer.append_episode(episode, meta)
        if self.keep:
            self.episodes.append(episode)
        self.current = {k: [] for k in STEP_KEYS}

    def sample(self, rng: np.random.Generator, batch_size: int, seq_len: int) -> dict[str, np.ndarray]:
        """B windows of T rows, uniform over all windows inside one episode."""
        current = {k: np.stack(v) for k, v in self.current.items()} if self.current["reward"] else None
        episodes = self.episodes + ([current] if current is not None else [])
        windows = np.array([max(len(e["reward"]) - seq_len + 1, 0) for e in episodes], np.float64)
        assert windows.sum() > 0, f"no episode in the replay has {seq_len} rows yet; raise prefill"
        which = rng.choice(len(episodes), batch_size, p=windows / windows.sum())
        starts = [rng.integers(windows[i]) for i in which]
        keys = [k for k in STEP_KEYS if k != "physics"]
        return {k: np.stack([episodes[i][k][s:s + seq_len] for i, s in zip(which, starts)]) for k in keys}


def online_episode(env: Env, agent: Agent, replay: Replay, rng: np.random.Generator, cfg: OnlineConfig,
                   seq_len: int, seed: int, meta: dict[str, Any] | None = None) -> Iterator[bool]:
    """One episode of the online loop (Alg. 1 lines 2 and 16-24): random actions while the replay is shorter
    than `cfg.prefill`, else the agent's (stochastic) actions; every row goes into `replay`. Yields after every
    agent step whether an update is due there; the caller updates and may stop early by leaving the loop (the
    unfinished episode then stays uncommitted). A finished episode is committed, with `meta` in its index entry,
    before its last yield."""
    obs = env.reset(seed=seed)
    replay.add(obs, np.zeros(env.spec.action_dim), 0.0, 1.0, True, False, False, env.physics_state())
    state, total, success, done = None, 0.0, False, False
    action = rng.uniform(-1, 1, env.spec.action_dim).astype(np.float32)
    while not done:
        if replay.steps < cfg.prefill:  # Alg. 1 line 2: random episodes first
            if rng.random() < 1 / cfg.prefill_hold:
                action = rng.uniform(-1, 1, env.spec.action_dim).astype(np.float32)
        else:  # lines 17-23
            action, state = agent.act(obs, state)
        obs, reward, terminated, truncated, info = env.step(action)
        done = terminated or truncated
        total, success = total + reward, success or bool(info.get("success", False))
        replay.add(obs, action, reward, info.get("discount", 0.0 if terminated else 1.0), False, done,
                   terminated, env.physics_state())
        if done:  # line 24
            replay.finish({"return": total, "success": success, "seed": seed, **(meta or {})})
        yield not (replay.steps < max(cfg.prefill, seq_len) or replay.steps % cfg.train_every)


def train_online(ctx: TrainContext, agent: Agent, cfg: OnlineConfig, batch_size: int, seq_len: int,
                 on_update: Callable[[int, Metrics], None] | None = None) -> EvalResult:
    """Train `agent` online on `ctx.make_env()` for the budget `ctx.steps` (`cfg.budget`); returns
    the final evaluation (with frames). `on_update(update, metrics)` sees every update's metrics."""
    ctx.run_dir.mkdir(parents=True, exist_ok=True)
    checkpoints = Checkpointer(ctx.run_dir / "checkpoints")
    saved = checkpoints.load(agent)
    updates, rng = (saved["step"] if saved else 0), np.random.default_rng(ctx.seed)
    if saved:
        rng.bit_generator.state = saved["replay_rng"]
    metrics = MetricsLogger(ctx.run_dir, min(ctx.log_every, max(ctx.steps, 1)), ctx.tensorboard)
    eval_log = CsvLog(ctx.run_dir / "eval.csv", EVAL_COLUMNS)
    for log in (metrics.csv, eval_log):
        log.truncate_after(updates if saved else -1)
    replay = Replay(ctx.run_dir / "replay.zarr", ctx.env_id)
    make_env = cfg.make_env(ctx.make_env)
    env = make_env()
    frames = env.spec.action_repeat  # environment frames per agent step
    frame_budget = ctx.steps * ctx.spec.action_repeat if cfg.budget == "env_steps" else None

    def finished() -> bool:
        """No room left for another update (with a frame budget: the next one, `train_every` agent steps
        on, would pass it; before the first update: the budget is spent)."""
        if frame_budget is None:
            return updates >= ctx.steps
        return (replay.agent_steps + (cfg.train_every if updates else 0)) * frames > frame_budget

    total_updates = ctx.steps if frame_budget is None else \
        max((frame_budget // frames - max(cfg.prefill, seq_len)) // cfg.train_every + 1, 1)
    try:
        with TrainProgress(total_updates, updates, ctx.progress, f"{ctx.method} {ctx.env_id} online") as progress:
            stop = finished()
            while not stop:
                seed = ctx.seed * 100_000 + len(replay.episodes)
                for due in online_episode(env, agent, replay, rng, cfg, seq_len, seed):
                    if not due:
                        stop = not updates and finished()
                    else:
                        update = agent.update(replay.sample(rng, batch_size, seq_len))  # lines 4-15
                        updates += 1
                        stop = last = finished()
                        if on_update is not None:
                            on_update(updates, update)
                        row = metrics.log(updates, update, force=last,
                                          counters={"env_steps": replay.agent_steps * frames})
                        progress.update(updates, _summary(row) if row else None)
                        if ctx.eval_every and updates % ctx.eval_every == 0 and not last:
                            log_eval(ctx.run_dir, updates, evaluate(agent, make_env, ctx.eval_episodes, ctx.seed))
                        if ctx.checkpoint_every and updates % ctx.checkpoint_every == 0 or last:
                            checkpoints.save(updates, agent, replay_rng=rng.bit_generator.state)
                    if stop:
                        break
    finally:
        env.close()
        metrics.close()
    result = evaluate(agent, make_env, ctx.eval_episodes, ctx.seed, record_frames=True)
    eval_log.truncate_after(updates - 1)
    log_eval(ctx.run_dir, updates, result)
    return result


def train_from_scratch(ctx: TrainContext, module: Any, online: OnlineConfig | None = None) -> EvalResult:
    """A DreamerConfig-based sequence method (DreamerV2) trained online from scratch on `ctx.env_id`
    with the same online loop and budget as Vid2Act (the suites' `scratch_methods`); `online`
    defaults to the preset's."""
    from collectors.envs import spec

    config = module.Config.preset(ctx.preset, **{"wm.image_size": ctx.image_size, **ctx.overrides})
    agent = module.make_agent(spec(ctx.env_id), config, ctx.device, ctx.seed)
    return train_online(ctx, agent, online or OnlineConfig.preset(ctx.preset), config.batch_size, config.seq_len)
