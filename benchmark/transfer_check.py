"""Learning check of the online transfer methods on a CPU: WPT and Vid2Act against DreamerV2 from
scratch at the same online budget (and the random policy on the same evaluation seeds).

Target: walker_stand at 32x32 pixels, online. (Not cartpole: at this budget no online learner, scratch or
transfer, learns a cartpole task from pixels — the cart moves under a pixel per step and the small model's
imagined rewards ignore the action, docs/learning_checks.md; on walker_stand DreamerV2 from scratch does
learn.) Offline data, the same for both methods and reward-free (rewards never read): issue 3's
medium-replay walker_downhill (the walker embodiment on another task: a SAC agent's replay buffer, 17
episodes) + random walker_walk and cheetah_run episodes — WPT's non-curated pool and Vid2Act's sources.
Every learner uses dreamer_check's small model (CHECK_OVERRIDES) without a discount head (DreamerV2's
DMC configuration), the same online loop (2,000 i.i.d. random prefill steps, one update every
`train_every` agent steps) and the same number of updates. Fixed before any run: WPT retrieves R = 4,
clones π_bc for 1,000 updates and guides over the first third of the online environment steps; the
pool / teacher is pretrained 1,000 updates (seed 0, shared by the seeds).

    python -m benchmark.transfer_check --out /tmp/transfer --method wpt --seed 0 --updates 2500
    python -m benchmark.transfer_check --out /tmp/transfer --summary     # table over finished runs

The same setting over N seeds with confidence intervals: `owbench check wpt|vid2act` (benchmark/check.py).
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agents import vid2act, wpt
from agents.online import OnlineConfig, train_from_scratch
from agents.world_model import DreamerConfig
from baselines import dreamerv2, random_policy
from benchmark import dreamer_check
from agents.protocol import EvalResult, evaluate
from agents.training import TrainContext
from collectors import envs
from collectors.collect import ensure_dataset

TARGET = "walker_stand"
IMAGE_SIZE = dreamer_check.IMAGE_SIZE
METHODS = ("wpt", "vid2act", "dreamerv2", "random")
MODEL = {**dreamer_check.CHECK_OVERRIDES, "discount_head": False}


def offline_data(random_episodes: int, medium_replay_steps: int = 40_000, variant: str = "") -> list[str]:
    """The pool / sources under OWBENCH_HOME (collected once: the medium-replay set trains a state SAC agent
    for up to `medium_replay_steps` steps, about 10 minutes on 2 cores; `variant` "smoke" keeps tiny
    mechanics-check data apart from the real set)."""
    medium = ensure_dataset("walker_downhill", "medium-replay", image_size=IMAGE_SIZE, max_train_steps=medium_replay_steps,
                            variant=variant)
    return [medium, *(ensure_dataset(env, "random", episodes=random_episodes, image_size=IMAGE_SIZE, variant="smoke")
                      for env in ("walker_walk", "cheetah_run"))]


MODULES = {"wpt": wpt, "vid2act": vid2act}  # the transfer methods this check trains
# the method's own sizes, read from its `quick` preset (one source: `quick` is the learning checks' scale)
QUICK_FIELDS = {"wpt": ("retrieve", "bc_steps", "bc_batch", "bc_depth", "bc_units", "bc_layers"),
                "vid2act": ("replay_hidden", "distill_units")}


def method_overrides(method: str, updates: int, online: OnlineConfig, pretrain_steps: int = 1000) -> dict[str, Any]:
    """The config overrides of WPT or Vid2Act in this check (fixed before any run, module docstring): the
    check's model and online loop, and the method's `quick` sizes."""
    quick = MODULES[method].Config.preset("quick")
    overrides: dict[str, Any] = {"dreamer": DreamerConfig.preset("smoke", **MODEL), "online": online,
                                 "pretrain_steps": pretrain_steps,
                                 **{name: getattr(quick, name) for name in QUICK_FIELDS[method]}}
    if method == "wpt":
        env_steps = updates * online.train_every * envs.spec(TARGET).action_repeat  # the guidance clock, prefill excluded
        overrides["guidance_steps"] = env_steps // 3
    return overrides


def train(method: str, out: Path, seed: int, updates: int, pretrain_steps: int = 1000, eval_episodes: int = 5,
          eval_every: int = 0, prefill: int = 2000, train_every: int = 2, random_episodes: int = 3,
          medium_replay_steps: int = 40_000) -> EvalResult:
    """Train and evaluate one method on one seed; writes out/<method>-<seed>/ and out/<method>-<seed>.json."""
    run_dir = out / f"{method}-{seed}"
    online = OnlineConfig(prefill=prefill, train_every=train_every)
    ctx = TrainContext(method=method, env_id=TARGET, datasets=[], run_dir=run_dir, preset="smoke", steps=updates,
                       eval_every=eval_every, eval_episodes=eval_episodes, checkpoint_every=500, log_every=50,
                       seed=seed, device="cpu", image_size=IMAGE_SIZE, progress=False)
    start = time.perf_counter()
    if method == "random":
        agent = random_policy.make_agent(envs.spec(TARGET), random_policy.Config(), "cpu", seed)
        result = evaluate(agent, ctx.make_env, eval_episodes, training_seed=seed)
    elif method == "dreamerv2":
        result = train_from_scratch(replace(ctx, overrides=MODEL), dreamerv2, online)
    else:
        data = offline_data(random_episodes, medium_replay_steps)
        overrides = method_overrides(method, updates, online, pretrain_steps)
        result = MODULES[method].train(replace(ctx, datasets=data, overrides=overrides))
    record = {"method": method, "seed": seed, "updates": updates, "returns": result.returns.tolist(),
              "minutes": (time.perf_counter() - start) / 60}
    (out / f"{method}-{seed}.json").write_text(json.dumps(record))
    print(f"{method} seed {seed}: {result.mean:.1f} ± {result.std:.1f} ({record['minutes']:.1f} min)", flush=True)
    return result


def summarize(out: Path) -> dict[str, dict[str, Any]]:
    """Per method: per-seed means, the mean and std over every evaluation episode, and the seeds."""
    records = [json.loads(p.read_text()) for p in sorted(out.glob("*-*.json"))]
    summary = {}
    for method in METHODS:
        mine = sorted((r for r in records if r["method"] == method), key=lambda r: r["seed"])
        if mine:
            every = np.concatenate([r["returns"] for r in mine])
            summary[method] = {"seeds": [r["seed"] for r in mine], "per_seed": [float(np.mean(r["returns"])) for r in mine],
                               "mean": float(every.mean()), "std": float(every.std()),
                               "updates": sorted({r["updates"] for r in mine})}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/transfer"))
    parser.add_argument("--method", choices=METHODS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--updates", type=int, default=2500)
    parser.add_argument("--pretrain-steps", type=int, default=1000)
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--eval-every", type=int, default=0, help="updates between evaluations (a learning curve)")
    parser.add_argument("--summary", action="store_true", help="print the table over the finished runs in --out")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.method:
        train(args.method, args.out, args.seed, args.updates, args.pretrain_steps, args.eval_episodes, args.eval_every)
    if args.summary:
        summary = summarize(args.out)
        print(json.dumps(summary, indent=1))
        (args.out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
