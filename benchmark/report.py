"""`owbench report`: everything a suite run directory yields, and one self-contained report.html.

Writes into `<out>/<suite>/`: results.csv, table.csv/.tex/.md, stats.csv (IQM + 95% CI per method),
improvement.csv (probability of improvement), curves/*.png, filmstrips/*.png and report.html with
every PNG embedded as base64 (the file can be mailed or archived on its own).
"""
from __future__ import annotations

import base64
import html
from pathlib import Path

import pandas as pd

from benchmark import plots, stats, tables
from benchmark.results import final, job_records, write_results
from benchmark.rundir import RESULT_GLOB
from benchmark.suites import SUITES, data_note
from collectors.errors import OwbenchError


def suite_dirs(run_dir: Path) -> list[Path]:
    """`run_dir` itself when it is one suite's folder, else the suite folders inside it."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise OwbenchError(f"no run directory at {run_dir}; pass the --out folder of `owbench run`")
    if any(run_dir.glob(RESULT_GLOB)):
        return [run_dir]
    found = sorted(d for d in run_dir.iterdir() if d.is_dir() and any(d.glob(RESULT_GLOB)))
    if not found:
        raise OwbenchError(f"no finished job under {run_dir}; run `owbench run --suite NAME --out {run_dir}` first")
    return found


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}"></figure>'


def _html(title: str, caption: str, table: str, normalized: pd.DataFrame, agg: pd.DataFrame, poi: pd.DataFrame,
          curves: list[Path], strips: list[Path]) -> str:
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:center}img{max-width:100%}"
             "figure{margin:0.5em 0;display:inline-block}")
    fmt = {"float_format": lambda v: f"{v:.3f}", "index": False}
    return "\n".join([
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<h2>Final evaluation return</h2>{table}<p>{html.escape(caption)}</p>",
        "<h2>Normalised score 100·(R − random)/(expert − random)</h2>",
        normalized.to_html(float_format=lambda v: f"{v:.1f}", na_rep="–"),
        "<h2>Aggregate (IQM, 95% stratified-bootstrap CI)</h2>", agg.to_html(**fmt),
        "<h2>Probability of improvement P(method_x &gt; method_y)</h2>", poi.to_html(**fmt),
        "<h2>Learning curves</h2>", *map(_img, curves),
        "<h2>Policy rollouts (one evaluation episode)</h2>", *map(_img, strips),
        "</body></html>"])


def write_report(suite_dir: Path, paper: bool = True, reps: int = 2000) -> Path:
    """Build every output of one suite run directory; returns the path of report.html."""
    suite_dir = Path(suite_dir)
    results = write_results(suite_dir)
    last = final(results)
    suite, profile = results["suite"].iloc[0], results["profile"].iloc[0]
    known = SUITES.get(suite)
    paper_id = known.paper if paper and known else ""
    note = data_note(known, profile) if known and profile in known.budgets else ""
    wide, text = tables.write_tables(last, suite_dir, suite, profile, paper_id, known.methods if known else (), note)
    agg, poi = stats.aggregate(last, reps=reps)
    agg.to_csv(suite_dir / "stats.csv", index=False)
    poi.to_csv(suite_dir / "improvement.csv", index=False)
    curves = plots.learning_curves(results, suite_dir / "curves")
    strips = plots.filmstrips(job_records(suite_dir), suite_dir / "filmstrips")
    page = _html(f"owbench {suite} ({profile})", text, tables.html_table(wide), tables.normalized_table(wide),
                 agg, poi, curves, strips)
    path = suite_dir / "report.html"
    path.write_text(page)
    return path
