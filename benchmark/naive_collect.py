"""The collection loop a researcher writes first, owbench perf's baseline for `owbench collect`: one
dm_control environment, a render of every stored frame, uniform random actions, action repeat 2, and (given
a folder) one compressed npz per episode. Imports only numpy and dm_control, so that run as a script its
start-up is what a plain script's is.

    python benchmark/naive_collect.py OUT_DIR EPISODES STEPS    # prints frames/s of the whole run
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

DOMAIN, TASK, IMAGE_SIZE, ACTION_REPEAT = "walker", "walk", 64, 2


def collect(out: Path | None, episodes: int, steps: int, image_size: int = IMAGE_SIZE, seed: int = 0) -> int:
    """Run the loop; returns the number of stored frames."""
    os.environ.setdefault("MUJOCO_GL", "egl")
    from dm_control import suite

    env = suite.load(DOMAIN, TASK, task_kwargs={"random": seed})
    spec = env.action_spec()
    rng = np.random.default_rng(seed)
    frames = 0
    for episode in range(episodes):
        env.reset()
        images = [env.physics.render(image_size, image_size, camera_id=0)]
        actions, rewards = [], []
        for _ in range(steps):
            action = rng.uniform(spec.minimum, spec.maximum)
            reward = 0.0
            for _ in range(ACTION_REPEAT):
                reward += env.step(action).reward or 0.0
            images.append(env.physics.render(image_size, image_size, camera_id=0))
            actions.append(action)
            rewards.append(reward)
        if out is not None:
            np.savez_compressed(out / f"episode_{episode:05d}.npz", image=np.stack(images),
                                action=np.array(actions, np.float32), reward=np.array(rewards, np.float32))
        frames += len(images)
    return frames


if __name__ == "__main__":
    started = time.perf_counter()
    folder = Path(sys.argv[1])
    folder.mkdir(parents=True, exist_ok=True)
    stored = collect(folder, int(sys.argv[2]), int(sys.argv[3]))
    print(f"{stored / (time.perf_counter() - started):.2f} frames/s")
