"""The render pool: frames rendered by helpers and by this process, in any split, equal inline frames."""
import numpy as np

from collectors import render_pool
from collectors.envs import make
from collectors.render_pool import RenderPool, render_states


def _episode(env, seed: int, steps: int) -> np.ndarray:
    env.reset(seed=seed)
    rng, physics = np.random.default_rng(seed), [env.physics_state()]
    for _ in range(steps):
        env.step(rng.uniform(-1, 1, env.spec.action_dim))
        physics.append(env.physics_state())
    return np.stack(physics)


def test_pooled_chunks_come_back_in_order_and_equal_inline_frames(monkeypatch):
    monkeypatch.setattr(render_pool, "CHUNK_ROWS", 4)  # 21-row episodes: 6 chunks shared by helper and caller
    with make("cartpole_swingup", image_size=16) as env:
        episodes = {seed: _episode(env, seed, 20) for seed in (3, 4, 5)}
        expected = {seed: render_states(env, seed, physics) for seed, physics in episodes.items()}
        pool = RenderPool(env, workers=2)
        try:
            pending = [(seed, pool.submit(seed, physics)) for seed, physics in episodes.items()]
            frames = {seed: gather() for seed, gather in pending}
            chunks = pool._waiting
        finally:
            pool.close()
    assert not chunks  # every chunk was taken by a helper or by this process
    for seed in episodes:
        assert frames[seed].shape == (21, 16, 16, 3) and frames[seed].dtype == np.uint8
        assert np.array_equal(frames[seed], expected[seed]), seed
