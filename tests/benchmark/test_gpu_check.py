"""benchmark/gpu_check.py's CPU path (`--device cpu --tiny`): every section runs, each in its own process,
and writes its rows; a failing or overrunning section is recorded and the others continue.

The sweep sections run the real `owbench run` CLI in a child process, on the fake suite of harness_fakes
(jobs without environments), so the test takes seconds rather than the minutes of real evaluation episodes.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from agents.devices import amp_dtype
from benchmark.gpu_check import GpuCheckConfig, run_check

FAKES = Path(__file__).parent
# `owbench` with the fake suite registered (the child imports harness_fakes from PYTHONPATH)
FAKE_OWBENCH = (sys.executable, "-c", "import harness_fakes; harness_fakes.register(); "
                "from datasets_cli.main import cli; cli()")


@pytest.fixture
def fake_cli_path(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), os.environ.get("PYTHONPATH", "")]))


def rows(report: dict, section: str) -> list[dict]:
    return report["sections"][section]["rows"]


TINY_FAKE = GpuCheckConfig.preset("tiny", owbench=FAKE_OWBENCH, suite="fake", suite_methods=("fake-good", "fake-bad"),
                                  suite_pairs=(), suite_workers=2, sweep_methods=("fake-good",))


def test_update_sync_checkpoint_and_projection_sections(tmp_path):
    cfg = GpuCheckConfig.preset("tiny")
    out = tmp_path / "gc"
    report = run_check(cfg, out, ("updates", "sync", "checkpoint", "projection"), say=lambda line: None)
    assert {name: s["status"] for name, s in report["sections"].items()} == {name: "ok" for name in report["sections"]}

    updates = rows(report, "updates")
    assert {r["method"] for r in updates} == set(cfg.methods)
    assert all(r["seconds_per_update"] > 0 and r["peak_mib"] is None for r in updates)  # no GPU memory on a CPU
    dreamer = {r["variant"]["bf16"]: r for r in updates if r["method"] == "dreamerv2" and not r["variant"].get("conv_bf16")}
    assert set(dreamer) == {False, True}  # whole-model bf16 on, and off with float32 convs
    conv = [r for r in updates if r["method"] == "dreamerv2" and r["variant"].get("conv_bf16")]
    assert [r["overrides"] for r in conv] == [{"cpu_amp": False, "wm.conv_amp": True}]
    # bf16 on a CPU is the config's cpu_amp; the smoke preset leaves it and conv_amp off, so "bf16 off,
    # conv_bf16 off" is what a user gets
    assert dreamer[True]["overrides"] == {"cpu_amp": True}
    assert dreamer[False]["overrides"] == {"cpu_amp": False, "wm.conv_amp": False}
    assert dreamer[False]["is_preset"] and not dreamer[True]["is_preset"] and not conv[0]["is_preset"]
    # the dtype recorded is agents.devices' choice: bfloat16 only on a CPU with native bfloat16
    native = amp_dtype("cpu", cpu=True)
    assert dreamer[True]["autocast"] == ("float32" if native is None else "bfloat16")
    assert dreamer[False]["autocast"] == "float32"
    # CURL, CQL and LOMPO autocast on CUDA only (`amp`, no `cpu_amp`): on a CPU no switch, the preset as it is
    for method in ("curl", "cql", "curl+cql", "lompo"):
        assert [(r["variant"], r["overrides"], r["autocast"]) for r in updates if r["method"] == method] == \
            [({}, {}, "float32")], method
    assert all(sum(r["is_preset"] for r in updates if r["method"] == m) == 1 for m in cfg.methods)

    sync = rows(report, "sync")
    assert {(r["method"], r["amp"]) for r in sync} == {("coworld", False), ("coworld", True), ("dreamerv2", False),
                                                        ("dreamerv2", True), ("wpt", False), ("wpt", True),
                                                        ("cql", None), ("lompo", None)}
    assert all(r["syncs"] is None and r["updates_per_s"] > 0 for r in sync)  # sync debug mode is CUDA's
    assert {r["autocast"] for r in sync if not r["amp"]} == {"float32"}

    save, reload = rows(report, "checkpoint")
    assert save["step"] == "save on cpu" and save["bytes"] > 0
    assert reload["weights_equal"] and reload["state_devices"] == ["cpu"] and reload["update_after_reload"] == "ok"

    projection = {(r["suite"], r["method"]): r for r in rows(report, "projection")}
    seconds = next(r["seconds_per_update"] for r in updates if r["method"] == "dreamerv2" and r["is_preset"])
    assert projection[("dmc-transfer", "dreamerv2")]["hours_per_job_preset"] == pytest.approx(300_000 * seconds / 3600)
    assert projection[("dmc-transfer", "coworld")]["updates_per_job"] == 460_000
    assert projection[("smoke", "random")]["note"] == "evaluation only"

    saved = json.loads((out / "gpu_check.json").read_text())
    assert saved["sections"].keys() == report["sections"].keys()
    md = (out / "gpu_check.md").read_text()
    assert "compile" not in md
    for header in ("| method | variant | autocast dtype | s/update |", "| method | bf16 autocast | autocast dtype | TF32 |",
                   "| checkpoint step |",
                   "| suite | method | updates/job |"):
        assert header in md


def check_sweep(report: dict, section: str, jobs: int) -> None:
    head, *records = rows(report, section)
    assert report["sections"][section]["status"] == "ok"
    assert head["exit_code"] == 0 and f"{jobs} done" in head["summary"], head
    assert len(records) == jobs and all(r["done"] and r["result"]["device"] == "cpu" for r in records)
    # each job records the GL renderer it evaluated with (result.json's "render"); CPU jobs are given no
    # CUDA_VISIBLE_DEVICES, which is said, not left blank
    assert all(r["result"]["render"]["renderer"] for r in records)
    assert all(r["not_recorded"] == ["CUDA_VISIBLE_DEVICES"] for r in records)


def test_smoke_suite_and_local_sweep_sections_record_each_job(tmp_path, fake_cli_path):
    report = run_check(TINY_FAKE, tmp_path, ("smoke-suite", "sweep-local"), say=lambda line: None)
    check_sweep(report, "smoke-suite", 2)
    check_sweep(report, "sweep-local", 2)
    assert "--executor local --workers 2" in rows(report, "sweep-local")[0]["command"]
    assert "sweep-local: `owbench run --suite fake" in (tmp_path / "gpu_check.md").read_text()


@pytest.mark.ray
def test_ray_sweep_section_with_device_auto(tmp_path, fake_cli_path):
    pytest.importorskip("ray", reason="the sweep-ray section needs the ray extra")
    report = run_check(TINY_FAKE, tmp_path, ("sweep-ray",), say=lambda line: None)
    check_sweep(report, "sweep-ray", 2)
    assert "--device auto --executor ray" in rows(report, "sweep-ray")[0]["command"]


def test_a_failing_or_overrunning_section_is_recorded_and_the_rest_run(tmp_path):
    cfg = GpuCheckConfig.preset("tiny", methods=("no-such-method", "curl"),
                                limits={"updates": 120, "checkpoint": 1, "projection": 120})
    report = run_check(cfg, tmp_path, ("updates", "checkpoint", "projection"), say=lambda line: None)
    status = {name: s["status"] for name, s in report["sections"].items()}
    assert status["updates"] == "ok" and status["projection"] == "ok"
    assert status["checkpoint"].startswith("stopped at its 1 s limit")
    # one row per method: CURL has no bf16 switch on a CPU (its `amp` is CUDA's), so it runs once, as its preset
    bad, curl = rows(report, "updates")
    assert "unknown method 'no-such-method'" in bad["error"]
    assert curl["method"] == "curl" and curl["variant"] == {} and curl["is_preset"] and curl["seconds_per_update"] > 0
    projected = [r for r in rows(report, "projection") if r["method"] == "curl"]
    assert projected and all(r["hours_per_job_preset"] > 0 for r in projected)


def test_script_runs_the_module_and_rejects_an_unknown_section(tmp_path):
    script = Path(__file__).parents[2] / "scripts" / "gpu_check.sh"
    env = {**os.environ, "OUT": str(tmp_path / "out")}
    done = subprocess.run(["bash", str(script), "--device", "cpu", "--tiny", "--only", "projection"], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "gpu_check.json").read_text())["sections"]["projection"]["status"] == "ok"
    assert "| suite | method | updates/job |" in (tmp_path / "out" / "gpu_check.md").read_text()
    bad = subprocess.run(["bash", str(script), "--tiny", "--only", "update"], env=env, capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown gpu check section 'update'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
    if not torch.cuda.is_available():  # the default device is cuda: a machine without one is told so, in one line
        no_gpu = subprocess.run(["bash", str(script), "--only", "projection"], env=env, capture_output=True, text=True)
        assert no_gpu.returncode == 2 and no_gpu.stderr.startswith("error: --device cuda asks for a GPU but none is "
                                                                     "visible to torch")
        assert no_gpu.stderr.rstrip().endswith("use --device cpu or auto")
        assert len(no_gpu.stderr.strip().splitlines()) == 1


def test_gpu_switches_map_to_each_config_and_syncs_are_counted(monkeypatch):
    """The CUDA side of the switches and of the sync count, checked without a GPU."""
    import warnings

    import torch

    from benchmark import gpu_check

    dreamer, vid2act, cql, lompo = (gpu_check.config_of(m, "paper") for m in ("dreamerv2", "vid2act", "cql", "lompo"))
    assert gpu_check.switch_overrides(dreamer, {"bf16": True}, "cuda") == {"amp": True}
    assert gpu_check.switch_overrides(vid2act, {"bf16": False}, "cuda:0") == {"dreamer.amp": False}
    assert gpu_check.switch_overrides(vid2act, {"bf16": True}, "cpu") == {"dreamer.cpu_amp": True}
    # the model-free configs' and LOMPO's `amp` is their switch on CUDA, and only there
    assert gpu_check.switch_overrides(cql, {"bf16": False}, "cuda") == {"amp": False}
    assert gpu_check.switch_overrides(lompo, {"bf16": True}, "cuda") == {"amp": True}
    # the world-model configs also time the conv stacks alone in bf16 (`conv_amp`) with whole-model bf16 off
    assert gpu_check.switch_overrides(vid2act, {"bf16": False, "conv_bf16": True}, "cuda") == \
        {"dreamer.amp": False, "dreamer.wm.conv_amp": True}
    for config in (dreamer, vid2act, lompo):
        assert gpu_check.variants(config, "cuda") == [{"bf16": True}, {"bf16": False, "conv_bf16": True},
                                                      {"bf16": False, "conv_bf16": False}]
    assert gpu_check.variants(cql, "cuda") == [{"bf16": True}, {"bf16": False}]
    assert gpu_check.variants(cql, "cpu") == gpu_check.variants(lompo, "cpu") == [{}]
    # the dtype recorded follows agents.devices.amp_dtype: bfloat16 on Ampere+, float32 on an older GPU or amp off
    for capability, dtype in (((8, 0), "bfloat16"), ((7, 0), "float32")):
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None, c=capability: c)
        assert gpu_check.autocast_dtype(cql, "cuda") == gpu_check.autocast_dtype(dreamer, "cuda") == dtype
    assert gpu_check.autocast_dtype(replace(cql, amp=False), "cuda") == "float32"

    modes = []
    monkeypatch.setattr(torch.cuda, "set_sync_debug_mode", modes.append)
    with gpu_check.counting_syncs("cuda") as syncs:
        for _ in range(3):
            warnings.warn("called a synchronizing CUDA operation", UserWarning)
        warnings.warn("something else", UserWarning)
    assert len(syncs) == 3 and modes == ["warn", "default"]
    with pytest.warns(UserWarning, match="synchronizing"), gpu_check.counting_syncs("cpu") as none:
        warnings.warn("called a synchronizing CUDA operation", UserWarning)
    assert none == [] and modes == ["warn", "default"]
