"""benchmark/perf_wm.py: world-model updates/s of the optimised and the plain loop."""
from __future__ import annotations

import math

import pytest

from benchmark.perf_wm import measure_world_model_updates


@pytest.mark.parametrize("optimized", [True, False])
def test_measure_world_model_updates_reports_rates(optimized):
    out = measure_world_model_updates("smoke", "cpu", iters=1, optimized=optimized)
    assert out["optimized"] is optimized and out["preset"] == "smoke" and out["iters"] == 1
    assert math.isclose(out["updates_per_s"] * out["seconds_per_update"], 1.0)
    assert 0 < out["agent_updates_per_s"] <= out["updates_per_s"]


def test_overrides_set_the_measured_shape():
    out = measure_world_model_updates("smoke", "cpu", iters=1, optimized=False, overrides={"batch_size": 2, "seq_len": 3})
    assert (out["batch"], out["seq_len"]) == (2, 3)
