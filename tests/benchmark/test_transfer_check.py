"""The transfer learning check's mechanics at a tiny budget (benchmark/transfer_check.py; the real
run's numbers are in docs/learning_checks.md)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from agents import vid2act, wpt
from agents.online import OnlineConfig
from benchmark import transfer_check
from collectors import envs


@pytest.mark.slow
def test_transfer_check_equal_budget_and_transfer_signals(tmp_path: Path, owbench_home: Path) -> None:
    """Every learner gets the same online environment steps; WPT's pretrained model starts at a lower
    image loss than scratch; retrieval finds the target's embodiment (walker) first; Vid2Act writes its domain weights;
    --summary tabulates every method."""
    tiny = dict(seed=0, updates=30, pretrain_steps=200, eval_episodes=1, prefill=100, random_episodes=1,
                medium_replay_steps=600)
    for method in transfer_check.METHODS:
        result = transfer_check.train(method, tmp_path, **tiny)
        assert len(result.returns) == 1
    metrics = {m: pd.read_csv(tmp_path / f"{m}-0" / "metrics.csv") for m in ("wpt", "vid2act", "dreamerv2")}
    assert len({int(m["env_steps"].max()) for m in metrics.values()}) == 1
    assert metrics["wpt"]["image_loss"].iloc[0] < metrics["dreamerv2"]["image_loss"].iloc[0]
    assert pd.read_csv(tmp_path / "wpt-0" / "retrieved.csv")["env_id"].iloc[0].startswith("walker_")
    assert (tmp_path / "vid2act-0" / "domain_weights.csv").exists()
    summary = transfer_check.summarize(tmp_path)
    assert set(summary) == set(transfer_check.METHODS) and all(s["seeds"] == [0] for s in summary.values())
    assert json.loads((tmp_path / "random-0.json").read_text())["updates"] == 30


@pytest.mark.parametrize("method", ["wpt", "vid2act"])
def test_the_check_runs_the_methods_quick_sizes(method: str) -> None:
    """One source for the method's own sizes: the config the check builds (smoke + its overrides) has the
    `quick` preset's retrieval / π_bc / replay / distillation sizes, not smoke's; WPT guides over the first
    third of the check's online environment steps."""
    module = wpt if method == "wpt" else vid2act
    online = OnlineConfig(prefill=2000, train_every=2)
    config = module.Config.preset("smoke", **transfer_check.method_overrides(method, 2500, online))
    quick, smoke = module.Config.preset("quick"), module.Config.preset("smoke")
    for name in transfer_check.QUICK_FIELDS[method]:
        assert getattr(config, name) == getattr(quick, name) != getattr(smoke, name), name
    if method == "wpt":
        assert config.guidance_steps == 2500 * 2 * envs.spec(transfer_check.TARGET).action_repeat // 3
