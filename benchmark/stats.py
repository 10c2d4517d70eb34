"""Aggregate statistics across runs x tasks with rliable's definitions (Agarwal et al. 2021), numpy + scipy.

rliable 1.2.0 does not import cleanly with today's stack (DESIGN.md §5), so its three tools are
re-implemented here: the interquartile mean (`scipy.stats.trim_mean`, 25% cut on each side of all
run x task scores), the stratified bootstrap (runs resampled with replacement within each task,
percentile interval) and the probability of improvement P(X > Y) (per task the Mann-Whitney U statistic
/ (m n), ties counted 1/2, averaged over tasks; its interval resamples X and Y independently per task).
A "run" is one training seed on one task; its score is the mean over its evaluation episodes.
An interval from fewer than `MIN_RUNS` runs per task says nothing, so IQM, its CI and P(improvement)
are left empty there, with a `note` saying why.
"""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from scipy import stats as sps

Scores = list[np.ndarray]  # one array of run scores per task (tasks may have different numbers of runs)
MIN_RUNS = 3  # runs per task below which IQM, CIs and P(improvement) are not reported


def too_few_runs(scores: Scores) -> str:
    """Why aggregate statistics are withheld ("" when every task has at least MIN_RUNS runs)."""
    fewest = min(len(s) for s in scores)
    return f"needs >= {MIN_RUNS} runs (seeds) per task, has {fewest}" if fewest < MIN_RUNS else ""


def iqm(scores: Scores) -> float:
    """Interquartile mean of all run x task scores."""
    return float(sps.trim_mean(np.concatenate(scores), 0.25))


def _resample(scores: Scores, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, total runs): each task's runs resampled with replacement, independently per task (stratified)."""
    return np.concatenate([s[rng.integers(0, len(s), (reps, len(s)))] for s in scores], axis=1)


def iqm_ci(scores: Scores, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile confidence interval of the IQM under the stratified bootstrap."""
    boot = sps.trim_mean(_resample(scores, reps, np.random.default_rng(seed)), 0.25, axis=1)
    alpha = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [alpha, 100 - alpha])
    return float(low), float(high)


def _poi_task(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y)/2 on one task; x, y are (..., m) and (..., n) for batched bootstrap samples."""
    gt = (x[..., :, None] > y[..., None, :]).mean(axis=(-1, -2))
    eq = (x[..., :, None] == y[..., None, :]).mean(axis=(-1, -2))
    return gt + 0.5 * eq


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(X > Y), averaged over tasks (x[i], y[i] are the run scores of the two methods on task i)."""
    return float(np.mean([_poi_task(a, b) for a, b in zip(x, y)]))


def poi_ci(x: Scores, y: Scores, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile interval of P(X > Y) under a stratified bootstrap of X and Y drawn independently."""
    rng = np.random.default_rng(seed)
    per_task = [_poi_task(a[rng.integers(0, len(a), (reps, len(a)))], b[rng.integers(0, len(b), (reps, len(b)))])
                for a, b in zip(x, y)]
    boot = np.mean(per_task, axis=0)
    alpha = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [alpha, 100 - alpha])
    return float(low), float(high)


def score_column(final: pd.DataFrame) -> str:
    """`normalized` when every final row has reference returns, else raw `return`."""
    return "normalized" if final["normalized"].notna().all() else "return"


def run_scores(final: pd.DataFrame, column: str) -> dict[str, dict[tuple[str, str], np.ndarray]]:
    """method -> (source, target) -> per-seed mean score."""
    per_run = final.groupby(["method", "source", "target", "seed"])[column].mean()
    out: dict[str, dict[tuple[str, str], np.ndarray]] = {}
    for (method, source, target), runs in per_run.groupby(level=[0, 1, 2]):
        out.setdefault(method, {})[(source, target)] = runs.to_numpy(np.float64)
    return out


def aggregate(final: pd.DataFrame, reps: int = 2000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per method IQM with its 95% stratified-bootstrap CI, and P(row method > column method) with CI.

    Probability of improvement compares two methods on the tasks both ran.
    """
    column = score_column(final)
    scores = run_scores(final, column)
    nan = float("nan")
    rows = []
    for m, t in scores.items():
        runs, note = list(t.values()), too_few_runs(list(t.values()))
        low, high = (nan, nan) if note else iqm_ci(runs, reps, seed=seed)
        rows.append({"method": m, "score": column, "iqm": nan if note else iqm(runs), "iqm_ci_low": low,
                     "iqm_ci_high": high, "mean": float(np.mean(np.concatenate(runs))),
                     "runs": sum(len(v) for v in runs), "tasks": len(t), "note": note})
    agg = pd.DataFrame(rows)
    rows = []
    for mx, my in itertools.permutations(scores, 2):
        tasks = [k for k in scores[mx] if k in scores[my]]
        if not tasks:
            continue
        x, y = [scores[mx][k] for k in tasks], [scores[my][k] for k in tasks]
        note = too_few_runs(x + y)
        low, high = (nan, nan) if note else poi_ci(x, y, reps, seed=seed)
        rows.append({"method_x": mx, "method_y": my, "p_improvement": nan if note else probability_of_improvement(x, y),
                     "ci_low": low, "ci_high": high, "tasks": len(tasks), "note": note})
    poi = pd.DataFrame(rows, columns=["method_x", "method_y", "p_improvement", "ci_low", "ci_high", "tasks", "note"])
    return agg, poi


def iqm_difference_ci(x: Scores, y: Scores, reps: int = 2000, confidence: float = 0.95,
                      seed: int = 0) -> tuple[float, float]:
    """Percentile interval of IQM(X) - IQM(Y) under stratified bootstraps of X and Y drawn independently."""
    rng = np.random.default_rng(seed)
    boot = sps.trim_mean(_resample(x, reps, rng), 0.25, axis=1) - sps.trim_mean(_resample(y, reps, rng), 0.25, axis=1)
    alpha = 100 * (1 - confidence) / 2
    low, high = np.percentile(boot, [alpha, 100 - alpha])
    return float(low), float(high)
