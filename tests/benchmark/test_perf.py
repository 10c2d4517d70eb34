"""The perf machinery on tiny sizes: output structure, ratios and verdicts, never timings."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark import perf
from benchmark.perf import Figure, PerfConfig
from collectors import store
from datasets_cli.main import cli

TINY = PerfConfig.preset("smoke")


def synthetic_episodes(n: int = 3, length: int = 12) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(0)
    flags = np.zeros(length, bool)
    return [{"image": rng.integers(0, 255, (length, 16, 16, 3), dtype=np.uint8),
             "state": rng.normal(size=(length, 4)).astype(np.float32),
             "action": rng.uniform(-1, 1, (length, 2)).astype(np.float32),
             "reward": rng.random(length).astype(np.float32), "discount": np.ones(length, np.float32),
             "is_first": np.r_[True, flags[1:]], "is_last": np.r_[flags[1:], True], "is_terminal": flags.copy(),
             "physics": rng.normal(size=(length, 3))} for _ in range(n)]


def test_figure_ratio_and_verdict():
    faster = Figure("s", "speed", "x/s", project=30.0, naive=10.0, target=1.5)
    assert faster.ratio == pytest.approx(3.0) and faster.passed and faster.target_text == ">= 1.5x"
    smaller = Figure("s", "size", "B", project=120.0, naive=100.0, target=1.1, higher_is_better=False)
    assert smaller.passed is False
    absolute = Figure("s", "rate", "batches/s", project=50.0, target=40.0)
    assert absolute.ratio is None and absolute.passed and absolute.target_text == ">= 40 batches/s"
    missing = Figure("s", "n/a", "u", project=None)
    assert missing.passed is None and json.dumps(missing.as_dict())
    table = perf.PerfReport({}, {}, [faster, smaller, absolute, missing]).markdown().splitlines()[:6]
    assert all(line.count("|") == 11 for line in table)
    assert "3.00x" in table[2] and "**no**" in table[3]


def test_store_comparison_and_sampler_children(tmp_path):
    episodes = synthetic_episodes()
    figures = perf.compare_store(episodes, tmp_path)
    assert [f.unit for f in figures] == ["MB/s", "B/frame"]
    assert all(f.project > 0 and f.naive > 0 for f in figures)
    cfg = PerfConfig.preset("smoke", sampler_frames=40, sampler_seconds=0.05, batch_size=2, length=5)
    store_path, npz_path = perf.build_sampler_data(cfg, episodes, tmp_path)
    assert len(list(npz_path.glob("*-12.npz"))) == 4  # DreamerV2 names, 4 x 12 rows >= 40
    for kind, path in (("project", store_path), ("zarr-per-window", store_path), ("in-memory", npz_path)):
        rate, rss = perf.sampler_child(kind, str(path), cfg)
        assert rate > 0 and rss > 0


def test_brute_force_knn_is_exact_and_faiss_figures():
    rng = np.random.default_rng(0)
    base, queries = rng.normal(size=(300, 8)).astype(np.float32), rng.normal(size=(5, 8)).astype(np.float32)
    got = perf.brute_force_knn(base, queries, k=4, block=64)
    d = ((queries[:, None] - base[None]) ** 2).sum(-1)
    assert np.array_equal(np.sort(got, 1), np.sort(np.argsort(d, 1)[:, :4], 1))
    figures = perf.measure_faiss(TINY)
    recall = figures[-1]
    assert recall.unit == "recall" and 0 <= recall.project <= 1 and recall.passed is not None
    assert all(f.section == "faiss" for f in figures)


def test_naive_collection_loop_counts_frames():
    assert perf.naive_collect(episodes=1, steps=2, image_size=16) > 0


def test_collect_section_compares_the_whole_command_with_a_plain_script(tmp_path):
    """Every collect figure is measured in the run; the whole-command one runs `owbench collect` and
    benchmark/naive_collect.py as fresh processes, and the plain script writes its npz files."""
    figures = perf.measure_collect(PerfConfig.preset("smoke", command_rounds=2), tmp_path)
    assert [f.section for f in figures] == ["collect"] * 4 and all(f.recorded is None for f in figures)
    command = figures[-1]
    assert "whole command" in command.name and command.project > 0 and command.naive > 0 and command.target == 1.5
    assert "median of 2 alternating rounds" in command.note
    for r in range(2):  # both sides ran in every round
        episode = np.load(tmp_path / f"naive-npz-{r}" / "episode_00000.npz")
        assert episode["image"].shape == (9, 64, 64, 3) and episode["action"].shape == (8, 6)
        assert store.open_dataset(tmp_path / f"cmd-{r}.zarr").n_steps == 9


def test_cli_json_and_bad_section(monkeypatch):
    monkeypatch.setattr(perf, "PerfConfig", type("Tiny", (), {"preset": staticmethod(lambda name: TINY)}))
    result = CliRunner().invoke(cli, ["perf", "--only", "faiss", "--json", "--quick", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output[result.output.index("{"):])
    assert report["machine"]["device"] == "cpu" and report["figures"]
    assert {"section", "name", "unit", "project", "naive", "ratio", "target", "passed"} <= report["figures"][0].keys()
    bad = CliRunner().invoke(cli, ["perf", "--only", "sampler,colect"])
    assert bad.exit_code == 2 and "unknown perf section 'colect'" in bad.output
    assert len(bad.output.strip().splitlines()) == 1


def fake_world_model_updates(preset, device, iters, optimized, overrides=None):
    """perf_wm's result shape at dreamer-torch's shape (the real `code` update takes seconds)."""
    seconds = 2.0 if optimized else 4.0
    return {"preset": preset, "device": device, "optimized": optimized, "iters": iters, "threads": 2,
            "batch": (overrides or {}).get("batch_size", 16), "seq_len": (overrides or {}).get("seq_len", 50),
            "image_size": 64, "updates_per_s": 2 / seconds, "seconds_per_update": seconds / 2,
            "agent_updates_per_s": 1 / seconds, "agent_seconds_per_update": seconds}


def test_dreamer_torch_figure_is_labelled_recorded_never_a_ratio(monkeypatch):
    from benchmark import perf_wm

    monkeypatch.setattr(perf_wm, "measure_world_model_updates", fake_world_model_updates)
    cfg = PerfConfig.preset("full", wm_presets=("code",))
    figures = perf.measure_world_model(cfg, "cpu")
    measured = [f for f in figures if f.recorded is None]
    assert len(measured) == 2 and all(f.ratio == pytest.approx(2.0) for f in measured)  # both sides measured here
    (dreamer_torch,) = [f for f in figures if f.recorded is not None]
    assert dreamer_torch.project == 2.0 and dreamer_torch.naive is None  # the recorded figure is no ratio's side
    assert dreamer_torch.ratio is None and dreamer_torch.passed is None and dreamer_torch.target is None
    assert "recorded, not measured here" in dreamer_torch.recorded_text and "issue 19" in dreamer_torch.recorded_text
    report = perf.PerfReport(perf.machine_info("cpu"), {}, figures)
    markdown = report.markdown()
    assert "recorded, not measured here" in markdown and "measured here with" not in markdown
    assert "Not measured in this run: the 'recorded elsewhere' figures" in markdown
    assert report.as_dict()["figures"][-1]["recorded"]["where"].startswith("GitHub issue 19")
    # at any other shape (quick's 16 x 16) dreamer-torch's seconds would compare unlike with like: not shown
    quick = perf.measure_world_model(PerfConfig.preset("quick"), "cpu")
    assert quick and all(f.recorded is None for f in quick)


def test_cli_footer_claims_only_what_it_measured(monkeypatch):
    from benchmark import perf_wm

    monkeypatch.setattr(perf_wm, "measure_world_model_updates", fake_world_model_updates)
    monkeypatch.setattr(perf, "PerfConfig", type("Full", (), {"preset": staticmethod(
        lambda name: PerfConfig.preset("full", wm_presets=("code",)))}))
    result = CliRunner().invoke(cli, ["perf", "--only", "world-model", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "recorded elsewhere" in text  # the column of the terminal table
    assert "Measured in this run: the project and naive columns" in text and "at the end" not in text
    assert "Not measured in this run" in text
    markdown = CliRunner().invoke(cli, ["perf", "--only", "world-model", "--device", "cpu", "--markdown"]).output
    row = next(line for line in markdown.splitlines() if "dreamer-torch's DMC shape" in line and line.startswith("|"))
    assert "2.20-2.31 (recorded, not measured here: GitHub issue 19" in row


def test_quick_plan_is_small():
    """`owbench perf --quick` is meant to take about a minute: its world-model work (the section that
    took 5 min 40 s) is one preset at 16 x 16 sequences, under a quarter of the full run's code-preset timing alone."""
    quick, full = PerfConfig.preset("quick"), PerfConfig.preset("full")
    assert quick.wm_presets == ("code",) and "paper" not in quick.wm_presets
    overrides = perf.world_model_overrides(quick)
    frames = overrides["batch_size"] * overrides["seq_len"] * len(quick.wm_presets) * (quick.wm_iters + 1)
    full_code_frames = 16 * 50 * (full.wm_iters + 1)
    assert frames * 4 <= full_code_frames
    assert quick.faiss_vectors * 10 <= full.faiss_vectors and quick.sampler_seconds * 3 <= full.sampler_seconds


def test_world_model_figures_pair_optimised_and_plain():
    figures = perf.measure_world_model(TINY, "cpu")
    assert [f.section for f in figures] == ["world-model"] * 2
    assert all(f.project > 0 and f.naive > 0 and f.ratio > 0 for f in figures)


def test_a_failing_section_is_reported_not_lost(monkeypatch):
    monkeypatch.setattr(perf, "measure_faiss", lambda cfg: 1 / 0)
    report = perf.run_perf(("faiss",), "smoke", "cpu")
    assert [(f.name, f.passed) for f in report.figures] == [("section failed", None)]
    assert "ZeroDivisionError" in report.figures[0].note
