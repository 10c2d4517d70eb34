"""Collect the finished jobs of a suite run directory into one long-format table (results.csv).

One row per evaluation episode: the periodic evaluations of `eval.csv` (phase `eval`, for learning
curves) and the final evaluation of `result.json` (phase `final`, for tables and statistics).
A table cell (method, pair) is built only from jobs of one identity (config.json, seed aside): a cell
whose seeds ran with different budgets, configs or datasets is refused, never averaged.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from agents.protocol import normalized_score
from benchmark.rundir import CONFIG, RESULT_GLOB
from collectors.errors import OwbenchError

COLUMNS = ["suite", "profile", "source", "target", "method", "seed", "phase", "step", "episode", "eval_seed",
           "return", "success", "normalized"]


def job_records(suite_dir: Path) -> list[tuple[Path, dict]]:
    """(job folder, result.json contents) of every finished job under `<suite>/<method>/<pair>/seed<k>`."""
    return [(p.parent, json.loads(p.read_text())) for p in sorted(Path(suite_dir).glob(RESULT_GLOB))]


def cell_identity(run_dir: Path, rec: dict) -> dict:
    """What a job shares with the other seeds of its cell: its config.json identity without the seed, or for
    a job of an owbench that wrote no config.json, the profile and budget its result.json states."""
    path = Path(run_dir) / CONFIG
    if path.exists():
        return {k: v for k, v in json.loads(path.read_text())["identity"].items() if k != "seed"}
    return {k: rec.get(k) for k in ("profile", "steps", "eval_episodes", "datasets")}


def check_cells(jobs: list[tuple[Path, dict]]) -> None:
    """Refuse a cell whose jobs differ in identity (e.g. seed 0 at 20 updates, seed 1 at 40)."""
    from benchmark.provenance import differences

    first: dict[tuple[str, str, str], tuple[Path, dict]] = {}
    for run_dir, rec in jobs:
        key = (rec["method"], rec["source"], rec["target"])
        ident = cell_identity(run_dir, rec)
        if key not in first:
            first[key] = (run_dir, ident)
        elif ident != first[key][1]:
            why = "; ".join(differences(first[key][1], ident))
            raise OwbenchError(f"{first[key][0]} and {run_dir} are one table cell but ran differently ({why}); "
                               "move one aside, or rerun with `owbench run ... --rerun-stale`")


def _job_rows(run_dir: Path, rec: dict) -> pd.DataFrame:
    keys = {k: rec[k] for k in ("suite", "profile", "source", "target", "method", "seed")}
    final = pd.DataFrame({"phase": "final", "step": rec["steps"], "episode": range(len(rec["returns"])),
                          "eval_seed": rec["eval_seeds"], "return": rec["returns"], "success": rec["successes"]})
    frames = [final]
    if (run_dir / "eval.csv").exists():
        periodic = pd.read_csv(run_dir / "eval.csv")
        frames.insert(0, periodic.assign(phase="eval")[["phase", "step", "episode", "eval_seed", "return", "success"]])
    return pd.concat(frames, ignore_index=True).assign(**keys)


def reference_returns(records: list[dict]) -> dict[str, dict[str, float]]:
    """target -> {"random": r, "expert": r}, from any job of that target whose dataset recorded them."""
    refs: dict[str, dict[str, float]] = {}
    for rec in records:
        if rec.get("reference_returns") and rec["target"] not in refs:
            refs[rec["target"]] = rec["reference_returns"]
    return refs


def collect_results(suite_dir: Path) -> pd.DataFrame:
    """The long-format results of every finished job of one suite run directory."""
    jobs = job_records(suite_dir)
    if not jobs:
        raise OwbenchError(f"no finished job under {suite_dir}; run `owbench run --suite NAME --out DIR` first "
                           "and pass DIR or DIR/NAME")
    check_cells(jobs)
    df = pd.concat([_job_rows(d, rec) for d, rec in jobs], ignore_index=True)
    df["success"] = df["success"].astype(bool)
    refs = reference_returns([rec for _, rec in jobs])
    df["normalized"] = np.nan
    for target, ref in refs.items():
        rows = df["target"] == target
        df.loc[rows, "normalized"] = normalized_score(df.loc[rows, "return"], ref["random"], ref["expert"])
    return df[COLUMNS].sort_values(["source", "target", "method", "seed", "phase", "step", "episode"],
                                   ignore_index=True)


def final(df: pd.DataFrame) -> pd.DataFrame:
    """Only the final-evaluation rows (what tables and statistics use)."""
    return df[df["phase"] == "final"]


def write_results(suite_dir: Path) -> pd.DataFrame:
    df = collect_results(suite_dir)
    df.to_csv(Path(suite_dir) / "results.csv", index=False)
    return df
