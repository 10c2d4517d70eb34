"""Every job on its own GPU (issue 21, items 1, 2, 4; issue 15, item 9), on a CPU machine with GPUs mocked:
the driver resolves the device before anything runs, local workers get one GPU each, Ray tasks request one."""
from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import harness_fakes
from benchmark import runner
from benchmark.suites import plan
from collectors.errors import OwbenchError
from datasets_cli.main import cli


@pytest.fixture
def gpus(monkeypatch):
    """`gpus(n)`: the driver's torch sees n GPUs."""
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    return lambda n: monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


@pytest.fixture
def no_collection(monkeypatch):
    """Dataset preparation as a no-op that records whether it ran (the fake methods read no data)."""
    calls = []

    def prepare(jobs, **kwargs):
        calls.append(len(jobs))
        return {need: "unused" for job in jobs for need in job.data}

    monkeypatch.setattr(runner, "prepare_datasets", prepare)
    return calls


# -- local executor ----------------------------------------------------------------------------------------

class FakeProcess:
    def __init__(self, target, args, name):
        self.task, self.env = args
        self.exitcode, self.sentinel = None, None

    def start(self):
        pass

    def join(self):
        pass


def task(key: str) -> types.SimpleNamespace:
    return types.SimpleNamespace(job=types.SimpleNamespace(key=key))


def test_local_workers_each_get_a_gpu_and_a_freed_gpu_is_reused(gpus, monkeypatch):
    gpus(2)
    monkeypatch.setattr(runner.mp.connection, "wait", lambda sentinels, timeout: None)
    pool = runner.LocalExecutor("cuda")
    pool._ctx = types.SimpleNamespace(Process=FakeProcess)
    assert pool.workers == 2  # --workers defaults to the number of GPUs
    a, b = pool.submit(task("a")), pool.submit(task("b"))
    assert a.env == {"CUDA_VISIBLE_DEVICES": "0", "MUJOCO_EGL_DEVICE_ID": "0"}
    assert b.env == {"CUDA_VISIBLE_DEVICES": "1", "MUJOCO_EGL_DEVICE_ID": "1"}
    a.exitcode = 0
    assert pool.wait([a, b], 0.0) == [a]
    assert pool.submit(task("c")).env["CUDA_VISIBLE_DEVICES"] == "0"  # a's GPU, free again; b still holds GPU 1


def test_more_workers_than_gpus_share_them_round_robin_and_cpu_jobs_get_no_gpu(gpus):
    gpus(2)
    pool = runner.LocalExecutor("cuda", workers=3)
    assert [pool.env(s)["CUDA_VISIBLE_DEVICES"] for s in range(3)] == ["0", "1", "0"]
    assert [runner.LocalExecutor("cuda:1", workers=2).env(s)["CUDA_VISIBLE_DEVICES"] for s in range(2)] == ["1", "1"]
    assert runner.LocalExecutor("cpu", workers=2).env(0) == {} and runner.LocalExecutor("cpu").workers == 1


def test_spawned_jobs_run_on_their_own_gpus(gpus, no_collection, monkeypatch, tmp_path):
    """Two jobs, `--device cuda`, no --workers, two GPUs in the driver: each worker process is started with
    its own GPU (logged in job.log). This machine has no GPU, so inside the job the check that its GPU is
    visible fails: the job, not the sweep, reports it."""
    harness_fakes.register(monkeypatch)
    gpus(2)
    jobs = plan("fake", "smoke", methods=["fake-good"], seeds=2)
    sweep = runner.run_sweep(jobs, tmp_path, device="cuda", progress=False, report=False)
    assert len(sweep.failed) == 2
    logs = [Path(log).read_text() for log in sweep.failed.values()]
    assert sorted(log.split("CUDA_VISIBLE_DEVICES=")[1][0] for log in logs) == ["0", "1"]
    for log in logs:
        gpu = log.split("CUDA_VISIBLE_DEVICES=")[1][0]
        assert f"(device cuda, CUDA_VISIBLE_DEVICES={gpu}, MUJOCO_EGL_DEVICE_ID={gpu})" in log
        assert "asks for a GPU but none is visible" in log


def test_run_refuses_cuda_without_a_gpu_before_any_job(gpus, no_collection, monkeypatch, tmp_path):
    harness_fakes.register(monkeypatch)
    gpus(0)
    for device in ("cuda", "cuda:1"):
        result = CliRunner().invoke(cli, ["run", "--suite", "fake", "--device", device, "--out", str(tmp_path)])
        assert result.exit_code == 2, result.output
        assert result.output.count("\n") == 1 and "none is visible" in result.output and "--device cpu" in result.output
    assert no_collection == [] and not (tmp_path / "fake").exists()  # nothing collected, no job started


# -- Ray ----------------------------------------------------------------------------------------------------

class FakeRay(types.SimpleNamespace):
    """The bits of Ray the executor uses: init / shutdown / cluster_resources / remote (options recorded)."""

    def __init__(self, resources=None):
        super().__init__(initialized=False, inits=[], options=None, resources=resources or {})

    def is_initialized(self):
        return self.initialized

    def init(self, **kwargs):
        self.inits.append(kwargs)
        self.initialized = True

    def shutdown(self):
        self.initialized = False

    def cluster_resources(self):
        return self.resources

    def remote(self, **options):
        self.options = options
        return lambda function: function


@pytest.fixture
def fake_ray(monkeypatch):
    def install(resources=None):
        ray = FakeRay(resources)
        monkeypatch.setitem(sys.modules, "ray", ray)
        return ray
    return install


def test_ray_with_auto_requests_one_gpu_per_task_when_gpus_are_visible(gpus, fake_ray):
    gpus(2)
    ray = fake_ray()
    pool = runner.RayExecutor(None, None, "auto")
    assert pool.device == "cuda" and pool.workers == 2 and ray.inits[0]["num_cpus"] == 2
    assert ray.options["num_gpus"] == 1 and ray.options["max_calls"] == 1  # a fresh process per GPU task
    gpus(0)
    ray = fake_ray()
    pool = runner.RayExecutor(None, None, "auto")
    assert pool.device == "cpu" and "num_gpus" not in ray.options


def test_ray_cluster_resolves_auto_against_its_own_gpus(gpus, fake_ray):
    gpus(0)  # a driver without a GPU, workers with four
    ray = fake_ray({"CPU": 64.0, "GPU": 4.0})
    pool = runner.RayExecutor(None, "ray://head:10001", "auto")
    assert pool.device == "cuda" and pool.workers == 4 and ray.options["num_gpus"] == 1
    ray = fake_ray({"CPU": 64.0})
    with pytest.raises(OwbenchError, match="none is visible"):
        runner.RayExecutor(None, "ray://head:10001", "cuda")
    assert not ray.initialized  # the executor shut down the Ray it started


def test_ray_refuses_a_pinned_gpu(gpus, fake_ray):
    gpus(2)
    fake_ray()
    with pytest.raises(OwbenchError, match="Ray gives each task a GPU of its own"):
        runner.RayExecutor(None, None, "cuda:1")


# -- rendering ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("dataset_renderer, warned", [("llvmpipe (LLVM 15.0.7, 256 bits)", True),
                                                      ("NVIDIA H200/PCIe/SSE2", False)])
def test_evaluation_renderer_is_recorded_and_compared_with_the_dataset(monkeypatch, capsys, dataset_renderer, warned):
    import collectors.envs
    import collectors.store

    info = {"backend": "egl", "renderer": "NVIDIA H200/PCIe/SSE2", "version": "4.6"}
    monkeypatch.setattr(collectors.envs, "gl_info", lambda: info)
    monkeypatch.setattr(collectors.store, "open_dataset",
                        lambda loc: types.SimpleNamespace(attrs={"render": {"renderer": dataset_renderer}}))
    job = types.SimpleNamespace(data=[types.SimpleNamespace(role="source"), types.SimpleNamespace(role="target")])
    assert runner._render_check(("source.zarr", "target.zarr"), job) == info
    out = capsys.readouterr().out
    assert ("warning" in out and dataset_renderer in out and "target.zarr" in out) == warned
