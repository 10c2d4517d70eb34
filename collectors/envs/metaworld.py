"""Meta-World v3 tasks (`mw_<task>`, alias `metaworld_<task>`) rendered from the `corner` camera."""
from __future__ import annotations

import functools
import warnings
from typing import Any

import numpy as np

from collectors.envs.base import Env, EnvSpec, Obs

import metaworld  # noqa: E402  (after the rendering backend is chosen)
from metaworld.policies import ENV_POLICY_MAP  # noqa: E402

ACTION_REPEAT = 1
TIME_LIMIT = 500
CAMERA = "corner"
N_GOALS = 50  # MT1 samples 50 goal configurations per task; the reset seed picks one


def task_names() -> list[str]:
    """All 50 Meta-World v3 task names without the `-v3` suffix."""
    return [name.removesuffix("-v3") for name in metaworld.ALL_V3_ENVIRONMENTS]


@functools.cache
def _benchmark(task: str) -> metaworld.MT1:
    return metaworld.MT1(f"{task}-v3", seed=0)


class MetaWorldEnv(Env):
    """One Meta-World v3 task; `reset(seed)` chooses one of MT1's 50 goals and seeds the env."""

    def __init__(self, spec: EnvSpec, task: str, image_size: int = 64, camera: str | int | None = None,
                 fast_render: bool = False):
        self.spec = spec
        super().__init__(image_size, camera, fast_render)
        self.task_name = task
        bench = _benchmark(task)
        self._tasks = bench.train_tasks
        self._env = bench.train_classes[f"{task}-v3"]()
        self._env.set_task(self._tasks[0])
        self._env.max_path_length = spec.time_limit
        self._raw_obs = np.zeros(spec.state_dim)

    @property
    def model(self):
        return self._env.model

    @property
    def data(self):
        return self._env.data

    def state(self) -> np.ndarray:
        return self._raw_obs.astype(np.float32)

    def raw_observation(self) -> np.ndarray:
        """The float64 state vector the scripted expert policies expect."""
        return self._raw_obs

    def render(self) -> np.ndarray:
        """Meta-World's `corner` camera is defined upside down (its y axis points down); the
        mujoco-py renderer the papers used returned bottom-up rows, which cancelled that out.
        We flip rows so frames look like the papers' (upright table and arm)."""
        frame = super().render()
        return np.ascontiguousarray(frame[::-1]) if self.camera == CAMERA else frame

    def reset(self, seed: int | None = None) -> Obs:
        if seed is not None:
            self._env.set_task(self._tasks[seed % len(self._tasks)])
            self._env.seed(seed)
        self._raw_obs, _ = self._env.reset()
        return self.observation()

    def step_physics(self, action: np.ndarray) -> tuple[float, bool, bool, dict[str, Any]]:
        action = np.clip(np.asarray(action, np.float32), -1.0, 1.0)
        self._raw_obs, reward, terminated, truncated, info = self._env.step(action)
        out = {"discount": 0.0 if terminated else 1.0, "success": bool(info.get("success", 0.0) > 0)}
        return float(reward), bool(terminated), bool(truncated), out

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        reward, terminated, truncated, info = self.step_physics(action)
        return self.observation(), reward, terminated, truncated, info

    def close(self) -> None:
        super().close()
        self._env.close()


def metaworld_spec(env_id: str, task: str) -> EnvSpec:
    cls = metaworld.ALL_V3_ENVIRONMENTS[f"{task}-v3"]
    return EnvSpec(
        id=env_id,
        suite="metaworld",
        action_dim=4,
        state_dim=39,
        action_repeat=ACTION_REPEAT,
        time_limit=TIME_LIMIT,
        camera=CAMERA,
        description=f"Meta-World v3 {task} ({cls.__name__})",
    )


def scripted_policy(task: str):
    """The scripted expert shipped with metaworld: `policy.get_action(raw_obs) -> action`."""
    # The policies warn that their gains exceed [-1, 1]; the env clips, as intended upstream.
    warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high", category=UserWarning)
    return ENV_POLICY_MAP[f"{task}-v3"]()
