"""Learning check of offline DreamerV2 on a CPU in minutes: cartpole_swingup at 32x32 pixels.

1. Collect a small noisy-expert dataset with a hand-written swing-up controller on the
   low-dimensional state (energy pumping, then a PD balance near the top); the stored observation
   is the rendered image, as for every owbench dataset. Action noise σ cycles through NOISE.
2. Train offline DreamerV2 (a reduced `smoke`-based model, CHECK_OVERRIDES) on it with the generic
   loop (`train_offline`: checkpoints, metrics.csv, eval.csv; a rerun resumes).
3. Evaluate it and the random policy under the protocol (same evaluation seeds) and print the
   seed-averaged returns and the margin.

    python -m benchmark.dreamer_check --out /tmp/dv2check --episodes 8 --updates 1200 --seeds 2
    # or the seeds in parallel: --first-seed 0 --seeds 1 & --first-seed 1 --seeds 1; the last prints the summary

Did not reproduce over more seeds (issue 22): `owbench check dreamerv2` (benchmark/check.py) now checks
offline DreamerV2 on walker_downhill medium-replay; this module's controller data (`collect`) and small
model (CHECK_OVERRIDES) serve the other checks' settings.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from baselines import dreamerv2, random_policy
from agents.protocol import evaluate
from agents.world_model.config import SMALL_MODEL
from agents.training import TrainContext, train_offline
from collectors import envs, store
from collectors.collect import rollout
from collectors.seeds import episode_seed

ENV_ID = "cartpole_swingup"
IMAGE_SIZE = 32
NOISE = (0.0, 0.3, 0.6, 1.0)  # per-episode Gaussian action noise, cycled (diverse outcomes for the model)
CHECK_OVERRIDES = {**SMALL_MODEL, "batch_size": 8, "seq_len": 16}


def swingup_controller(state: np.ndarray) -> np.ndarray:
    """Energy-based swing-up with a PD balance near upright; ~830 return on cartpole_swingup.
    state = (cart x, cos θ, sin θ, cart ẋ, θ̇), θ = 0 upright."""
    x, cos, sin, x_dot, theta_dot = state
    if cos > 0.85:
        return np.clip([1.0 * x + 1.5 * x_dot + 12.0 * np.arctan2(sin, cos) + 2.0 * theta_dot], -1, 1)
    energy = 0.5 * theta_dot**2 + 9.8 * (cos - 1)  # 0 at rest upright
    return np.clip([energy * np.sign(theta_dot * cos)], -1, 1)


def collect(path: Path, episodes: int, seed: int = 0) -> str:
    """Write `episodes` noisy-expert episodes of the controller (resumes after the committed ones)."""
    rng = np.random.default_rng(seed)
    with envs.make(ENV_ID, image_size=IMAGE_SIZE) as env:
        if store.exists(path):
            writer = store.open_writer(path)
        else:
            env.reset(seed=0)
            writer = store.create_dataset(path, {"env_id": ENV_ID, "quality": "noisy-expert", "image_size": IMAGE_SIZE,
                                                 "behaviour": "swingup_controller (benchmark/dreamer_check.py)"},
                                          {"image": (IMAGE_SIZE, IMAGE_SIZE, 3), "state": (env.spec.state_dim,),
                                           "action": (env.spec.action_dim,), "physics": env.physics_state().shape})
        for e in range(writer.committed_episodes, episodes):
            sigma = NOISE[e % len(NOISE)]
            act = lambda env: np.clip(swingup_controller(env.state()) + sigma * rng.normal(size=1), -1, 1)  # noqa: E731
            steps, ret, success = rollout(env, act, episode_seed(seed, e), render=True)
            writer.append_episode(steps, {"return": ret, "success": success, "noise_std": sigma, "seed": e})
            print(f"episode {e}: sigma {sigma} return {ret:.1f}", flush=True)
    return str(path)


def run_seed(data: str, out: Path, seed: int, updates: int, eval_episodes: int) -> dict[str, list[float]]:
    """Train and evaluate one seed of offline DreamerV2 and the random policy; saved as seed-<n>.json."""
    make_env = lambda: envs.make(ENV_ID, image_size=IMAGE_SIZE)  # noqa: E731
    ctx = TrainContext(method="dreamerv2", env_id=ENV_ID, datasets=[data], run_dir=out / f"dreamerv2-{seed}",
                       preset="smoke", overrides=CHECK_OVERRIDES, steps=updates, eval_every=0,
                       eval_episodes=eval_episodes, checkpoint_every=250, log_every=50, seed=seed,
                       image_size=IMAGE_SIZE, progress=False)
    trained = train_offline(ctx, dreamerv2)
    randomly = random_policy.make_agent(envs.spec(ENV_ID), random_policy.Config(), "cpu", seed)
    baseline = evaluate(randomly, make_env, eval_episodes, training_seed=seed)
    result = {"dreamerv2": trained.returns.tolist(), "random": baseline.returns.tolist(), "updates": updates}
    (out / f"seed-{seed}.json").write_text(json.dumps(result))
    print(f"seed {seed}: dreamerv2 {trained.mean:.1f}  random {baseline.mean:.1f}", flush=True)
    return result


def summarize(out: Path) -> dict[str, float]:
    """Seed-averaged returns over every finished seed in `out`."""
    seeds = [json.loads(p.read_text()) for p in sorted(out.glob("seed-*.json"))]
    per_seed = {k: [float(np.mean(s[k])) for s in seeds] for k in ("dreamerv2", "random")}
    summary = {"seeds": len(seeds), "per_seed": per_seed, "dreamerv2_mean": float(np.mean(per_seed["dreamerv2"])),
               "random_mean": float(np.mean(per_seed["random"])), "updates": sorted({s["updates"] for s in seeds})}
    summary["margin"] = summary["dreamerv2_mean"] - summary["random_mean"]
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("/tmp/dv2check"))
    parser.add_argument("--episodes", type=int, default=8)
    parser.add_argument("--updates", type=int, default=1200)
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--first-seed", type=int, default=0, help="run seeds first..first+seeds-1 (parallel shards)")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = collect(args.out / "data.zarr", args.episodes)
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        run_seed(data, args.out, seed, args.updates, args.eval_episodes)
    summary = summarize(args.out)
    print(json.dumps(summary, indent=1))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
