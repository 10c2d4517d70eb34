"""Results a researcher can trust (issue 15), on the fake suite through the CLI: job identity and config.json,
--set / --config / --preset / --sweep, seed lists and the job bound, the lock on --out, honest smoke output,
the dry-run cost estimate, --dataset, plug-in methods, --logger."""
from __future__ import annotations

import importlib.util
import json
import os
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
from benchmark import overrides, plots, runner, suites
from benchmark.suites import plan
from datasets_cli.main import cli

FAKE = ["run", "--suite", "fake", "--device", "cpu"]


@pytest.fixture
def fake_suite(monkeypatch):
    harness_fakes.register(monkeypatch)


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_line_error(res, fragment: str) -> None:
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and fragment in lines[0], res.output


def final_rows(out: Path) -> pd.DataFrame:
    results = pd.read_csv(out / "fake" / "results.csv")
    return results[results["phase"] == "final"]


def test_a_user_error_inside_a_job_exits_2_with_its_line(fake_suite, tmp_path, monkeypatch):
    """A job stopped by an OwbenchError (e.g. a chunk failing its checksum) ends the run with exit 2 and that
    error as the last line, not a traceback; a rerun that succeeds drops the stale error file."""
    monkeypatch.setenv("OWB_FAKE_USER_ERROR", "1")
    out = str(tmp_path / "runs")
    res = invoke(*FAKE, "--methods", "fake-broken,fake-good", "--seeds", "1", "--out", out)
    assert res.exit_code == 2, res.output
    last = res.output.strip().splitlines()[-1]
    assert last.startswith("error: fake/fake-broken/") and "fails its checksum" in last and "datasets verify" in last
    assert "Traceback" not in res.output
    job = tmp_path / "runs" / "fake" / "fake-broken" / "walker_walk__walker_downhill" / "seed0"
    assert (job / "error.txt").read_text().startswith("fake.zarr is corrupt")
    monkeypatch.delenv("OWB_FAKE_USER_ERROR")
    assert invoke(*FAKE, "--methods", "fake-broken", "--seeds", "1", "--out", out).exit_code == 1  # a code failure
    assert not (job / "error.txt").exists()


# -- 1. provenance and identity ---------------------------------------------------------------------------

def test_changed_budget_is_refused_then_rerun_stale_reruns_it(fake_suite, tmp_path):
    out = str(tmp_path / "runs")
    first = invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--steps", "2", "--out", out)
    assert first.exit_code == 0, first.output
    seed0 = tmp_path / "runs/fake/fake-good/walker_walk__walker_downhill/seed0"
    record = json.loads((seed0 / "config.json").read_text())
    assert record["identity"]["budget"]["steps"] == 2 and record["identity"]["seed"] == 0
    assert record["device"] == "cpu" and "torch" in record["software"]["libraries"]

    mixed = invoke(*FAKE, "--methods", "fake-good", "--seeds", "2", "--steps", "4", "--out", out)
    one_line_error(mixed, "budget.steps: 2 -> 4")
    assert "--rerun-stale" in mixed.output and not (seed0.parent / "seed1").exists()  # nothing ran

    again = invoke(*FAKE, "--methods", "fake-good", "--seeds", "2", "--steps", "4", "--out", out, "--rerun-stale")
    assert again.exit_code == 0, again.output
    assert "2 done, 0 skipped" in again.output
    assert set(final_rows(tmp_path / "runs")["step"]) == {4}  # never 2 and 4 averaged
    moved = list((tmp_path / "runs" / ".stale").glob("*/fake/fake-good/walker_walk__walker_downhill/seed0/result.json"))
    assert len(moved) == 1 and json.loads(moved[0].read_text())["steps"] == 2  # kept, not deleted


def test_a_second_profile_in_one_suite_folder_is_refused_before_running(fake_suite, tmp_path, monkeypatch):
    fake = suites.SUITES["fake"]
    monkeypatch.setitem(suites.SUITES, "fake", suites.Suite("fake", "", fake.groups,
                                                            {"smoke": harness_fakes.BUDGET, "quick": harness_fakes.BUDGET}))
    out = str(tmp_path / "runs")
    assert invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--out", out).exit_code == 0
    quick = invoke(*FAKE, "--methods", "fake-bad", "--seeds", "1", "--profile", "quick", "--out", out)
    one_line_error(quick, "holds 'smoke' results")
    assert not (tmp_path / "runs/fake/fake-bad").exists()


def test_report_refuses_a_cell_of_two_identities(fake_suite, tmp_path):
    out = tmp_path / "runs"
    assert invoke(*FAKE, "--methods", "fake-good", "--seeds", "2", "--out", str(out)).exit_code == 0
    seed1 = out / "fake/fake-good/walker_walk__walker_downhill/seed1/config.json"
    record = json.loads(seed1.read_text())
    record["identity"]["budget"]["steps"] = 99
    seed1.write_text(json.dumps(record))
    one_line_error(invoke("report", str(out)), "budget.steps: 6 -> 99")


def test_set_reaches_the_trainer_and_config_json_and_is_part_of_identity(fake_suite, tmp_path):
    out = str(tmp_path / "runs")
    res = invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--set", "batch_size=3", "--out", out)
    assert res.exit_code == 0, res.output
    job = tmp_path / "runs/fake/fake-good/walker_walk__walker_downhill/seed0"
    assert "with batch 3, preset smoke" in (job / "job.log").read_text()
    ident = json.loads((job / "config.json").read_text())["identity"]
    assert ident["config"]["batch_size"] == 3 and ident["overrides"] == {"batch_size": 3}
    one_line_error(invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--out", out), "config.batch_size: 3 -> 4")


def test_preset_and_config_file_run_and_are_recorded(fake_suite, tmp_path):
    (tmp_path / "c.yaml").write_text("fake-good:\n  batch_size: 7\n")
    res = invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--preset", "code", "--config",
                 str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs"))
    assert res.exit_code == 0, res.output
    job = tmp_path / "runs/fake/fake-good/walker_walk__walker_downhill/seed0"
    assert "with batch 7, preset code" in (job / "job.log").read_text()
    ident = json.loads((job / "config.json").read_text())["identity"]
    assert ident["preset"] == "code" and ident["config"]["batch_size"] == 7


# -- 2. overrides, presets and config files (plan level: no jobs run) -------------------------------------

def test_scoped_and_unscoped_sets_and_config_files(tmp_path):
    toml = tmp_path / "c.toml"
    toml.write_text("batch_size = 8\n[coworld]\nbeta2 = 1\n")
    yaml = tmp_path / "c.yaml"
    yaml.write_text("coworld.beta2: 2.0\nwm:\n  deter: 16\n")
    for path, beta2, extra in ((toml, 1.0, {"batch_size": 8}), (yaml, 2.0, {"wm.deter": 16})):
        settings = overrides.Settings(overrides.read_config_file(path) + overrides.parse_sets(["batch_size=3"]))
        jobs = {j.method: j for j in plan("smoke", "smoke", ["coworld", "dreamerv2"], ["walker_downhill"], 1,
                                          settings=settings)}
        assert jobs["coworld"].base[1] == {**extra, "beta2": beta2, "batch_size": 3}  # --set wins over the file
        assert jobs["dreamerv2"].base[1] == {**extra, "batch_size": 3}  # coworld.beta2 is coworld's only
        assert isinstance(jobs["coworld"].base[1]["beta2"], float)


def test_arxiv_preset_scoped_to_coworld_and_code_preset_for_dreamerv2():
    jobs = plan("smoke", "smoke", ["coworld", "dreamerv2"], ["walker_downhill"], 1,
                settings=overrides.Settings(presets=overrides.parse_presets(["coworld=arxiv-v1"])))
    assert {j.method: j.config_preset for j in jobs} == {"coworld": "arxiv-v1", "dreamerv2": "smoke"}
    code = plan("smoke", "smoke", ["dreamerv2"], ["walker_downhill"], 1,
                settings=overrides.Settings(presets=(("", "code"),)))
    assert code[0].config_preset == "code"


@pytest.mark.parametrize("args, fragment", [
    (["--set", "batch_sz=3"], "unknown config field of random, dreamerv2 in --set 'batch_sz'; did you mean 'batch_size'"),
    (["--set", "batch_size=many"], 'batch_size="many": expected int'),
    (["--set", "dreamerv2.bogus=1"], "unknown config field of dreamerv2 in --set 'bogus'"),
    (["--set", "batch_size"], "is not KEY=VALUE"),
    (["--preset", "arxiv-v1"], "unknown preset 'arxiv-v1'"),
    (["--sweep", "batch_size="], "is not KEY=VALUE"),
    (["--config", "missing.toml"], "no such file"),
    (["--seeds", "100000000"], "more than 10000"),
    (["--seeds", "-1,2"], "seeds are numbers >= 0"),
    (["--pairs", ",,,"], "--pairs names no pair"),
    (["--methods", ","], "--methods names no method"),
    (["--dataset", "walker_run=x"], "unknown target 'walker_run'"),
    (["--dataset", "walker_downhill=nowhere"], "no dataset at"),
    (["--executor", "ray", "--ray-address", "127.0.0.1:1"], "no Ray cluster answers there"),
    (["--logger", "tensorboard"], "pip install 'owbench[tensorboard]'"),
])
def test_run_mistakes_exit_2_with_one_line(args, fragment, tmp_path):
    pytest.importorskip("ray") if "ray" in args else None
    if "tensorboard" in args and importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed")
    res = invoke("run", "--suite", "smoke", "--methods", "random,dreamerv2", "--pairs", "walker_downhill",
                 *args, "--out", str(tmp_path / "runs"), *(["--dry-run"] if "--seeds" in args else []))
    one_line_error(res, fragment)
    assert not (tmp_path / "runs").exists()


def test_huge_seed_count_is_refused_before_allocation():
    from benchmark.suites import SUITES

    smoke = SUITES["smoke"]
    per_seed = sum(len(g.pairs) * len(g.methods) for g in smoke.groups)  # (method, pair) combinations
    start = time.perf_counter()
    with pytest.raises(Exception, match=f"{per_seed * 100_000_000} jobs"):
        plan("smoke", "smoke", seeds="100000000")
    assert time.perf_counter() - start < 5


# -- 3./4. sweeps and seed lists ---------------------------------------------------------------------------

def test_seed_list_runs_exactly_those_seeds(fake_suite, tmp_path):
    res = invoke(*FAKE, "--methods", "fake-good", "--seeds", "2,5", "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in (tmp_path / "fake/fake-good/walker_walk__walker_downhill").iterdir()) == \
        ["seed2", "seed5"]


def test_sweep_runs_one_job_per_value_and_reports_sensitivity(fake_suite, tmp_path):
    res = invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--sweep", "fake-good.offset=0,50",
                 "--out", str(tmp_path))
    assert res.exit_code == 0, res.output
    assert "2 done" in res.output
    sens = pd.read_csv(tmp_path / "fake" / "sensitivity.csv").set_index("offset")
    assert list(sens.index) == [0.0, 50.0] and set(sens["method"]) == {"fake-good"}
    assert np.isclose(sens.loc[50.0, "mean"] - sens.loc[0.0, "mean"], 50.0)
    assert (tmp_path / "fake/sensitivity/fake-good.png").stat().st_size > 0
    assert "Sensitivity (--sweep)" in (tmp_path / "fake/report.html").read_text()
    assert (tmp_path / "fake/fake-good[offset=50.0]/walker_walk__walker_downhill/seed0/result.json").exists()


# -- 5. one writer per run directory -----------------------------------------------------------------------

def test_second_run_into_a_locked_out_is_refused_and_rows_never_duplicate(fake_suite, tmp_path):
    out = tmp_path / "runs"
    script = textwrap.dedent(f"""
        import harness_fakes
        from benchmark import runner, suites
        harness_fakes.register()
        jobs = suites.plan("fake", "smoke", methods=["fake-good"], seeds=1)
        runner.run_sweep(jobs, {str(out)!r}, workers=1, progress=False, device="cpu")
    """)
    env = {**os.environ, "OWB_FAKE_STEP_S": "0.3", "PYTHONPATH": os.pathsep.join(sys.path)}
    first = subprocess.Popen([sys.executable, "-c", script], env=env)
    try:
        deadline = time.time() + 120
        while not (out / runner.LOCK).exists() or not (out / runner.LOCK).read_text():
            assert time.time() < deadline and first.poll() is None, "the first run never took the lock"
            time.sleep(0.1)
        second = invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--out", str(out))
        one_line_error(second, "is being written by another owbench run (pid")
    finally:
        assert first.wait(timeout=180) == 0
    again = invoke(*FAKE, "--methods", "fake-good", "--seeds", "1", "--out", str(out))
    assert again.exit_code == 0 and "0 done, 1 skipped" in again.output
    assert len(final_rows(out)) == harness_fakes.BUDGET.eval_episodes  # one job's episodes, once
    job = out / "fake/fake-good/walker_walk__walker_downhill/seed0"
    assert (job / "starts.txt").read_text() == "0\n"


# -- 6. honest output --------------------------------------------------------------------------------------

def test_smoke_output_says_it_is_a_smoke_check_and_withholds_statistics(fake_suite, tmp_path):
    res = invoke(*FAKE, "--methods", "fake-good,fake-bad", "--out", str(tmp_path))  # 2 seeds: too few
    assert res.exit_code == 0, res.output
    assert res.output.count("SMOKE CHECK") == 2  # above the table (table.md) and at the end
    suite = tmp_path / "fake"
    page = (suite / "report.html").read_text()
    assert "class='banner'>SMOKE CHECK" in page and "<b>" not in page.split("Normalised")[0]
    agg, poi = pd.read_csv(suite / "stats.csv"), pd.read_csv(suite / "improvement.csv")
    assert agg["iqm"].isna().all() and agg["iqm_ci_low"].isna().all()
    assert poi["p_improvement"].isna().all()
    assert set(agg["note"]) == set(poi["note"]) == {"needs >= 3 runs (seeds) per task, has 2"}
    meta = json.loads((suite / "metadata.json").read_text())
    assert meta["profile"] == ["smoke"] and meta["devices"] == ["cpu"] and "torch" in meta["libraries"]
    assert meta["budgets"]["fake-good"]["steps"] == 6 and "<h2>Metadata</h2>" in page


def test_random_policy_has_its_own_colour_and_a_labelled_band(tmp_path, monkeypatch):
    figures = []
    monkeypatch.setattr(plots.plt, "close", figures.append)
    rows = [{"source": "a", "target": "b", "method": m, "seed": s, "phase": ph, "step": st, "return": r}
            for s in range(2) for m, ph, st, r in (("random", "final", 0, 5.0 + s), ("dreamerv2", "eval", 10, 1.0),
                                                    ("dreamerv2", "eval", 20, 2.0 + s))]
    plots.learning_curves(pd.DataFrame(rows), tmp_path)
    ax = figures[0].axes[0]
    random_line = next(line for line in ax.get_lines() if line.get_label() == "random (mean)")
    assert random_line.get_color() == plots.REFERENCE_COLOUR
    assert next(line for line in ax.get_lines() if line.get_label() == "dreamerv2").get_color() != plots.REFERENCE_COLOUR
    assert "random ± std across seeds" in [t.get_text() for t in ax.get_legend().get_texts()]


# -- 7. cost before launch, progress -----------------------------------------------------------------------

def test_dry_run_estimates_hours_and_disk_and_caches_the_timing(tmp_path, owbench_home):
    args = ["run", "--suite", "smoke", "--methods", "random,dreamerv2", "--pairs", "walker_downhill", "--seeds", "1",
            "--device", "cpu", "--out", str(tmp_path), "--dry-run"]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "timing 3 updates of dreamerv2" in first.output and "estimated total:" in first.output
    assert "datasets to collect: 1, about 2 MB of raw frames on disk" in first.output  # 2 x 101 x 64² x 3
    cache = json.loads((owbench_home / "cache" / "update_seconds.json").read_text())
    (timings,) = cache.values()
    assert any(v and v > 0 for v in timings.values()) and 0.0 in timings.values()  # dreamerv2 timed, random 0
    second = invoke(*args)
    assert second.exit_code == 0 and "timing" not in second.output  # cached per machine


def test_cpu_timing_runs_on_one_thread_and_restores_the_thread_count(monkeypatch):
    """Several torch threads on a busy CPU spin-wait on each other (a timing came out 25x slow beside two
    training jobs); one thread's CPU time is what other load barely changes."""
    import torch

    from agents.world_model.agent import DreamerV2Agent
    from benchmark import cost, suites

    seen, update = [], DreamerV2Agent.update
    monkeypatch.setattr(DreamerV2Agent, "update", lambda self, batch: (seen.append(torch.get_num_threads()),
                                                                      update(self, batch))[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        job = next(j for j in suites.plan("smoke", "smoke") if j.base[0] == "dreamerv2")
        assert cost.measure_update_seconds(job, "cpu") > 0
        assert seen and set(seen) == {1} and torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_updates_done_reads_the_last_logged_step(tmp_path):
    assert runner.updates_done(tmp_path) == 0
    (tmp_path / "metrics.csv").write_text("step,loss\n" + "".join(f"{s},0.5\n" for s in range(100, 5100, 100)))
    (tmp_path / "eval.csv").write_text("step,episode\n2500,0\n")
    assert runner.updates_done(tmp_path) == 5000


def test_each_evaluation_is_one_line_of_the_job_log(tmp_path, capsys):
    from agents.protocol import EvalResult
    from agents.training import log_eval

    log_eval(tmp_path, 40, EvalResult(np.array([1.0, 3.0]), np.zeros(2, bool), np.full(2, 5), [7, 8], None))
    assert capsys.readouterr().out == "eval at update 40: return 2.0 (std 1.0) over 2 episodes\n"


# -- 8. your own data and your own method ------------------------------------------------------------------

def test_dataset_flag_runs_on_an_imported_dataset_with_reference_returns(monkeypatch, tmp_path):
    from collectors.collect import collect
    from collectors.export import export_dataset, import_dataset

    harness_fakes.register(monkeypatch)
    group = suites.Group((harness_fakes.PAIR,), ("fake-good",), target_qualities=("random",), online_source=True)
    monkeypatch.setitem(suites.SUITES, "fake-data", suites.Suite("fake-data", "", (group,),
                                                                 {"smoke": harness_fakes.BUDGET}))
    collect("walker_downhill", "random", out=tmp_path / "src.zarr", episodes=1, image_size=16, max_episode_steps=5)
    export_dataset(tmp_path / "src.zarr", tmp_path / "export", "npz")
    for sidecar in (tmp_path / "export").glob("*.json"):  # a foreign file: no owbench metadata
        sidecar.unlink()
    imported = import_dataset(tmp_path / "export", tmp_path / "imported.zarr", env_id="walker_downhill",
                              quality="expert")
    assert "reference_returns" not in imported.attrs
    res = invoke("run", "--suite", "fake-data", "--seeds", "1", "--device", "cpu", "--out", str(tmp_path / "runs"),
                 "--dataset", f"walker_downhill={tmp_path / 'imported.zarr'}")
    assert res.exit_code == 0, res.output
    job = tmp_path / "runs/fake-data/fake-good/walker_walk__walker_downhill/seed0"
    assert json.loads((job / "result.json").read_text())["reference_returns"]["expert"] > 0
    (data,) = json.loads((job / "config.json").read_text())["datasets"]
    assert data["location"] == str(tmp_path / "imported.zarr") and data["episodes"] == 1 and len(data["fingerprint"]) == 64
    results = pd.read_csv(tmp_path / "runs/fake-data/results.csv")
    assert results["normalized"].notna().all()
    collect("walker_walk", "random", out=tmp_path / "other.zarr", episodes=1, image_size=16, max_episode_steps=2)
    wrong = invoke("run", "--suite", "fake-data", "--seeds", "1", "--out", str(tmp_path / "r2"),
                   "--dataset", f"walker_downhill={tmp_path / 'other.zarr'}")
    one_line_error(wrong, "holds episodes of walker_walk, not walker_downhill")


def test_a_method_installed_through_an_entry_point_runs(fake_suite, tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "owb_plugin_demo-0.1.dist-info").mkdir(parents=True)
    (site / "owb_plugin_demo-0.1.dist-info" / "METADATA").write_text("Name: owb-plugin-demo\nVersion: 0.1\n")
    (site / "owb_plugin_demo-0.1.dist-info" / "entry_points.txt").write_text(
        "[owbench.methods]\nplugin-demo = owb_plugin_demo:METHOD\n")
    (site / "owb_plugin_demo.py").write_text(textwrap.dedent("""
        from benchmark.methods import Method
        from harness_fakes import Config, make_agent, train  # the method's Config / make_agent / train

        METHOD = Method("plugin-demo", __name__, "sequence", description="a user's method")
    """))
    monkeypatch.syspath_prepend(str(site))
    res = invoke(*FAKE, "--methods", "plugin-demo,fake-good", "--seeds", "1", "--out", str(tmp_path / "runs"))
    assert res.exit_code == 0, res.output
    assert "2 done" in res.output
    log = (tmp_path / "runs/fake/plugin-demo/walker_walk__walker_downhill/seed0/job.log").read_text()
    assert "fake train of plugin-demo" in log
    assert "plugin-demo" in set(final_rows(tmp_path / "runs")["method"])


# -- 10. datasets list -------------------------------------------------------------------------------------

def test_datasets_list_never_cuts_the_id(owbench_home, monkeypatch):
    from collectors.collect import ensure_dataset

    monkeypatch.setenv("COLUMNS", "80")
    ensure_dataset("mw_button-press-topdown", "random", episodes=1, variant="smoke", image_size=16,
                   max_episode_steps=3)
    res = invoke("datasets", "list")
    assert res.exit_code == 0 and "metaworld/mw_button-press-topdown/random-smoke-16px-v1" in res.output
