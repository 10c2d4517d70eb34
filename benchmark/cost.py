"""Cost before launch (`owbench run --dry-run`): hours per job and in total, disk for the datasets to collect.

Hours come from a few timed updates of each (method, config) at the profile's shapes on synthetic batches
(on a CPU, the CPU time of one torch thread, which other load on a shared machine barely changes: with several
threads on a busy machine their spin-waits inflated a timing 25-fold; a job on every core of an idle machine
runs faster), cached per machine and device in `$OWBENCH_HOME/cache/update_seconds.json`; a figure recorded on a GPU
(a dry run there with `--device cuda`) is shown beside this machine's. Methods with their own training
loop (CoWorld, Vid2Act, WPT) are timed by a DreamerV2 update of their world-model config, a lower bound.
The estimate counts updates only: evaluation episodes and online environment steps add to it.
Disk is the raw frames of every dataset to collect (an upper bound; the store compresses them).
"""
from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.methods import get_method
from benchmark.provenance import resolved_config
from benchmark.suites import Job
from collectors.home import owbench_home

TIMED_UPDATES = 3  # after one warm-up update


def cache_path() -> Path:
    return owbench_home() / "cache" / "update_seconds.json"


def machine(device: str) -> str:
    """This machine and device as a cache key: host, CPU model, device."""
    model = ""
    if Path("/proc/cpuinfo").exists():
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    return f"{platform.node()} | {model or platform.processor()} x{os.cpu_count()} | {device}"


def config_key(job: Job) -> str:
    """What an update's time depends on: method, resolved config, frame size."""
    return json.dumps([job.base[0], job.scratch, resolved_config(job), job.budget.image_size], sort_keys=True)


def _sequence_batch(batch: int, length: int, size: int, action_dim: int, rng: np.random.Generator) -> dict:
    is_first = np.zeros((batch, length), bool)
    is_first[:, 0] = True
    return {"image": rng.integers(0, 256, (batch, length, size, size, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (batch, length, action_dim)).astype(np.float32),
            "reward": rng.random((batch, length), dtype=np.float32), "discount": np.ones((batch, length), np.float32),
            "is_first": is_first, "is_last": np.zeros((batch, length), bool),
            "is_terminal": np.zeros((batch, length), bool)}


def _transition_batch(config: Any, size: int, action_dim: int, rng: np.random.Generator) -> dict:
    shape = (config.batch_size, size, size, 3 * config.frame_stack)
    return {"obs": rng.integers(0, 256, shape, dtype=np.uint8), "next_obs": rng.integers(0, 256, shape, dtype=np.uint8),
            "action": rng.uniform(-1, 1, (config.batch_size, action_dim)).astype(np.float32),
            "reward": rng.random(config.batch_size, dtype=np.float32),
            "discount": np.ones(config.batch_size, np.float32), "dataset": np.zeros(config.batch_size, np.int64)}


def measure_update_seconds(job: Job, device: str) -> float | None:
    """Seconds per update of the job's method at its config on `device`; None where it cannot be timed
    (a method without `make_agent` or an update on the known batch kinds); 0 for evaluation-only methods."""
    import torch

    from agents.world_model import DreamerConfig
    from collectors.collect import one_torch_thread
    from collectors.envs import spec

    method = get_method(job.base[0])
    if method.batch == "none":
        return 0.0
    module = method.load()
    config = module.Config.preset(job.config_preset, **job.base[1])
    env = spec(job.pair.target)
    rng = np.random.default_rng(0)
    dreamer = config if isinstance(config, DreamerConfig) else getattr(config, "dreamer", None)
    try:
        if hasattr(module, "train") or job.scratch:  # own loop: a DreamerV2 update of its world model
            if not isinstance(dreamer, DreamerConfig):
                return None
            from agents.world_model.agent import DreamerV2Agent

            agent = DreamerV2Agent(env.action_dim, dreamer, device)
            config = dreamer
        else:
            agent = module.make_agent(env, config, device, 0)
        size = getattr(config, "image_size", job.budget.image_size)
        if method.batch == "sequence":
            make = lambda: _sequence_batch(config.batch_size, config.seq_len, size, env.action_dim, rng)  # noqa: E731
        else:
            make = lambda: _transition_batch(config, size, env.action_dim, rng)  # noqa: E731
        cuda = device.startswith("cuda")
        clock, sync = (time.perf_counter, torch.cuda.synchronize) if cuda else (time.process_time, lambda: None)
        with one_torch_thread(not cuda):
            agent.update(make())  # warm-up
            sync()
            start = clock()
            for _ in range(TIMED_UPDATES):
                agent.update(make())
            sync()
            return (clock() - start) / TIMED_UPDATES
    except (NotImplementedError, AttributeError, KeyError, TypeError):
        return None


@dataclass
class Estimate:
    hours: dict[str, float | None] = field(default_factory=dict)  # job key -> hours on this machine
    gpu_hours: dict[str, float | None] = field(default_factory=dict)  # job key -> hours on a GPU, where recorded
    disk_bytes: int = 0  # raw frames of the datasets to collect
    disk_unknown: int = 0  # datasets to collect whose size is not fixed in advance
    device: str = "cpu"

    def summary(self) -> str:
        def total(hours: dict[str, float | None]) -> str:
            known = [h for h in hours.values() if h is not None]
            if not known:
                return "unknown"
            text = hours_text(sum(known))
            return text + (f" (+ {len(hours) - len(known)} jobs not timed)" if len(known) < len(hours) else "")

        gpu = total(self.gpu_hours)
        timed = "timed on one thread" if self.device == "cpu" else "idle"
        return (f"estimated total: {total(self.hours)} on this machine ({self.device}, {timed}, jobs one after another)"
                + (f", {gpu} on a GPU" if gpu != "unknown" else ", GPU: not recorded (run the dry run on a GPU "
                   "machine with --device cuda to record it)")
                + "; updates only: evaluation episodes and online environment steps add to it")


    def disk(self) -> str:
        return f"about {size_text(self.disk_bytes)} of raw frames" + (
            f" + {self.disk_unknown} replay dataset(s) whose size depends on their behaviour training"
            if self.disk_unknown else "")


def hours_text(hours: float | None) -> str:
    if hours is None:
        return "?"
    if hours < 1 / 60:
        return f"{hours * 3600:.0f} s"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def size_text(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def dataset_bytes(jobs: list[Job]) -> tuple[int, int]:
    """Raw frame bytes of the datasets the jobs would collect (episodes x steps x image), and how many
    replay buffers have no size fixed in advance (kept until their behaviour agent reaches its target: a
    SAC medium-replay without a size, a DreamerV2 medium-replay, and the training replay of each DreamerV2
    level a frozen-policy quality draws on)."""
    from benchmark.runner import _budgets, missing_datasets
    from collectors.collect import DEFAULT_EPISODES
    from collectors.envs import spec
    from collectors.qualities import get_quality

    budgets = _budgets(jobs)
    total = unknown = 0
    for need, _ in missing_datasets(jobs):
        b, q = budgets[need], get_quality(need.quality)
        episodes = need.episodes or b.dataset_episodes
        if need.behaviour == "dreamerv2":  # each level trains until its mark, into a replay of its own
            unknown += 1 if q.replay else len(dict.fromkeys(q.policies))
            if q.replay:
                continue
        elif q.replay and episodes is None:
            unknown += 1
            continue
        steps = (b.max_episode_steps or spec(need.env_id).episode_length) + 1
        total += (episodes or DEFAULT_EPISODES) * steps * b.image_size ** 2 * 3
    return total, unknown


def estimate(jobs: list[Job], device: str, say: Callable[[str], None] = lambda line: None) -> Estimate:
    """Hours per job here (timing what the cache lacks) and on a GPU where a figure was recorded."""
    from agents.contract import resolve_device

    device = resolve_device(device)
    path = cache_path()
    cache: dict[str, dict[str, float | None]] = json.loads(path.read_text()) if path.exists() else {}
    here = cache.setdefault(machine(device), {})
    gpus = [entries for name, entries in cache.items() if name.rsplit(" | ", 1)[-1].startswith("cuda")]
    out = Estimate(device=device)
    for job in jobs:
        key = config_key(job)
        if key not in here:
            say(f"timing {TIMED_UPDATES} updates of {job.label} at {job.config_preset} shapes on {device} ...")
            here[key] = measure_update_seconds(job, device)
        steps = job.budget.steps_for(job.method)
        out.hours[job.key] = None if here[key] is None else here[key] * steps / 3600
        gpu = next((g[key] for g in gpus if g.get(key) is not None), None)
        out.gpu_hours[job.key] = None if gpu is None else gpu * steps / 3600
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(cache, indent=1))
    os.replace(tmp, path)
    out.disk_bytes, out.disk_unknown = dataset_bytes(jobs)
    return out
