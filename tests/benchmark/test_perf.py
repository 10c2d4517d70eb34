"""The perf machinery on tiny sizes: output structure, ratios and verdicts, never timings."""
from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from benchmark import perf
from benchmark.perf import Figure, PerfConfig
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
    table = perf.PerfReport({}, {}, [faster, smaller, absolute, missing]).markdown().splitlines()
    assert len(table) == 6 and all(line.count("|") == 10 for line in table)
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


def test_world_model_figures_pair_optimised_and_plain():
    figures = perf.measure_world_model(TINY, "cpu")
    assert [f.section for f in figures] == ["world-model"] * 2
    assert all(f.project > 0 and f.naive > 0 and f.ratio > 0 for f in figures)


def test_a_failing_section_is_reported_not_lost(monkeypatch):
    monkeypatch.setattr(perf, "measure_faiss", lambda cfg: 1 / 0)
    report = perf.run_perf(("faiss",), "smoke", "cpu")
    assert [(f.name, f.passed) for f in report.figures] == [("section failed", None)]
    assert "ZeroDivisionError" in report.figures[0].note
