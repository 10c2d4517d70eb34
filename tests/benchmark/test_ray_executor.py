"""The Ray executor runs the same jobs as the local one and writes the same result files."""
from __future__ import annotations

import os
import sys

import pandas as pd
import pytest

import harness_fakes
from benchmark import runner
from benchmark.results import collect_results
from benchmark.suites import plan


@pytest.mark.ray
def test_ray_and_local_executors_give_the_same_results(monkeypatch, tmp_path):
    ray = pytest.importorskip("ray", reason="the optional ray extra is not installed: pip install 'owbench[ray]'")
    harness_fakes.register(monkeypatch)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(sys.path))  # Ray workers import the fake method module
    jobs = plan("fake", "smoke", methods=["fake-good", "fake-bad"])
    local = runner.run_sweep(jobs, tmp_path / "local", workers=2, progress=False, device="cpu", report=False)
    on_ray = runner.run_sweep(jobs, tmp_path / "ray", executor="ray", workers=2, progress=False, device="cpu",
                              report=False)
    assert not ray.is_initialized()  # the executor shuts down the Ray it started
    assert sorted(on_ray.done) == sorted(local.done) == sorted(j.key for j in jobs) and not on_ray.failed
    pd.testing.assert_frame_equal(collect_results(tmp_path / "local" / "fake"), collect_results(tmp_path / "ray" / "fake"))
    for job in jobs:
        assert (runner.job_dir(tmp_path / "ray", job) / "job.log").read_text().startswith(f"== {job.key}")
    again = runner.run_sweep(jobs, tmp_path / "ray", executor="ray", workers=2, progress=False, device="cpu",
                             report=False)
    assert sorted(again.skipped) == sorted(j.key for j in jobs)


def test_ray_missing_names_the_extra(monkeypatch, tmp_path):
    harness_fakes.register(monkeypatch)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(runner.OwbenchError, match=r"pip install 'owbench\[ray\]'"):
        runner.run_sweep(plan("fake", "smoke", methods=["fake-good"], seeds=1), tmp_path, executor="ray",
                         progress=False, device="cpu")
