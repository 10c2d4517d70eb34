"""`owbench report`: everything a suite run directory yields, and one self-contained report.html.

Writes into `<out>/<suite>/`: results.csv, table.csv/.tex/.md, stats.csv (IQM + 95% CI per method),
improvement.csv (probability of improvement), metadata.json (software, devices, budgets, datasets),
curves/*.png, filmstrips/*.png, with a --sweep also sensitivity.csv and sensitivity/*.png, and
report.html with every PNG embedded as base64 (the file can be mailed or archived on its own).
"""
from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import plots, stats, tables
from benchmark.results import final, job_records, write_results
from benchmark.rundir import CONFIG, RESULT_GLOB
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


def metadata(jobs: list[tuple[Path, dict]]) -> dict[str, Any]:
    """What the report's numbers rest on, from the jobs' config.json and result.json: owbench version and
    commit, libraries, devices, profile, presets, budgets, and each dataset's size and return statistics."""
    software, budgets, presets, datasets = {}, {}, {}, {}
    for run_dir, rec in jobs:
        path = run_dir / CONFIG
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        software = software or record.get("software", {})
        ident = record["identity"]
        budgets[rec["method"]] = ident["budget"]
        presets[rec["method"]] = ident["preset"] + "".join(f", {k}={v}" for k, v in ident["overrides"].items())
        for ds in record.get("datasets", []):
            datasets[ds["location"]] = {k: ds[k] for k in ("env_id", "quality", "episodes", "steps", "fingerprint")} \
                | {k: ds["returns"].get(k) for k in ("return mean", "return std", "return min", "return max")}
    return {"profile": sorted({rec["profile"] for _, rec in jobs}), "devices": sorted({rec["device"] for _, rec in jobs}),
            "owbench": software.get("libraries", {}).get("owbench", "?"), "commit": software.get("owbench_commit", ""),
            "libraries": software.get("libraries", {}), "python": software.get("python", ""),
            "presets": presets, "budgets": budgets, "datasets": datasets}


def _meta_html(meta: dict[str, Any]) -> str:
    libs = ", ".join(f"{k} {v}" for k, v in meta["libraries"].items())
    head = (f"<p>owbench {html.escape(meta['owbench'])} (commit {html.escape(meta['commit'] or 'unknown')}); "
            f"Python {html.escape(meta['python'])}; {html.escape(libs)}<br>devices: "
            f"{html.escape(', '.join(meta['devices']))}; profile: {html.escape(', '.join(meta['profile']))}</p>")
    budgets = pd.DataFrame(meta["budgets"]).T.assign(preset=pd.Series(meta["presets"]))
    data = pd.DataFrame(meta["datasets"]).T
    if len(data):  # the page shows a fingerprint's first 16 hex digits; metadata.json keeps all of it
        data["fingerprint"] = data["fingerprint"].str[:16] + "…"
    return "\n".join([head, "<h3>Budget and config preset per method</h3>",
                      budgets.to_html(na_rep="–") if len(budgets) else "<p>no config.json found</p>",
                      "<h3>Datasets</h3>", data.to_html(float_format=lambda v: f"{v:.1f}", na_rep="–")
                      if len(data) else "<p>none (online or evaluation-only jobs)</p>"])


def _html(title: str, banner: str | None, caption: str, table: str, normalized: pd.DataFrame, agg: pd.DataFrame,
          poi: pd.DataFrame, meta: dict[str, Any], sensitivity: pd.DataFrame, curves: list[Path],
          strips: list[Path], sens_plots: list[Path]) -> str:
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
             "td,th{border:1px solid #ccc;padding:3px 8px;text-align:center}img{max-width:100%}"
             "figure{margin:0.5em 0;display:inline-block}"
             ".banner{background:#fff3cd;border:2px solid #d39e00;padding:0.8em;font-weight:bold}")
    fmt = {"float_format": lambda v: f"{v:.3f}", "index": False, "na_rep": "–"}
    sens = [] if sensitivity.empty else [
        "<h2>Sensitivity (--sweep)</h2>", sensitivity.to_html(float_format=lambda v: f"{v:.1f}", index=False),
        *map(_img, sens_plots)]
    return "\n".join([
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
        f"<style>{style}</style></head><body><h1>{html.escape(title)}</h1>",
        f"<p class='banner'>{html.escape(banner)}</p>" if banner else "",
        f"<h2>Final evaluation return</h2>{table}<p>{html.escape(caption)}</p>",
        "<h2>Normalised score 100·(R − random)/(expert − random)</h2>",
        normalized.to_html(float_format=lambda v: f"{v:.1f}", na_rep="–"),
        f"<h2>Aggregate (IQM, 95% stratified-bootstrap CI; only with ≥ {stats.MIN_RUNS} runs per task)</h2>",
        agg.to_html(**fmt),
        "<h2>Probability of improvement P(method_x &gt; method_y)</h2>", poi.to_html(**fmt),
        *sens,
        "<h2>Learning curves</h2>", *map(_img, curves),
        "<h2>Policy rollouts (one evaluation episode)</h2>", *map(_img, strips),
        "<h2>Metadata</h2>", _meta_html(meta),
        "</body></html>"])


def write_report(suite_dir: Path, paper: bool = True, reps: int = 2000) -> Path:
    """Build every output of one suite run directory; returns the path of report.html."""
    suite_dir = Path(suite_dir)
    results = write_results(suite_dir)
    last = final(results)
    suite, profile = results["suite"].iloc[0], results["profile"].iloc[0]
    if results["profile"].nunique() > 1:
        raise OwbenchError(f"{suite_dir} mixes profiles {', '.join(sorted(results['profile'].unique()))}; "
                           "one report covers one profile: move the other jobs to another run directory")
    known = SUITES.get(suite)
    paper_id = known.paper if paper and known else ""
    note = data_note(known, profile) if known and profile in known.budgets else ""
    wide, text = tables.write_tables(last, suite_dir, suite, profile, paper_id, known.methods if known else (), note)
    agg, poi = stats.aggregate(last, reps=reps)
    agg.to_csv(suite_dir / "stats.csv", index=False)
    poi.to_csv(suite_dir / "improvement.csv", index=False)
    records = job_records(suite_dir)
    meta = metadata(records)
    (suite_dir / "metadata.json").write_text(json.dumps(meta, indent=1))
    sweeps = {rec["method"]: (rec["base_method"], rec["sweep"]) for _, rec in records if rec.get("sweep")}
    sensitivity = tables.sensitivity_table(last, sweeps)
    sens_plots = []
    if not sensitivity.empty:
        sensitivity.to_csv(suite_dir / "sensitivity.csv", index=False)
        sens_plots = plots.sensitivity_plots(sensitivity, suite_dir / "sensitivity")
    curves = plots.learning_curves(results, suite_dir / "curves")
    strips = plots.filmstrips(records, suite_dir / "filmstrips")
    bold = tables.profile_banner(profile) is None
    page = _html(f"owbench {suite} ({profile})", tables.profile_banner(profile), text,
                 tables.html_table(wide, bold=bold), tables.normalized_table(wide), agg, poi, meta, sensitivity,
                 curves, strips, sens_plots)
    path = suite_dir / "report.html"
    path.write_text(page)
    return path
