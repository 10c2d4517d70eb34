"""The one environment interface every task implements, and the shared MuJoCo renderer."""
from __future__ import annotations

import atexit
import weakref
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from collectors.envs.render import select_backend
from collectors.errors import OwbenchError

select_backend()  # before mujoco is imported anywhere below
import mujoco  # noqa: E402

Obs = dict[str, np.ndarray]
# A fast-render profile: fewer shadows/reflections. Recorded in dataset metadata, never silent.
FAST_RENDER = {"shadow": False, "reflection": False}


@dataclass(frozen=True)
class EnvSpec:
    """Static facts about a task, enough to plan a dataset or a network."""

    id: str
    suite: str  # "dmc", "transfer" or "metaworld"
    action_dim: int
    state_dim: int
    action_repeat: int
    time_limit: int  # environment (physics-control) steps per episode
    camera: str | int
    description: str = ""
    base_task: str = ""  # for transfer tasks: the stock task whose reward is used
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def episode_length(self) -> int:
        """Agent steps per episode (time limit divided by action repeat)."""
        return self.time_limit // self.action_repeat


_OPEN_RENDERERS: "weakref.WeakSet[Renderer]" = weakref.WeakSet()


@atexit.register
def _close_renderers() -> None:
    """Free GL contexts while the GL library is still loaded (avoids EGL noise at exit)."""
    for renderer in list(_OPEN_RENDERERS):
        renderer.close()


class Renderer:
    """Offscreen MuJoCo renderer for one model at one size and camera."""

    def __init__(self, model: mujoco.MjModel, size: int, camera: str | int, fast: bool = False):
        self.size, self.camera, self.fast = size, camera, fast
        names = [mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_CAMERA, i) for i in range(model.ncam)]
        if camera not in names and not (isinstance(camera, int) and -1 <= camera < model.ncam):
            listed = ", ".join(f"{i} ({n})" if n else str(i) for i, n in enumerate(names))
            raise OwbenchError(f"no camera {camera!r} in this task; give --camera -1 (free camera) or one of: {listed}")
        self._renderer = mujoco.Renderer(model, size, size)
        _OPEN_RENDERERS.add(self)
        if fast:
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
            self._renderer.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0

    def render(self, data: mujoco.MjData) -> np.ndarray:
        self._renderer.update_scene(data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None


class Env:
    """Base class: dict observations `{"image": uint8 (S,S,3), "state": float32 (D,)}`.

    `step` returns gymnasium's five-tuple `(obs, reward, terminated, truncated, info)`; actions
    live in [-1, 1]^A and are repeated `spec.action_repeat` times; `info["discount"]` is 0 on a
    true terminal state and 1 otherwise.
    """

    spec: EnvSpec

    def __init__(self, image_size: int = 64, camera: str | int | None = None, fast_render: bool = False):
        self.image_size = image_size
        self.camera = self.spec.camera if camera is None else camera
        self.fast_render = fast_render
        self._renderer: Renderer | None = None

    # -- to implement -------------------------------------------------------------------
    @property
    def model(self) -> mujoco.MjModel:
        raise NotImplementedError

    @property
    def data(self) -> mujoco.MjData:
        raise NotImplementedError

    def reset(self, seed: int | None = None) -> Obs:
        raise NotImplementedError

    def step(self, action: np.ndarray) -> tuple[Obs, float, bool, bool, dict[str, Any]]:
        raise NotImplementedError

    def state(self) -> np.ndarray:
        """The low-dimensional observation (float32)."""
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------
    def render(self) -> np.ndarray:
        """The current frame, uint8 (S, S, 3)."""
        if self._renderer is None:
            self._renderer = Renderer(self.model, self.image_size, self.camera, self.fast_render)
        return self._renderer.render(self.data)

    def observation(self, render: bool = True) -> Obs:
        obs = {"state": self.state()}
        if render:
            obs["image"] = self.render()
        return obs

    def physics_state(self) -> np.ndarray:
        """Full integration state (qpos, qvel, act, mocap, ...) as float64, for re-rendering."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        out = np.empty(mujoco.mj_stateSize(self.model, spec), np.float64)
        mujoco.mj_getState(self.model, self.data, out, spec)
        return out

    def set_physics_state(self, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, self.data, np.asarray(state, np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def __enter__(self) -> "Env":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
