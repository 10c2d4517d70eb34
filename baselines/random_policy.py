"""The random policy: uniform actions in [-1, 1]^A. The floor every method must clear."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from agents.contract import Batch, Metrics, Obs
from collectors.envs.base import EnvSpec


@dataclass(frozen=True)
class RandomConfig:
    """No hyperparameters; presets exist so the harness treats it like any method."""

    seed: int = 0

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "RandomConfig":
        return cls(**overrides)


Config = RandomConfig


class RandomAgent:
    """Uniform random actions; in eval mode still random, but seeded per episode for repeatability."""

    def __init__(self, action_dim: int, config: RandomConfig = RandomConfig()):
        self.action_dim = action_dim
        self.config = config
        self._rng = np.random.default_rng(config.seed)

    def update(self, batch: Batch) -> Metrics:
        return {}

    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        return self._rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32), state

    def state_dict(self) -> dict[str, Any]:
        return {"rng": self._rng.bit_generator.state}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._rng.bit_generator.state = state["rng"]


def make_agent(spec: EnvSpec, config: RandomConfig, device: str = "cpu", seed: int = 0) -> RandomAgent:
    return RandomAgent(spec.action_dim, RandomConfig(seed=seed))
