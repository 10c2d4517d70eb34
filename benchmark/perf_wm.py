"""World-model update throughput for `owbench perf`: the project's loop against the same-shaped
plain loop.

optimized=True: channels-last convs, bfloat16 autocast (GPUs and CPUs with native bfloat16) and
the next batch built and copied to the device (pinned memory) in a background thread while the current update runs. optimized=False: none of these; batches are built in the loop.
Both run the same model code at the same shapes (a preset's batch x sequence, image size, widths).
"""
from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from agents.world_model import DreamerConfig, to_torch, with_overrides
from agents.world_model.agent import DreamerV2Agent

ACTION_DIM = 6  # walker's action space


def synthetic_batch(kind: str, config: Any, action_dim: int = ACTION_DIM, state_dim: int = 24,
                    rng: np.random.Generator | None = None) -> dict[str, np.ndarray]:
    """A batch of random content shaped like the sampler's for a method's batch kind ("sequence":
    (B, T, ...), "transition": (B, ...) with `frame_stack` frames on channels, "none": empty), sized by
    the config's `batch_size`, `seq_len`, `image_size` and `frame_stack` wherever they are nested."""
    rng = rng or np.random.default_rng(0)
    if kind == "none":
        return {}
    B, S, A = config_field(config, "batch_size"), config_field(config, "image_size"), action_dim
    if kind == "transition":
        C = 3 * config_field(config, "frame_stack")
        return {"obs": rng.integers(0, 256, (B, S, S, C), dtype=np.uint8),
                "next_obs": rng.integers(0, 256, (B, S, S, C), dtype=np.uint8),
                "action": rng.uniform(-1, 1, (B, A)).astype(np.float32),
                "reward": rng.random(B, dtype=np.float32), "discount": np.full(B, 0.99, np.float32)}
    T = config_field(config, "seq_len")
    is_first = np.zeros((B, T), bool)
    is_first[:, 0] = True
    return {"image": rng.integers(0, 256, (B, T, S, S, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (B, T, A)).astype(np.float32) * ~is_first[..., None],
            "reward": rng.random((B, T), dtype=np.float32), "discount": np.ones((B, T), np.float32),
            "is_first": is_first, "is_last": np.roll(is_first, -1, 1), "is_terminal": np.zeros((B, T), bool),
            "state": rng.normal(size=(B, T, state_dim)).astype(np.float32)}


def config_field(config: Any, name: str) -> Any:
    """`config.name`, or the field of that name in the first nested config that has one (breadth first)."""
    if hasattr(config, name):
        return getattr(config, name)
    path = field_path(config, name)
    if path is None:
        raise AttributeError(f"{type(config).__name__} has no field {name!r} at any depth")
    for key in path.split("."):
        config = getattr(config, key)
    return config


def field_path(config: Any, name: str) -> str | None:
    """Dotted path of the shallowest dataclass field called `name` in a nested config, or None."""
    queue = [(config, "")]
    while queue:
        node, prefix = queue.pop(0)
        fields = {f.name for f in dataclasses.fields(node)}
        if name in fields:
            return prefix + name
        queue += [(getattr(node, f), f"{prefix}{f}.") for f in sorted(fields)
                  if dataclasses.is_dataclass(getattr(node, f))]
    return None


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def measure_world_model_updates(preset: str, device: str, iters: int, optimized: bool,
                                overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Time `iters` updates of a DreamerV2 agent built from `preset` (+ config `overrides`) on `device`
    (after warm-up).

    Returns updates_per_s / seconds_per_update of the world model alone (encoder, RSSM, decoder,
    heads, KL, optimiser step) and agent_updates_per_s / agent_seconds_per_update of the whole
    update (world model + imagination actor-critic), its process CPU time, and the shape measured."""
    config = with_overrides(DreamerConfig.preset(preset, **(overrides or {})),
                            {"channels_last": optimized, "amp": optimized, "cpu_amp": optimized})
    torch.manual_seed(0)
    agent = DreamerV2Agent(ACTION_DIM, config, device)
    rng = np.random.default_rng(0)
    make = lambda: to_torch(synthetic_batch("sequence", config, rng=rng), device)  # noqa: E731
    pool = ThreadPoolExecutor(1) if optimized else None
    pending = pool.submit(make) if pool else None
    warmup = 3 if device.startswith("cuda") else 1  # CUDA warms up (allocator, cuDNN) over a few calls
    wm_time = total_time = cpu_time = 0.0
    try:
        for i in range(warmup + iters):
            _sync(device)
            start, cpu_start = time.perf_counter(), time.process_time()  # waiting for the batch counts
            if pool:
                batch, pending = pending.result(), pool.submit(make)
            else:
                batch = make()
            with agent.precision():
                loss, _, post = agent.wm.loss(batch)
            agent.wm.opt.step(loss)
            _sync(device)
            middle = time.perf_counter()
            agent.behavior.update(agent.wm, post, batch["discount"], agent.precision)
            _sync(device)
            if i >= warmup:
                wm_time += middle - start
                total_time += time.perf_counter() - start
                cpu_time += time.process_time() - cpu_start
    finally:
        if pool:
            pool.shutdown(wait=True)
    iters = max(iters, 1)
    return {"preset": preset, "device": device, "optimized": optimized, "iters": iters,
            "batch": config.batch_size, "seq_len": config.seq_len, "image_size": config.image_size,
            "threads": torch.get_num_threads(),
            "updates_per_s": iters / wm_time, "seconds_per_update": wm_time / iters,
            "agent_updates_per_s": iters / total_time, "agent_seconds_per_update": total_time / iters,
            "agent_cpu_seconds_per_update": cpu_time / iters}  # CPU time of all threads: robust to a busy machine
