"""The smoke suite end to end on CPU with real methods: random + offline DreamerV2, one pair, two seeds.

Collects a tiny dataset, trains, evaluates on the real task, and writes every output; a re-run skips all.
A few minutes on a 2-core machine (500-step evaluation episodes with rendering); CI runs it, as issue 5 asks.
"""
from __future__ import annotations

import pandas as pd
import pytest
from click.testing import CliRunner

from datasets_cli.main import cli

ARGS = ["run", "--suite", "smoke", "--methods", "random,dreamerv2", "--pairs", "walker_downhill", "--seeds", "2",
        "--workers", "2", "--device", "cpu"]


def test_smoke_suite_end_to_end(tmp_path):
    out = tmp_path / "runs"
    first = CliRunner().invoke(cli, [*ARGS, "--out", str(out)])
    assert first.exit_code == 0, first.output
    assert "4 done, 0 skipped" in first.output
    suite_dir = out / "smoke"
    for name in ("results.csv", "table.csv", "table.tex", "table.md", "stats.csv", "improvement.csv", "report.html",
                 "curves/walker_walk__walker_downhill.png",
                 "filmstrips/random__walker_walk__walker_downhill.png",
                 "filmstrips/dreamerv2__walker_walk__walker_downhill.png"):
        assert (suite_dir / name).stat().st_size > 0, name
    results = pd.read_csv(suite_dir / "results.csv")
    final = results[results["phase"] == "final"]
    assert set(final["method"]) == {"random", "dreamerv2"} and set(final["seed"]) == {0, 1}
    assert final["normalized"].notna().all()  # reference returns of the target dataset
    assert sorted(results.loc[(results["method"] == "dreamerv2") & (results["phase"] == "eval"), "step"].unique()) \
        == [10, 20]
    table = pd.read_csv(suite_dir / "table.csv").set_index(["source", "target"])
    for method in ("random", "dreamerv2"):
        r = final.loc[final["method"] == method, "return"]
        assert table.loc[("walker_walk", "walker_downhill"), f"{method} mean"] == pytest.approx(r.mean())

    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
    again = CliRunner().invoke(cli, [*ARGS, "--out", str(out)])
    assert again.exit_code == 0 and "0 done, 4 skipped" in again.output
    assert stamps == {p: p.stat().st_mtime_ns for p in out.rglob("result.json")}
