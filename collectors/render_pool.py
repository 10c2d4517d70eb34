"""Frames from physics states: in-process, or in a pool of `spawn`-started render processes.

Each worker holds its own environment (a GL context must never cross a fork). To re-render an episode
it first resets to the episode's seed, because some tasks (Meta-World) move bodies in the *model* on
reset, then sets every recorded physics state and renders. Frames equal those rendered while stepping.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from collectors.envs import Env, make

_WORKER_ENV: Env | None = None


def render_states(env: Env, seed: int, physics: np.ndarray) -> np.ndarray:
    """Frames (T, S, S, 3) for physics states (T, P) of one episode started with `seed`."""
    env.reset(seed=seed)
    frames = np.empty((len(physics), env.image_size, env.image_size, 3), np.uint8)
    for t, state in enumerate(physics):
        env.set_physics_state(state)
        frames[t] = env.render()
    return frames


def _init_worker(env_id: str, image_size: int, camera: str | int | None, fast_render: bool) -> None:
    global _WORKER_ENV
    _WORKER_ENV = make(env_id, image_size=image_size, camera=camera, fast_render=fast_render)
    _WORKER_ENV.reset(seed=0)  # opens the GL context, so that EGL registers its own exit handler first ...
    atexit.register(_WORKER_ENV.close)  # ... and this one, run before it, frees the context cleanly


def _render_in_worker(seed: int, physics: np.ndarray) -> np.ndarray:
    return render_states(_WORKER_ENV, seed, physics)


class RenderPool:
    """`workers` render processes; an episode is split into contiguous chunks, one per worker."""

    def __init__(self, env_id: str, image_size: int, camera: str | int | None, fast_render: bool, workers: int):
        self.workers = workers
        self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker,
                                         initargs=(env_id, image_size, camera, fast_render))
        for _ in range(workers):  # start the workers now, while the caller trains or steps physics
            self._pool.submit(os.getpid)

    def submit(self, seed: int, physics: np.ndarray) -> Callable[[], np.ndarray]:
        """Start rendering one episode; the returned function waits and gives its frames in order."""
        chunks = np.array_split(physics, min(self.workers, len(physics)))
        futures = [self._pool.submit(_render_in_worker, seed, chunk) for chunk in chunks]
        return lambda: np.concatenate([f.result() for f in futures])

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> "RenderPool":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
