"""Where a job computes and at what precision.

The driver (the `owbench run` process) resolves `--device` once, before any job starts: `auto` is a GPU when
one is visible, `cuda` / `cuda:N` without one is refused. Each job then gets one GPU of its own: the local
executor starts its worker process with `CUDA_VISIBLE_DEVICES` set to one GPU (round-robin over the visible
GPUs, one per concurrently running job; `cuda:N` pins every job to GPU N), and a Ray task requests one GPU
and uses the one Ray assigns (`ray.get_gpu_ids()`). Inside a job that GPU is `cuda` (its only visible
device), and `MUJOCO_EGL_DEVICE_ID` names the same GPU so that EGL renders where the job computes.

Precision on CUDA: TF32 matmuls (`torch.set_float32_matmul_precision("high")`); autocast in bfloat16 only
where the device computes it natively (compute capability >= 8.0, Ampere and later; on CPUs with
AVX512-BF16 / AMX when asked), else float32 (bfloat16 is emulated and slower there, and float16 would
need loss scaling).
"""
from __future__ import annotations

import os
import re
from contextlib import AbstractContextManager, nullcontext

import torch

from collectors.envs.render import gl_device_env
from collectors.errors import OwbenchError

_DEVICE = re.compile(r"^(auto|cpu|cuda)(?::(\d+))?$")


def parse_device(device: str) -> tuple[str, int | None]:
    """`auto`, `cpu`, `cuda` or `cuda:N` -> (kind, N or None); anything else is a user error."""
    match = _DEVICE.match(device.strip())
    if match is None or (match[2] is not None and match[1] != "cuda"):
        raise OwbenchError(f"--device {device!r} is not known; use auto, cpu, cuda or cuda:N")
    return match[1], None if match[2] is None else int(match[2])


def visible_gpus() -> list[str]:
    """The GPUs this process sees, named as `CUDA_VISIBLE_DEVICES` names them (indices 0..n-1 when unset)."""
    count = torch.cuda.device_count()
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    names = [s.strip() for s in listed.split(",") if s.strip()] if listed is not None else []
    return names[:count] if len(names) >= count else [str(i) for i in range(count)]


def resolve_device(device: str = "auto", gpus: int | None = None) -> str:
    """The device a run asks for, checked against the `gpus` visible (default: this process's):
    `auto` -> `cuda` when there is one, else `cpu`; `cuda` / `cuda:N` without that GPU is refused."""
    kind, index = parse_device(device)
    count = len(visible_gpus()) if gpus is None else gpus
    if kind == "auto":
        return "cuda" if count else "cpu"
    if kind == "cuda" and count == 0:
        raise OwbenchError(f"--device {device} asks for a GPU but none is visible to torch "
                           "(torch.cuda.device_count() is 0); use --device cpu or auto")
    if index is not None and index >= count:
        raise OwbenchError(f"--device {device}: only {count} GPU(s) are visible (cuda:0..cuda:{count - 1}); "
                           "pick one of them or use --device cuda to spread jobs over all")
    return device.strip()


def job_gpus(device: str) -> list[str]:
    """The GPUs (as `visible_gpus` names them) the jobs of a run on resolved `device` are spread over:
    all visible ones for `cuda`, GPU N alone for `cuda:N`, none for `cpu`."""
    kind, index = parse_device(device)
    if kind != "cuda":
        return []
    gpus = visible_gpus()
    return gpus if index is None else [gpus[index]]


def default_workers(device: str) -> int:
    """Jobs at once when `--workers` is not given: one per GPU on `cuda`, else one."""
    return max(len(job_gpus(device)), 1) if device == "cuda" else 1


def job_device(device: str) -> str:
    """The device a job uses inside a process that sees only its own GPU: `cuda` for any GPU, else `cpu`."""
    return "cuda" if parse_device(device)[0] == "cuda" else "cpu"


def gpu_env(gpu: str) -> dict[str, str]:
    """Environment of a process that computes and renders on GPU `gpu` (only that GPU visible to CUDA)."""
    return {"CUDA_VISIBLE_DEVICES": gpu, **gl_device_env(gpu)}


def ray_task_env() -> dict[str, str]:
    """Inside a Ray task: the environment of the GPU Ray assigned to it (Ray sets `CUDA_VISIBLE_DEVICES`
    itself; EGL is pointed at the same GPU). Empty for a task without a GPU."""
    import ray

    ids = ray.get_gpu_ids()
    return gpu_env(str(ids[0])) if ids else {}


# -- precision ----------------------------------------------------------------------------------------

def cpu_bf16_supported() -> bool:
    """Whether oneDNN has native bfloat16 kernels on this CPU (AVX512-BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cuda_bf16_native(device: str | torch.device = "cuda") -> bool:
    """bfloat16 tensor-core kernels exist from compute capability 8.0 (Ampere); earlier GPUs emulate them."""
    return torch.cuda.get_device_capability(device) >= (8, 0)


def amp_dtype(device: str | torch.device, cpu: bool = False) -> torch.dtype | None:
    """The autocast dtype for `device`: bfloat16 where it is native (CUDA >= 8.0; CPUs with native
    bfloat16 when `cpu`), None (float32) elsewhere."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.bfloat16 if cuda_bf16_native(device) else None
    if device.type == "cpu" and cpu and cpu_bf16_supported():
        return torch.bfloat16
    return None


def autocast(device: str | torch.device, enabled: bool = True, cpu: bool = False) -> AbstractContextManager:
    """Mixed precision for `device` when `enabled` (`amp_dtype`'s choice); a no-op where it is float32."""
    dtype = amp_dtype(device, cpu) if enabled else None
    return torch.autocast(torch.device(device).type, dtype=dtype) if dtype is not None else nullcontext()


def set_tf32(enabled: bool = True) -> None:
    """TF32 tensor-core matmuls and cuDNN convolutions for float32 (Ampere and later) on or off."""
    torch.set_float32_matmul_precision("high" if enabled else "highest")
    torch.backends.cudnn.allow_tf32 = enabled


def configure(device: str) -> None:
    """Per-process numeric settings of a job on `device`: TF32 on CUDA (float32 elsewhere is untouched)."""
    if parse_device(device)[0] == "cuda":
        set_tf32(True)


def use_device(device: str = "auto") -> str:
    """What a process that computes on `device` calls first: `resolve_device`, then `configure`."""
    device = resolve_device(device)
    configure(device)
    return device
