"""Training-loop utilities shared by every method: the training context the harness hands a method,
checkpoints that survive a kill, metrics to CSV (+ TensorBoard when asked), evaluation logs and
a rich progress bar with updates/s; and `train_offline`, the generic offline loop.

A run directory holds `checkpoints/latest.pt`, `metrics.csv` (step + one column per metric) and
`eval.csv` (step, episode, eval_seed, return, success). After a kill, `train_offline` resumes from
the last checkpoint and drops CSV rows written after it, so the logs read as one uninterrupted run.
"""
from __future__ import annotations

import csv
import os
import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import Tensor
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from agents.contract import Agent, Metrics
from agents.protocol import EvalResult, evaluate
from collectors import envs
from collectors.envs import Env, EnvSpec

EVAL_COLUMNS = ["step", "episode", "eval_seed", "return", "success"]


@dataclass(kw_only=True)
class TrainContext:
    """Everything the harness tells a method about one training job."""

    method: str  # method name (benchmark/methods.py)
    batch: str = "sequence"  # what the method's update() consumes: "sequence", "transition" or "none"
    env_id: str  # the target task, evaluated under the protocol
    datasets: list[str]  # dataset ids, paths or URLs (the target's first where a method needs one)
    run_dir: Path  # checkpoints/, metrics.csv, eval.csv
    source_env_id: str | None = None  # online source task (CoWorld), else None
    preset: str = "smoke"  # config preset of the method
    steps: int = 1000  # update budget
    eval_every: int = 0  # updates between periodic evaluations; 0 = only the final one
    eval_episodes: int = 10
    checkpoint_every: int = 1000  # updates between checkpoints; 0 = only at the end
    log_every: int = 100  # updates averaged into one metrics.csv row
    seed: int = 0
    device: str = "cpu"
    image_size: int = 64  # side of the observations (datasets and evaluation environments)
    overrides: dict[str, Any] = field(default_factory=dict)  # config fields on top of the preset
    progress: bool = True  # show a rich progress bar
    tensorboard: bool = False  # also write metrics as TensorBoard scalars (needs the tensorboard extra)

    def __post_init__(self) -> None:
        self.run_dir = Path(self.run_dir)
        self.datasets = [str(d) for d in self.datasets]

    def make_env(self, env_id: str | None = None) -> Env:
        """A fresh environment for `env_id` (default: the target) at the job's image size."""
        return envs.make(env_id or self.env_id, image_size=self.image_size)

    @property
    def spec(self) -> EnvSpec:
        return envs.spec(self.env_id)

    def config(self, module: ModuleType) -> Any:
        """`module.Config.preset(preset, **overrides)` (methods resize frames of another size)."""
        return module.Config.preset(self.preset, **self.overrides)


class Checkpointer:
    """`latest.pt` in a folder, written atomically (tmp file + rename) so a kill never corrupts it.
    Holds the step, the agent's state_dict, RNG states and anything extra (tensors and plain Python
    values only: it is read back with `weights_only=True`).

    A checkpoint loads onto the CPU first (`map_location="cpu"`) and the agent's `load_state_dict` copies
    parameters and optimiser moments to wherever the agent lives, while Adam's `step` counters stay on the
    CPU, where Adam expects them (on the GPU every `step` read would be a device sync). So a checkpoint
    written on one device resumes on any other, and on a machine with fewer GPUs."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / "latest.pt"

    def save(self, step: int, agent: Agent, **extra: Any) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        state = {"step": step, "agent": agent.state_dict(), "rng": rng_state(), **extra}
        tmp = self.path.with_suffix(".pt.tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)

    def load(self, agent: Agent) -> dict[str, Any] | None:
        """Restore `agent` (and the RNGs) from the last checkpoint; returns it, or None when there is none."""
        if not self.path.exists():
            return None
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        agent.load_state_dict(state["agent"])
        set_rng_state(state["rng"])
        return state


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch CPU and (per visible GPU) CUDA generator states as tensors and plain values."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"python": random.getstate(), "numpy": [name, torch.from_numpy(keys.astype(np.int64)), int(pos),
                                                    int(has_gauss), float(cached)],
             "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():  # CUDA generators exist only once CUDA is in use
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore `rng_state()`; CUDA generators of GPUs this machine lacks (or all, without a GPU) are skipped."""
    random.setstate(state["python"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"].cpu())
    cuda = state.get("cuda", [])[:torch.cuda.device_count()]
    for index, generator in enumerate(cuda):
        torch.cuda.set_rng_state(generator.cpu(), index)


class CsvLog:
    """An append-only CSV keyed by a `step` column; the header grows when new columns appear."""

    def __init__(self, path: Path, columns: Iterable[str] = ()):
        self.path = Path(path)
        self.columns = list(columns)
        if self.path.exists():
            with open(self.path, newline="") as f:
                self.columns = next(csv.reader(f), self.columns)

    def rows(self) -> list[dict[str, str]]:
        if not self.path.exists():
            return []
        with open(self.path, newline="") as f:
            return list(csv.DictReader(f))

    def append(self, rows: list[dict[str, Any]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        exists = self.path.exists()
        new = [k for row in rows for k in row if k not in self.columns]
        if new:  # a wider header; an existing file is rewritten (rare: a metric first logged later)
            old = self.rows()
            self.columns += list(dict.fromkeys(new))
            if exists:
                self._write(old)
        with open(self.path, "a", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            if not exists:
                writer.writeheader()
            writer.writerows(rows)

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after `step` (they came from the run that was killed)."""
        if self.path.exists():
            self._write([r for r in self.rows() if int(float(r["step"])) <= step])

    def _write(self, rows: list[dict[str, Any]]) -> None:
        tmp = self.path.with_suffix(".csv.tmp")
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns)
            writer.writeheader()
            writer.writerows(rows)
        os.replace(tmp, self.path)


def to_floats(metrics: Mapping[str, Tensor | float]) -> dict[str, float]:
    """Metrics as floats, with one device read per device (0-d tensors are stacked, then copied once)."""
    out = {k: float(v) for k, v in metrics.items() if not isinstance(v, Tensor)}
    by_device: dict[torch.device, list[str]] = {}
    for k, v in metrics.items():
        if isinstance(v, Tensor):
            by_device.setdefault(v.device, []).append(k)
    for keys in by_device.values():
        out.update(zip(keys, torch.stack([metrics[k].detach().float().reshape(()) for k in keys]).tolist()))
    return {k: out[k] for k in metrics}


def to_float_rows(rows: list[Mapping[str, Tensor | float]]) -> list[dict[str, float]]:
    """`to_floats` of many rows (e.g. one per pretraining step) with one device read for all of them."""
    floats = to_floats({(i, k): v for i, row in enumerate(rows) for k, v in row.items()})
    return [{k: floats[i, k] for k in row} for i, row in enumerate(rows)]


class MetricsLogger:
    """Averages update metrics over `every` updates into one row of metrics.csv (and TensorBoard
    scalars with `tensorboard`, which needs `pip install 'owbench[tensorboard]'`). Tensor metrics are summed
    where they live (a GPU) and read to the host once per row, so logging costs one device sync per `every` updates."""

    def __init__(self, run_dir: Path, every: int = 100, tensorboard: bool = False):
        self.csv = CsvLog(Path(run_dir) / "metrics.csv", ["step"])
        self.every = max(every, 1)
        self._sums: dict[str, Tensor | float] = {}
        self._count = 0
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def log(self, step: int, metrics: Mapping[str, Tensor | float], force: bool = False,
            counters: dict[str, float] | None = None) -> dict[str, float] | None:
        """Accumulate one update's metrics; returns the averaged row when one is written. `counters`
        (e.g. env_steps) are written at their value at the row's step, not averaged."""
        for k, v in metrics.items():
            v = v.detach().float() if isinstance(v, Tensor) else float(v)
            self._sums[k] = self._sums[k] + v if k in self._sums else v
        self._count += 1
        if self._count < self.every and not force:
            return None
        row = {**(counters or {}), **{k: v / self._count for k, v in to_floats(self._sums).items()}}
        self.csv.append([{"step": step, **row}])
        if self.writer is not None:
            for k, v in row.items():
                self.writer.add_scalar(k, v, step)
        self._sums, self._count = {}, 0
        return row

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def log_eval(run_dir: Path, step: int, result: EvalResult) -> None:
    """Append one evaluation (one row per episode) to run_dir/eval.csv and print it as one line."""
    print(f"eval at update {step}: return {np.mean(result.returns):.1f} (std {np.std(result.returns):.1f}) "
          f"over {len(result.returns)} episodes", flush=True)
    rows = [{"step": step, "episode": i, "eval_seed": s, "return": float(r), "success": int(bool(ok))}
            for i, (s, r, ok) in enumerate(zip(result.seeds, result.returns, result.successes))]
    CsvLog(Path(run_dir) / "eval.csv", EVAL_COLUMNS).append(rows)


class TrainProgress:
    """A rich progress bar of updates with updates/s and the latest metrics; silent when disabled."""

    def __init__(self, total: int, start: int = 0, enabled: bool = True, description: str = "train"):
        self.start_step, self.start_time = start, time.perf_counter()
        self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[rate]:.2f} updates/s"), TimeRemainingColumn(),
                            TextColumn("{task.fields[info]}"), disable=not enabled, transient=False)
        self.task = self.bar.add_task(description, total=total, completed=start, rate=0.0, info="")

    def __enter__(self) -> "TrainProgress":
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)

    def rate(self, step: int) -> float:
        return (step - self.start_step) / max(time.perf_counter() - self.start_time, 1e-9)

    def update(self, step: int, info: str | None = None) -> None:
        fields = {"rate": self.rate(step)}
        if info is not None:
            fields["info"] = info
        self.bar.update(self.task, completed=step, **fields)


def make_sampler(ctx: TrainContext, config: Any, kind: str, seed: int) -> Any:
    """The dataset sampler of a batch kind, shaped by the config's fields: `batch_size` and
    `seq_len` ("sequence"); `batch_size`, `frame_stack`, `n_step`, `discount` ("transition")."""
    from collectors.sampler import SequenceSampler, TransitionSampler

    if kind == "sequence":
        return SequenceSampler(ctx.datasets, batch_size=config.batch_size, length=config.seq_len, seed=seed)
    if kind == "transition":
        return TransitionSampler(ctx.datasets, batch_size=config.batch_size, frame_stack=config.frame_stack,
                                 n_step=config.n_step, discount=config.discount, seed=seed)
    raise ValueError(f"no sampler for batch kind {kind!r}")


def train_offline(ctx: TrainContext, module: ModuleType,
                  on_update: Callable[[int, Metrics], None] | None = None) -> EvalResult:
    """The generic offline loop: dataset batches -> `agent.update`, periodic evaluation into eval.csv,
    checkpoints every `checkpoint_every` updates with resume after a kill, metrics.csv, progress.
    Returns the final evaluation with the first episode's frames recorded."""
    kind = ctx.batch
    config = ctx.config(module)
    agent = module.make_agent(ctx.spec, config, ctx.device, ctx.seed)
    checkpoints = Checkpointer(ctx.run_dir / "checkpoints")
    saved = checkpoints.load(agent)
    step = saved["step"] if saved else 0
    metrics = MetricsLogger(ctx.run_dir, min(ctx.log_every, max(ctx.steps, 1)), ctx.tensorboard)
    eval_log = CsvLog(ctx.run_dir / "eval.csv", EVAL_COLUMNS)
    for log in (metrics.csv, eval_log):
        log.truncate_after(step if saved else -1)
    sampler = make_sampler(ctx, config, kind, seed=ctx.seed * 1_000_003 + step) if kind != "none" else None
    try:
        with TrainProgress(ctx.steps, step, ctx.progress, f"{ctx.method} {ctx.env_id}") as progress:
            while step < ctx.steps:
                update = agent.update(sampler.sample() if sampler else {})
                step += 1
                if on_update is not None:
                    on_update(step, update)
                row = metrics.log(step, update, force=step == ctx.steps)
                progress.update(step, _summary(row) if row else None)
                if ctx.eval_every and step % ctx.eval_every == 0 and step < ctx.steps:
                    log_eval(ctx.run_dir, step, evaluate(agent, ctx.make_env, ctx.eval_episodes, ctx.seed))
                if ctx.checkpoint_every and step % ctx.checkpoint_every == 0 or step == ctx.steps:
                    checkpoints.save(step, agent)
    finally:
        metrics.close()
        if sampler is not None:
            sampler.close()
    result = evaluate(agent, ctx.make_env, ctx.eval_episodes, ctx.seed, record_frames=True)
    eval_log.truncate_after(step - 1)  # a rerun after the final checkpoint re-evaluates once
    log_eval(ctx.run_dir, step, result)
    return result


def _summary(row: dict[str, float], keys: int = 3) -> str:
    return "  ".join(f"{k} {v:.3g}" for k, v in list(row.items())[:keys])
