"""Frames from physics states: in-process, or in a pool of `spawn`-started render processes.

Each worker holds its own environment (a GL context must never cross a fork). To re-render an episode
it first resets to the episode's seed, because some tasks (Meta-World) move bodies in the *model* on
reset, then sets every recorded physics state and renders. Frames equal those rendered while stepping.
"""
from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor

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


class _Chunk:
    """Rows of one episode to render: waiting here until a helper takes it (`future`) or this process does."""

    def __init__(self, seed: int, physics: np.ndarray):
        self.seed, self.physics = seed, physics
        self.future: Future[np.ndarray] | None = None
        self.frames: np.ndarray | None = None


class RenderPool:
    """Renders episodes with `workers` processes: this one (holding `env`) and `workers - 1` spawned helpers.

    An episode is cut into chunks that wait in one queue here; a helper is handed the next chunk only when it
    is free, so nothing queues inside the executor. When an episode's frames are wanted, this process renders
    its chunks still waiting, from the end, while helpers take them from the front; it waits only for chunks a
    helper is rendering at that moment, and a helper that is still starting up delays nothing."""

    def __init__(self, env: Env, workers: int):
        if workers < 2:
            raise ValueError("a RenderPool needs at least 2 workers; render in-process otherwise")
        self.env = env
        self._pool = ProcessPoolExecutor(workers - 1, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_init_worker,
                                         initargs=(env.spec.id, env.image_size, env.camera, env.fast_render))
        self._lock = threading.RLock()  # a callback of an already finished future runs at once, lock held
        self._waiting: deque[_Chunk] = deque()
        self._free = 0  # helpers without a chunk
        for _ in range(workers - 1):  # start the helpers now, while the caller trains or steps physics
            self._pool.submit(os.getpid).add_done_callback(self._helper_free)

    def submit(self, seed: int, physics: np.ndarray) -> Callable[[], np.ndarray]:
        """Queue one episode; the returned function renders what no helper took and gives all frames in order."""
        chunks = [_Chunk(seed, rows) for rows in np.array_split(physics, -(-len(physics) // CHUNK_ROWS))]
        with self._lock:
            self._waiting.extend(chunks)
            self._dispatch()

        def gather() -> np.ndarray:
            while (chunk := self._claim_last(chunks)) is not None:
                chunk.frames = render_states(self.env, seed, chunk.physics)
            return np.concatenate([c.frames if c.future is None else c.future.result() for c in chunks])
        return gather

    def _claim_last(self, chunks: list[_Chunk]) -> _Chunk | None:
        with self._lock:
            for chunk in reversed(chunks):
                if chunk.future is None and chunk.frames is None:
                    self._waiting.remove(chunk)
                    return chunk
        return None

    def _dispatch(self) -> None:
        """Hand waiting chunks to free helpers (lock held)."""
        while self._free and self._waiting:
            chunk = self._waiting[0]
            chunk.future = self._pool.submit(_render_in_worker, chunk.seed, chunk.physics)
            self._waiting.popleft()  # only once a helper has it: if submit raised, this process renders it
            self._free -= 1
            chunk.future.add_done_callback(self._helper_free)

    def _helper_free(self, _: Future[object]) -> None:
        with self._lock:
            self._free += 1
            self._dispatch()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
