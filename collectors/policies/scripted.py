"""Behaviour policies that act on an environment's state: random, Meta-World scripted experts, a frozen
SAC actor, and Gaussian action noise on top of any of them. Each has `act(env) -> action in [-1, 1]^A`."""
from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import numpy as np

from collectors.envs import Env, scripted_expert

if TYPE_CHECKING:
    from collectors.policies.sac import SACAgent


class BehaviourPolicy(Protocol):
    description: str

    def act(self, env: Env) -> np.ndarray:
        """The action for the environment's current state."""
        ...


class RandomPolicy:
    """Uniform random actions in [-1, 1]^A."""

    description = "uniform random actions in [-1, 1]^A"

    def __init__(self, action_dim: int, rng: np.random.Generator):
        self.action_dim, self.rng = action_dim, rng

    def act(self, env: Env) -> np.ndarray:
        return self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)


class ScriptedExpert:
    """Meta-World's shipped scripted policy on the raw float64 observation."""

    def __init__(self, env_id: str):
        self.policy = scripted_expert(env_id)
        self.description = f"metaworld scripted policy {type(self.policy).__name__}"

    def act(self, env: Env) -> np.ndarray:
        return np.clip(self.policy.get_action(env.raw_observation()), -1.0, 1.0).astype(np.float32)


class FrozenSAC:
    """A trained SAC actor acting deterministically (its mean action) on the low-dimensional state."""

    def __init__(self, agent: SACAgent, description: str):
        self.agent, self.description = agent, description

    def act(self, env: Env) -> np.ndarray:
        return self.agent.act(env.state(), deterministic=True)


class NoisyPolicy:
    """`base` + N(0, sigma^2) action noise, clipped to [-1, 1] (WPT's imperfect demonstrations)."""

    def __init__(self, base: BehaviourPolicy, sigma: float, rng: np.random.Generator):
        self.base, self.sigma, self.rng = base, sigma, rng
        self.description = f"{base.description} + N(0, {sigma}^2) action noise, clipped"

    def act(self, env: Env) -> np.ndarray:
        action = self.base.act(env)
        return np.clip(action + self.sigma * self.rng.standard_normal(action.shape), -1.0, 1.0).astype(np.float32)
