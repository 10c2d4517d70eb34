"""Device resolution and GPU hand-out (agents/devices.py) on a CPU machine, with the GPUs mocked."""
from __future__ import annotations

import sys
import types

import pytest
import torch

from agents import devices
from collectors.errors import OwbenchError


@pytest.fixture
def gpus(monkeypatch):
    """`gpus(n, visible=None)`: pretend torch sees n GPUs (and CUDA_VISIBLE_DEVICES is `visible`)."""
    def set_gpus(n: int, visible: str | None = None) -> None:
        monkeypatch.setattr(torch.cuda, "device_count", lambda: n)
        if visible is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", visible)
    return set_gpus


def test_auto_is_a_gpu_when_one_is_visible(gpus):
    gpus(0)
    assert devices.resolve_device("auto") == "cpu"
    gpus(2)
    assert devices.resolve_device("auto") == "cuda" and devices.resolve_device("cuda:1") == "cuda:1"
    assert devices.resolve_device("cpu") == "cpu"
    assert devices.use_device("auto") == "cuda"  # resolve_device, then the process's CUDA settings (TF32)
    torch.set_float32_matmul_precision("highest")  # undo what use_device switched on


@pytest.mark.parametrize("device, n, message", [
    ("cuda", 0, "none is visible"), ("cuda:0", 0, "none is visible"), ("cuda:2", 2, r"only 2 GPU\(s\)"),
    ("gpu", 1, "not known"), ("cpu:1", 1, "not known"), ("cuda:x", 1, "not known")])
def test_devices_that_cannot_work_are_refused(gpus, device, n, message):
    gpus(n)
    with pytest.raises(OwbenchError, match=message):
        devices.resolve_device(device)


def test_gpus_keep_the_names_cuda_visible_devices_gives_them(gpus):
    gpus(2, visible="3,5")
    assert devices.visible_gpus() == ["3", "5"]
    assert devices.job_gpus("cuda") == ["3", "5"] and devices.job_gpus("cuda:1") == ["5"]
    assert devices.job_gpus("cpu") == []
    gpus(2)
    assert devices.visible_gpus() == ["0", "1"]


def test_workers_default_to_one_per_gpu(gpus):
    gpus(4)
    assert devices.default_workers("cuda") == 4
    assert devices.default_workers("cuda:2") == 1 and devices.default_workers("cpu") == 1


def test_a_job_process_sees_its_gpu_as_cuda_and_renders_on_it():
    assert devices.job_device("cuda:3") == devices.job_device("cuda") == "cuda" and devices.job_device("cpu") == "cpu"
    assert devices.gpu_env("3") == {"CUDA_VISIBLE_DEVICES": "3", "MUJOCO_EGL_DEVICE_ID": "3"}
    uuid = "GPU-5c1d2a9e-0000-0000-0000-000000000000"  # EGL cannot be pointed at a UUID
    assert devices.gpu_env(uuid) == {"CUDA_VISIBLE_DEVICES": uuid}


def test_a_ray_task_renders_on_the_gpu_ray_assigned(monkeypatch):
    ray = types.SimpleNamespace(get_gpu_ids=lambda: [6])
    monkeypatch.setitem(sys.modules, "ray", ray)
    assert devices.ray_task_env() == {"CUDA_VISIBLE_DEVICES": "6", "MUJOCO_EGL_DEVICE_ID": "6"}
    ray.get_gpu_ids = lambda: []
    assert devices.ray_task_env() == {}
