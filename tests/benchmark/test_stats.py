"""IQM, stratified bootstrap and probability of improvement behave as rliable defines them."""
from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark import stats


def test_iqm_is_the_mean_of_the_middle_half():
    scores = [np.array([0.0, 1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0, 100.0])]
    assert stats.iqm(scores) == np.mean([2.0, 3.0, 4.0, 5.0])


def test_bootstrap_ci_brackets_the_estimate_and_is_stratified():
    rng = np.random.default_rng(0)
    scores = [rng.normal(10, 2, 5), rng.normal(50, 2, 5), rng.normal(90, 2, 5)]
    low, high = stats.iqm_ci(scores, reps=500)
    assert low <= stats.iqm(scores) <= high and high - low > 0
    # stratified: a task with one run always contributes exactly that run
    constant = [np.array([3.0]), np.array([7.0])]
    assert stats.iqm_ci(constant, reps=200) == (5.0, 5.0)


def test_probability_of_improvement():
    x, y = [np.array([10.0, 11.0, 12.0])], [np.array([1.0, 2.0])]
    assert stats.probability_of_improvement(x, y) == 1.0
    assert stats.probability_of_improvement(y, x) == 0.0
    assert stats.probability_of_improvement(x, x) == 0.5  # ties count one half
    a = [np.array([1.0, 5.0, 9.0]), np.array([2.0, 3.0])]
    b = [np.array([4.0, 6.0]), np.array([2.5, 3.5, 1.0])]
    assert np.isclose(stats.probability_of_improvement(a, b) + stats.probability_of_improvement(b, a), 1.0)
    low, high = stats.poi_ci(a, b, reps=300)
    assert 0.0 <= low <= stats.probability_of_improvement(a, b) <= high <= 1.0


def test_aggregate_uses_normalised_scores_when_every_row_has_them():
    rows = [{"method": m, "source": "s", "target": t, "seed": seed, "return": r, "normalized": r / 10}
            for m, base in (("good", 100.0), ("bad", 10.0)) for t in ("a", "b")
            for seed in range(3) for r in (base + seed, base + seed + 1)]
    final = pd.DataFrame(rows)
    agg, poi = stats.aggregate(final, reps=200)
    assert set(agg["score"]) == {"normalized"} and set(agg["runs"]) == {6} and set(agg["tasks"]) == {2}
    good = agg.set_index("method").loc["good"]
    assert good["iqm_ci_low"] <= good["iqm"] <= good["iqm_ci_high"]
    p = poi.set_index(["method_x", "method_y"])["p_improvement"]
    assert p["good", "bad"] == 1.0 and p["bad", "good"] == 0.0
    final.loc[0, "normalized"] = np.nan
    assert set(stats.aggregate(final, reps=50)[0]["score"]) == {"return"}
