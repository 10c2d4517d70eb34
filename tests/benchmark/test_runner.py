"""The runner on a fake suite (methods with their own train loop, no environment): a sweep through the
spawn pool writes every output, a re-run skips everything, a killed sweep resumes, failures are isolated."""
from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import harness_fakes
from benchmark import runner
from benchmark.suites import plan
from datasets_cli.main import cli

OUTPUTS = ["results.csv", "table.csv", "table.tex", "table.md", "stats.csv", "improvement.csv", "report.html",
           "curves/walker_walk__walker_downhill.png", "filmstrips/fake-good__walker_walk__walker_downhill.png",
           "filmstrips/fake-bad__walker_walk__walker_downhill.png"]


@pytest.fixture
def fake_suite(monkeypatch):
    harness_fakes.register(monkeypatch)


def test_sweep_writes_every_output_and_rerun_skips(fake_suite, tmp_path):
    jobs = plan("fake", "smoke", methods=["fake-good", "fake-bad"], seeds=3)  # 3 runs: P(improvement) reported
    sweep = runner.run_sweep(jobs, tmp_path, workers=2, progress=False, device="cpu")
    assert sorted(sweep.done) == sorted(j.key for j in jobs) and not sweep.failed
    suite_dir = tmp_path / "fake"
    for name in OUTPUTS:
        assert (suite_dir / name).stat().st_size > 0, name
    job = runner.job_dir(tmp_path, jobs[0])
    assert {"config.json", "result.json", "final_frames.npz", "job.log", "eval.csv"} <= {p.name for p in job.iterdir()}
    assert "fake train of fake-good from step 0 on walker_downhill (source walker_walk)" in (job / "job.log").read_text()

    results = pd.read_csv(suite_dir / "results.csv")
    assert set(results["phase"]) == {"eval", "final"}
    assert sorted(results.loc[results["phase"] == "eval", "step"].unique()) == [3, 6]
    final = results[results["phase"] == "final"]
    table = pd.read_csv(suite_dir / "table.csv").set_index(["source", "target"])
    for method in ("fake-good", "fake-bad"):  # table.csv equals a recomputation from results.csv
        r = final.loc[final["method"] == method, "return"].to_numpy()
        expected = np.concatenate([harness_fakes.returns_at(method, s, 6, 3) for s in range(3)])
        assert np.allclose(np.sort(r), np.sort(expected))
        assert np.isclose(table.loc[("walker_walk", "walker_downhill"), f"{method} mean"], r.mean())
        assert np.isclose(table.loc[("walker_walk", "walker_downhill"), f"{method} std"], r.std())
    poi = pd.read_csv(suite_dir / "improvement.csv").set_index(["method_x", "method_y"])
    assert poi.loc[("fake-good", "fake-bad"), "p_improvement"] == 1.0
    html = (suite_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "<table" in html and 'src="curves' not in html
    png = html.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(png)[:4] == b"\x89PNG"

    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("result.json")}
    again = runner.run_sweep(jobs, tmp_path, workers=2, progress=False, device="cpu", report=False)
    assert sorted(again.skipped) == sorted(j.key for j in jobs) and not again.done and not again.failed
    assert before == {p: p.stat().st_mtime_ns for p in tmp_path.rglob("result.json")}
    assert (job / "starts.txt").read_text() == "0\n"  # never trained twice


def test_failed_job_is_reported_with_its_log_and_others_finish(fake_suite, tmp_path):
    jobs = plan("fake", "smoke", methods=["fake-broken", "fake-good"], seeds=1)
    sweep = runner.run_sweep(jobs, tmp_path, workers=1, progress=False, device="cpu")
    assert sweep.done == ["fake/fake-good/walker_walk__walker_downhill/seed0"]
    log = Path(sweep.failed["fake/fake-broken/walker_walk__walker_downhill/seed0"])
    assert log.name == "job.log" and "RuntimeError: fake failure" in log.read_text()
    assert not (log.parent / "result.json").exists()
    assert "fake-broken" not in pd.read_csv(tmp_path / "fake" / "results.csv")["method"].tolist()


def test_killed_sweep_resumes_from_checkpoint(fake_suite, tmp_path):
    script = textwrap.dedent(f"""
        import harness_fakes
        from benchmark import runner, suites
        harness_fakes.register()
        jobs = suites.plan("fake", "smoke", methods=["fake-good"], seeds=1)
        runner.run_sweep(jobs, {str(tmp_path)!r}, workers=1, progress=False, report=False, device="cpu")
    """)
    env = {**os.environ, "OWB_FAKE_STEP_S": "0.5", "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env)
    job = runner.job_dir(tmp_path, plan("fake", "smoke", methods=["fake-good"], seeds=1)[0])
    latest = job / "checkpoints" / "latest.json"
    deadline = time.time() + 180  # two interpreter starts on a busy machine
    while not latest.exists() and time.time() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert latest.exists() and not (job / "result.json").exists()
    worker_pid = int((job / "job.log").read_text().split("on pid ")[1].split()[0])
    for _ in range(150):  # the orphaned worker notices its sweep is gone and exits
        try:
            os.kill(worker_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("worker outlived the killed sweep")
    resumed_from = json.loads(latest.read_text())["step"]
    assert resumed_from >= 2
    sweep = runner.run_sweep(plan("fake", "smoke", methods=["fake-good"], seeds=1), tmp_path, progress=False,
                             device="cpu")
    assert len(sweep.done) == 1 and not sweep.skipped
    assert (job / "starts.txt").read_text().split() == ["0", str(resumed_from)]
    assert json.loads((job / "result.json").read_text())["steps"] == 6


def test_cli_run_dry_run_and_report(fake_suite, tmp_path):
    out = tmp_path / "runs"
    dry = CliRunner().invoke(cli, ["run", "--suite", "fake", "--methods", "fake-good", "--out", str(out), "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "2 jobs of fake" in dry.output and "datasets to collect: 0" in dry.output and not out.exists()
    res = CliRunner().invoke(cli, ["run", "--suite", "fake", "--methods", "fake-good", "--seeds", "1", "--out", str(out),
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    assert "1 done, 0 skipped" in res.output
    (out / "fake" / "table.tex").unlink()
    rep = CliRunner().invoke(cli, ["report", str(out)])
    assert rep.exit_code == 0, rep.output
    assert (out / "fake" / "table.tex").exists()
    failed = CliRunner().invoke(cli, ["run", "--suite", "fake", "--methods", "fake-broken", "--seeds", "1",
                                      "--out", str(out), "--device", "cpu"])
    assert failed.exit_code == 1 and "job.log" in failed.output


@pytest.mark.parametrize("args, fragment", [
    (["run", "--suite", "smok"], "did you mean 'smoke'"),
    (["run", "--suite", "smoke", "--methods", "random,dreamerv9"], "unknown method 'dreamerv9'"),
    (["run", "--suite", "smoke", "--pairs", "walker_uphill"], "unknown pair 'walker_uphill'"),
    (["run", "--suite", "smoke", "--profile", "huge"], "unknown profile 'huge'"),
    (["run", "--suite", "smoke", "--seeds", "0"], "--seeds 0"),
    (["run", "--suite", "smoke", "--seeds", "two"], "--seeds 'two' is neither a number"),
    (["run", "--suite", "smoke", "--executor", "slurm"], "'slurm' is not one of"),
    (["run", "--suite", "smoke", "--methods", "dreamerv2", "--pairs", "walker_downhill", "--no-collect"],
     "owbench collect --env walker_downhill --quality random"),
    (["suites", "show", "wpt"], "did you mean"),
    (["report", "nowhere"], "no run directory"),
])
def test_user_mistakes_exit_2_with_one_line(args, fragment, tmp_path):
    res = CliRunner().invoke(cli, [*args, "--out", str(tmp_path)] if args[0] == "run" else args)
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.output


def test_suites_list_and_show():
    res = CliRunner().invoke(cli, ["suites"])
    assert res.exit_code == 0 and "metaworld-transfer-neurips" in res.output
    show = CliRunner().invoke(cli, ["suites", "show", "dmc-transfer", "--profile", "paper"])
    assert show.exit_code == 0 and "walker_nofoot" in show.output and "460000" in show.output
