"""Online training of a sequence agent on its target task (Vid2Act Algorithm 1, lines 2-24; DreamerV2
from scratch at the same budget).

The loop: prefill the replay with uniform random actions, then alternate `train_every` agent
steps of the (stochastic) policy with one `agent.update` on B windows of T rows drawn uniformly
from the replay, the unfinished episode included. Budget: `ctx.steps` updates. Every finished
episode is appended to `run_dir/replay.zarr` (the crash-safe dataset store), so a killed run resumes
from `run_dir/checkpoints/latest.pt` with its replay; evaluations follow the fixed protocol and go to
`run_dir/eval.csv` (step, episode, eval_seed, return, success), metrics to `run_dir/metrics.csv`.
"""
from __future__ import annotations

import csv
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.contract import Agent
from benchmark.protocol import EvalResult, evaluate
from collectors import store
from collectors.errors import unknown

STEP_KEYS = ("image", "state", "action", "reward", "discount", "is_first", "is_last", "is_terminal", "physics")


@dataclass(frozen=True)
class OnlineConfig:
    """How the agent meets its environment."""

    prefill: int = 5000  # agent steps of uniform random actions before the first update (Alg. 1 line 2)
    train_every: int = 1  # agent steps between updates (200k updates x 1 x action repeat 2 = 400k env steps)
    log_every: int = 100  # updates between metrics.csv rows

    @classmethod
    def preset(cls, name: str) -> "OnlineConfig":
        presets = {"smoke": cls(prefill=16, train_every=1, log_every=5),
                   "quick": cls(prefill=2500, train_every=5, log_every=100), "paper": cls()}
        if name not in presets:
            raise unknown("preset", name, presets)
        return presets[name]


class Replay:
    """The online replay buffer B: finished episodes (persisted) plus the one being collected."""

    def __init__(self, location: Path, env_id: str):
        self.location, self.env_id = str(location), env_id
        self.episodes: list[dict[str, np.ndarray]] = []
        self.current: dict[str, list[np.ndarray]] = {k: [] for k in STEP_KEYS}
        self.writer: store.DatasetWriter | None = None
        if store.exists(self.location):
            data = store.open_dataset(self.location)
            self.episodes = [data.episode(i) for i in range(data.n_episodes)]
            self.writer = store.open_writer(self.location)

    @property
    def steps(self) -> int:
        return sum(len(e["reward"]) for e in self.episodes) + len(self.current["reward"])

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


def _append_csv(path: Path, header: list[str], rows: list[list[Any]]) -> None:
    new = not path.exists()
    with path.open("a", newline="") as f:
        writer = csv.writer(f)
        if new:
            writer.writerow(header)
        writer.writerows(rows)


def log_eval(run_dir: Path, step: int, result: EvalResult) -> None:
    """Append one evaluation to eval.csv."""
    rows = [[step, i, s, float(r), int(bool(ok))]
            for i, (s, r, ok) in enumerate(zip(result.seeds, result.returns, result.successes))]
    _append_csv(run_dir / "eval.csv", ["step", "episode", "eval_seed", "return", "success"], rows)


def train_online(ctx: Any, agent: Agent, cfg: OnlineConfig, batch_size: int, seq_len: int,
                 on_metrics: Callable[[int, dict[str, float]], None] | None = None) -> EvalResult:
    """Train `agent` online on `ctx.make_env()` for `ctx.steps` updates; returns the final evaluation
    (with frames). `on_metrics(update, metrics)` sees every update's metrics (e.g. Vid2Act's weights)."""
    run_dir = Path(ctx.run_dir)
    ckpt = run_dir / "checkpoints" / "latest.pt"
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    env = ctx.make_env()
    replay = Replay(run_dir / "replay.zarr", ctx.env_id)
    updates, rng = 0, np.random.default_rng(ctx.seed)
    if ckpt.exists():
        saved = torch.load(ckpt, map_location="cpu", weights_only=False)
        agent.load_state_dict(saved["agent"])
        updates, rng.bit_generator.state = saved["updates"], saved["rng"]
    make_eval_env = ctx.make_env
    start, last_log, pending = time.time(), updates, []
    try:
        while updates < ctx.steps:
            episode = len(replay.episodes)
            obs = env.reset(seed=ctx.seed * 100_000 + episode)
            replay.add(obs, np.zeros(env.spec.action_dim), 0.0, 1.0, True, False, False, env.physics_state())
            state, total, success, done = None, 0.0, False, False
            while not done and updates < ctx.steps:
                if replay.steps < cfg.prefill:
                    action = rng.uniform(-1, 1, env.spec.action_dim).astype(np.float32)
                else:
                    action, state = agent.act(obs, state)
                obs, reward, terminated, truncated, info = env.step(action)
                done = terminated or truncated
                total, success = total + reward, success or bool(info.get("success", False))
                replay.add(obs, action, reward, info.get("discount", 0.0 if terminated else 1.0), False, done,
                           terminated, env.physics_state())
                if replay.steps < max(cfg.prefill, seq_len) or replay.steps % cfg.train_every:
                    continue
                metrics = agent.update(replay.sample(rng, batch_size, seq_len))
                updates += 1
                if on_metrics is not None:
                    on_metrics(updates, metrics)
                pending.append([updates, replay.steps, *metrics.values()])
                if updates % cfg.log_every == 0 or updates == ctx.steps:
                    sps = (updates - last_log) / max(time.time() - start, 1e-9)
                    _append_csv(run_dir / "metrics.csv", ["step", "env_steps", *metrics], pending)
                    print(f"update {updates}/{ctx.steps}  env steps {replay.steps}  {sps:.2f} updates/s  "
                          + "  ".join(f"{k} {v:.3g}" for k, v in list(metrics.items())[:4]), flush=True)
                    start, last_log, pending = time.time(), updates, []
                if ctx.eval_every and updates % ctx.eval_every == 0 and updates < ctx.steps:
                    log_eval(run_dir, updates, evaluate(agent, make_eval_env, ctx.eval_episodes, ctx.seed))
                if ctx.checkpoint_every and updates % ctx.checkpoint_every == 0:
                    tmp = ckpt.with_suffix(".tmp")
                    torch.save({"agent": agent.state_dict(), "updates": updates, "rng": rng.bit_generator.state}, tmp)
                    tmp.replace(ckpt)
            if done:
                replay.finish({"return": total, "success": success, "seed": ctx.seed * 100_000 + episode})
    finally:
        env.close()
    result = evaluate(agent, make_eval_env, ctx.eval_episodes, ctx.seed, record_frames=True)
    log_eval(run_dir, updates, result)
    return result


def train_from_scratch(ctx: Any, module: Any) -> EvalResult:
    """A DreamerConfig-based sequence method (DreamerV2) trained online from scratch on `ctx.env_id`
    with the same online loop and budget as Vid2Act (the suites' `scratch_methods`)."""
    from collectors.envs import spec

    config = module.Config.preset(ctx.preset, **{"wm.image_size": ctx.image_size, **ctx.overrides})
    agent = module.make_agent(spec(ctx.env_id), config, ctx.device, ctx.seed)
    return train_online(ctx, agent, OnlineConfig.preset(ctx.preset), config.batch_size, config.seq_len)
