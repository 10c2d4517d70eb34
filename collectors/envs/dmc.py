"""DeepMind Control Suite tasks (`<domain>_<task>`) behind the owbench `Env` interface."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from collectors.envs.base import Env, EnvSpec, Obs
from dm_control import suite
from dm_control.rl import control

ACTION_REPEAT = 2
TIME_LIMIT = 1000  # control steps


def default_camera(domain: str) -> int:
    """DreamerV2/V-D4RL convention: camera 2 for quadruped, camera 0 elsewhere."""
    return 2 if domain == "quadruped" else 0


def flatten_state(observation: dict[str, Any]) -> np.ndarray:
    return np.concatenate([np.asarray(v, np.float32).ravel() for v in observation.values()])


class DMCEnv(Env):
    """A dm_control `control.Environment` with action repeat, a time limit and pixel observations."""

    def __init__(
        self,
        spec: EnvSpec,
        build: Callable[[int], control.Environment],
        image_size: int = 64,
        camera: str | int | None = None,
        fast_render: bool = False,
    ):
        self.spec = spec
        super().__init__(image_size, camera, fast_render)
        self._env = build(0)
        self._steps = 0

    @property
    def physics(self):  # the dm_control Physics, for callers that need named access
        return self._env.physics

    @property
    def model(self):
        return self._env.physics.model.ptr

    @property
    def data(self):
        return self._env.physics.data.ptr

    def state(self) -> np.ndarray:
        return self._state

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self._env.task.random.seed(seed)
        ts = self._env.reset()
        self._state = flatten_state(ts.observation)
        self._steps = 0
        return self.observation()

    def step_physics(self, action: np.ndarray) -> tuple[float, bool, bool, dict[str, Any]]:
        """Advance one agent step without rendering: (reward, terminated, truncated, info)."""
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        reward, discount = 0.0, 1.0
        for _ in range(self.spec.action_repeat):
            ts = self._env.step(action)
            reward += ts.reward or 0.0
            self._steps += 1
            discount = float(ts.discount) if ts.discount is not None else 1.0
            if ts.last():
                break
        self._state = flatten_state(ts.observation)
        terminated = ts.last() and discount == 0.0
        truncated = ts.last() and not terminated
        return reward, terminated, truncated, {"discount": discount, "success": False}

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        reward, terminated, truncated, info = self.step_physics(action)
        return self.observation(), reward, terminated, truncated, info


def dmc_spec(env_id: str, domain: str, task: str) -> EnvSpec:
    env = suite.load(domain, task)
    obs_dim = sum(int(np.prod(v.shape)) for v in env.observation_spec().values())
    return EnvSpec(
        id=env_id,
        suite="dmc",
        action_dim=int(env.action_spec().shape[0]),
        state_dim=obs_dim,
        action_repeat=ACTION_REPEAT,
        time_limit=TIME_LIMIT,
        camera=default_camera(domain),
        description=f"DeepMind Control {domain} {task}",
    )


def make_dmc(spec: EnvSpec, domain: str, task: str, **kwargs: Any) -> DMCEnv:
    return DMCEnv(spec, lambda seed: suite.load(domain, task, task_kwargs={"random": seed}), **kwargs)


def dmc_task_ids() -> dict[str, tuple[str, str]]:
    """All DMC suite tasks: id -> (domain, task)."""
    return {f"{d}_{t}": (d, t) for d, t in suite.ALL_TASKS}
