"""Seconds per update of jsikyoon/dreamer-torch's dmc config against owbench's `code` preset, side by side.

The reference is imported from a checkout you provide (it is not a dependency of owbench):

    git clone https://github.com/jsikyoon/dreamer-torch /tmp/dreamer-torch   # docs/performance.md: @ 7c2331a
    python scripts/time_vs_dreamer_torch.py /tmp/dreamer-torch --rounds 3 --iters 3

One process alternates the implementations (2 torch threads each), on one synthetic batch each built
outside the timing (16 x 50, 64 px, 6 actions), after one warm-up update: dreamer-torch's `defaults` + `dmc`
configs at `precision` 32 (its autocast is CUDA-only), `WorldModel._train` then `ImagBehavior._train` (the
body of its `Dreamer._train`); owbench's `code` preset at its defaults (bfloat16 conv stacks where the CPU
has native bfloat16), in float32 throughout (`conv_amp=False`) and in bfloat16 throughout (`cpu_amp=True`).
Needs PyYAML and Pillow (dreamer-torch's imports); its TensorBoard writer is replaced by a stub (logging only).
"""
from __future__ import annotations

import argparse
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents.world_model import DreamerConfig
from agents.world_model.agent import DreamerV2Agent
from benchmark.perf_wm import synthetic_batch

B, T, SIZE, ACTIONS = 16, 50, 64, 6


def reference_update(checkout: Path) -> tuple[Callable[[dict], Any], dict[str, np.ndarray]]:
    """dreamer-torch's update and a batch in its format (float images, 0..255)."""
    import yaml

    sys.path.insert(0, str(checkout))
    stub = types.ModuleType("torch.utils.tensorboard")
    stub.SummaryWriter = object
    sys.modules.setdefault("torch.utils.tensorboard", stub)
    import models  # dreamer-torch
    import tools

    raw = yaml.safe_load((checkout / "configs.yaml").read_text())
    values = {**raw["defaults"], **raw["dmc"], "device": "cpu", "precision": 32, "num_actions": ACTIONS,
              "batch_size": B, "batch_length": T, "size": (SIZE, SIZE)}
    config = argparse.Namespace(**{k: _parse(v) for k, v in values.items()})
    config.act = getattr(torch.nn, config.act)
    for key in ("actor_entropy", "actor_state_entropy", "imag_gradient_mix"):  # schedules at step 0
        value = getattr(config, key)
        setattr(config, key, lambda value=value: tools.schedule(value, 0))
    wm = models.WorldModel(0, config)
    behavior = models.ImagBehavior(config, wm, config.behavior_stop_grad)

    def reward(feat: Any, state: dict, action: Any) -> Any:
        return wm.heads["reward"](wm.dynamics.get_feat(state)).mode()

    def update(data: dict) -> None:
        post, _, _ = wm._train(data)
        behavior._train(post, reward)

    rng = np.random.default_rng(0)
    batch = {"image": rng.integers(0, 256, (B, T, SIZE, SIZE, 3)).astype(np.float32),
             "action": rng.uniform(-1, 1, (B, T, ACTIONS)).astype(np.float32),
             "reward": rng.random((B, T), dtype=np.float32), "discount": np.ones((B, T), np.float32)}
    return update, batch


def _parse(value: Any) -> Any:
    """configs.yaml numbers written as strings ('3e-4'); schedules ('linear(...)') stay strings."""
    if isinstance(value, list):
        return tuple(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def seconds_per_update(update: Callable[[dict], Any], batch: dict, iters: int) -> float:
    update(batch)  # warm-up
    start = time.perf_counter()
    for _ in range(iters):
        update(batch)
    return (time.perf_counter() - start) / iters


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkout", type=Path, help="a jsikyoon/dreamer-torch checkout")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    reference, reference_batch = reference_update(args.checkout)
    ours = {}
    for label, overrides in (("defaults", {}), ("float32", {"conv_amp": False}), ("cpu_amp=True", {"cpu_amp": True})):
        config = DreamerConfig.preset("code", **overrides)
        ours[label] = (DreamerV2Agent(ACTIONS, config).update,
                       synthetic_batch("sequence", config, ACTIONS, rng=np.random.default_rng(0)))
    code = DreamerConfig.preset("code")
    print(f"owbench code preset at its defaults: conv_amp {code.wm.conv_amp}, cpu_amp {code.cpu_amp}", flush=True)
    for r in range(args.rounds):
        ref = seconds_per_update(reference, reference_batch, args.iters)
        line = [f"round {r}: dreamer-torch {ref:.2f} s/update"]
        for label, (update, batch) in ours.items():
            sec = seconds_per_update(update, batch, args.iters)
            line.append(f"owbench code {label} {sec:.2f} ({sec / ref:.2f}x)")
        print("; ".join(line), flush=True)


if __name__ == "__main__":
    main()
