"""Headless rendering backend: chosen before mujoco is imported, overridable with `MUJOCO_GL`.

Order: the user's `MUJOCO_GL` if set; else EGL (Mesa llvmpipe on a CPU machine, the vendor's
EGL when a GPU driver is installed); else OSMesa. `gl_info()` reports the backend and the
GL renderer string so that datasets can record how their pixels were made.
"""
from __future__ import annotations

import ctypes.util
import functools
import os
import sys

from collectors.errors import OwbenchError

_LIBRARIES = {"egl": ("EGL",), "osmesa": ("OSMesa",), "glfw": ("glfw", "GL")}
INSTALL_HINT = (
    "no headless OpenGL backend works here; install one with "
    "`apt-get install libegl1 libgl1-mesa-dri` (EGL) or `apt-get install libosmesa6` (OSMesa), "
    "or set MUJOCO_GL to a backend that works"
)


def _available(backend: str) -> bool:
    return all(ctypes.util.find_library(lib) for lib in _LIBRARIES.get(backend, ()))


def select_backend() -> str:
    """Pick the rendering backend and export it (`MUJOCO_GL`, `PYOPENGL_PLATFORM`).

    Must run before `mujoco`/`dm_control` are imported; later calls return the choice made.
    """
    backend = os.environ.get("MUJOCO_GL")
    if not backend:
        if "mujoco" in sys.modules:  # too late to choose; mujoco defaults to glfw
            return "glfw"
        backend = next((b for b in ("egl", "osmesa") if _available(b)), None)
        if backend is None:
            raise OwbenchError(INSTALL_HINT)
        os.environ["MUJOCO_GL"] = backend
    if backend in ("egl", "osmesa"):
        os.environ.setdefault("PYOPENGL_PLATFORM", backend)
    return backend


@functools.cache
def gl_info() -> dict[str, str]:
    """Backend, GL renderer and GL version strings (opens a 1x1 offscreen context once)."""
    backend = select_backend()
    try:
        import mujoco
        from OpenGL import GL

        ctx = mujoco.GLContext(1, 1)
        ctx.make_current()
        renderer = GL.glGetString(GL.GL_RENDERER).decode()
        version = GL.glGetString(GL.GL_VERSION).decode()
        ctx.free()
    except Exception as exc:  # any failure to open a context means no working backend
        raise OwbenchError(f"{INSTALL_HINT} (MUJOCO_GL={backend}: {exc})") from exc
    return {"backend": backend, "renderer": renderer, "version": version}


def gl_device_env(gpu: str) -> dict[str, str]:
    """The environment that makes EGL render on GPU `gpu` (its index among the GPUs, as CUDA numbers
    them in PCI order: set `CUDA_DEVICE_ORDER=PCI_BUS_ID` for the two numberings to agree). Empty for a
    GPU named by UUID, which EGL cannot be pointed at by index."""
    return {"MUJOCO_EGL_DEVICE_ID": gpu} if gpu.isdigit() else {}
