"""A fake method (its own `train(ctx)`, no environment) and a fake suite, to test the harness in seconds.

`fake-good` scores higher than `fake-bad`; `fake-broken` raises (a user error with `OWB_FAKE_USER_ERROR`). `OWB_FAKE_STEP_S` slows each update down
(so a test can kill a sweep mid-job). Each start appends its resume step to `starts.txt`.
"""
from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark import methods, suites
from agents.protocol import EvalResult
from collectors.errors import OwbenchError, unknown
from collectors.seeds import eval_seeds

PAIR = suites.Pair(("walker_walk",), "walker_downhill")
BUDGET = suites.Budget(steps=6, eval_every=3, eval_episodes=3, checkpoint_every=2, seeds=2)


@dataclass(frozen=True)
class Config:
    batch_size: int = 4
    offset: float = 0.0  # added to every return (a swept field with a visible effect)
    preset_name: str = "smoke"

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Config":
        if name not in ("smoke", "quick", "paper", "code"):
            raise unknown("preset", name, ("smoke", "quick", "paper", "code"))
        return dataclasses.replace(cls(preset_name=name), **overrides)


def make_agent(spec, config, device, seed):  # the harness never needs it: train() is self-contained
    raise NotImplementedError("fake methods train through train(ctx)")


def returns_at(method: str, seed: int, step: int, episodes: int) -> np.ndarray:
    """Deterministic noisy returns that grow with the step; fake-good sits 100 above fake-bad."""
    rng = np.random.default_rng([seed, step])
    return (100.0 if method == "fake-good" else 0.0) + 10.0 * step + rng.normal(0.0, 5.0, episodes)


def train(ctx) -> EvalResult:
    latest = ctx.run_dir / "checkpoints" / "latest.json"
    latest.parent.mkdir(parents=True, exist_ok=True)
    start = json.loads(latest.read_text())["step"] if latest.exists() else 0
    with open(ctx.run_dir / "starts.txt", "a") as f:
        f.write(f"{start}\n")
    config = ctx.config(sys.modules[__name__])
    print(f"fake train of {ctx.method} from step {start} on {ctx.env_id} (source {ctx.source_env_id}) "
          f"with batch {config.batch_size}, preset {config.preset_name}")
    if ctx.method == "fake-broken":
        if os.environ.get("OWB_FAKE_USER_ERROR"):  # what a reader raises on a corrupt chunk
            raise OwbenchError("fake.zarr is corrupt: image chunk 0 fails its checksum; run `owbench datasets verify`")
        raise RuntimeError("fake failure for the harness test")
    seeds = eval_seeds(ctx.eval_episodes, ctx.seed)
    eval_csv = ctx.run_dir / "eval.csv"
    for step in range(start + 1, ctx.steps + 1):
        time.sleep(float(os.environ.get("OWB_FAKE_STEP_S", "0")))
        if step % ctx.eval_every == 0:
            rets = returns_at(ctx.method, ctx.seed, step, ctx.eval_episodes) + config.offset
            with open(eval_csv, "a") as f:
                if f.tell() == 0:
                    f.write("step,episode,eval_seed,return,success\n")
                f.writelines(f"{step},{i},{s},{r},0\n" for i, (s, r) in enumerate(zip(seeds, rets)))
        if step % ctx.checkpoint_every == 0:
            latest.write_text(json.dumps({"step": step}))
    rets = returns_at(ctx.method, ctx.seed, ctx.steps, ctx.eval_episodes) + config.offset
    frames = np.stack([np.full((8, 8, 3), 20 * t, np.uint8) for t in range(10)])
    return EvalResult(rets, np.zeros(len(rets), bool), np.full(len(rets), 10), seeds, frames)


def register(monkeypatch=None) -> None:
    """Add the fake methods and the `fake` suite to the registries (undone by `monkeypatch` when given)."""
    names = ("fake-good", "fake-bad", "fake-broken")
    entries = {n: methods.Method(n, __name__, "sequence") for n in names}
    suite = suites.Suite("fake", "harness test suite", (suites.Group((PAIR,), names, online_source=True),),
                         {"smoke": BUDGET})
    for registry, key, value in [(methods.METHODS, n, m) for n, m in entries.items()] + [(suites.SUITES, "fake", suite)]:
        if monkeypatch is not None:
            monkeypatch.setitem(registry, key, value)
        else:
            registry[key] = value
