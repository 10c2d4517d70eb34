"""An environment cut to a few agent steps, and a train context that makes it, shared by the online-method tests."""
from __future__ import annotations

from agents.training import TrainContext
from collectors import envs


class ShortEnv:
    """An environment cut to `limit` agent steps (keeps online tests to seconds)."""

    def __init__(self, env_id: str, limit: int, image_size: int):
        self.env, self.limit, self.t = envs.make(env_id, image_size=image_size), limit, 0

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, seed: int | None = None):
        self.t = 0
        return self.env.reset(seed=seed)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.t += 1
        return obs, reward, terminated, truncated or self.t >= self.limit, info


class ShortContext(TrainContext):
    """A TrainContext whose environments end after `episode_steps` agent steps."""

    episode_steps: int = 12

    def make_env(self, env_id: str | None = None) -> ShortEnv:
        return ShortEnv(env_id or self.env_id, self.episode_steps, self.image_size)
