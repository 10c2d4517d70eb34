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
CHUNK_ROWS = 64  # rows per render task; each task first resets to the episode's seed (~1/64 extra work)


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
    """Renders episodes with `workers` processes: this one (holding `env`) and `workers - 1` spawned helpers.

    An episode is cut into chunks queued for the helpers; when its frames are wanted, this process renders
    every chunk no helper has started yet (from the end, while helpers work from the front), so a helper
    that is still starting up delays nothing."""

    def __init__(self, env: Env, workers: int):
        if workers < 2:
            raise ValueError("a RenderPool needs at least 2 workers; render in-process otherwise")
        self.env = env
        self._pool = ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker,
                                         initargs=(env.spec.id, env.image_size, env.camera, env.fast_render))
        for _ in range(workers - 1):  # start the helpers now, while the caller trains or steps physics
            self._pool.submit(os.getpid)

    def submit(self, seed: int, physics: np.ndarray) -> Callable[[], np.ndarray]:
        """Queue one episode; the returned function renders what no helper took and gives all frames in order."""
        chunks = np.array_split(physics, -(-len(physics) // CHUNK_ROWS))
        futures = [self._pool.submit(_render_in_worker, seed, chunk) for chunk in chunks]

        def gather() -> np.ndarray:
            local = {i: render_states(self.env, seed, chunks[i])
                     for i in reversed(range(len(chunks))) if futures[i].cancel()}
            return np.concatenate([local[i] if i in local else f.result() for i, f in enumerate(futures)])
        return gather

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
