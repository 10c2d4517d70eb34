"""CoWorld's DV2 Finetune baseline: CoWorld's presets and source pretraining, then offline finetuning."""
from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest
import torch

from agents.coworld import CoWorldConfig
from agents.training import TrainContext
from agents.world_model import DreamerConfig
from baselines import dv2_finetune
from collectors.errors import OwbenchError


@pytest.mark.parametrize("preset", ["smoke", "quick", "paper"])
@pytest.mark.parametrize("domain", ["dmc", "metaworld"])
def test_presets_are_coworlds_model_and_pretraining(preset, domain):
    ours, coworld = dv2_finetune.Config.preset(preset, domain=domain), CoWorldConfig.preset(preset, domain=domain)
    for field in [f.name for f in dataclasses.fields(DreamerConfig)] + ["pretrain_steps", "prefill", "train_every"]:
        assert getattr(ours, field) == getattr(coworld, field), field
    # finetuning reads the default domain's preset: its model must be the same
    assert dataclasses.replace(dv2_finetune.Config.preset(preset), prefill=ours.prefill) == ours


def _ctx(tmp_path: Path, dataset: str, steps: int, source: str | None = "walker_walk") -> TrainContext:
    return TrainContext(method="dv2-finetune", env_id="walker_downhill", source_env_id=source, datasets=[dataset],
                        run_dir=tmp_path / "run", preset="smoke", steps=steps, eval_every=0, eval_episodes=1,
                        checkpoint_every=2, log_every=1, seed=0, image_size=32, overrides={"prefill": 10},
                        progress=False)


def test_needs_an_online_source_task(tmp_path):
    with pytest.raises(OwbenchError, match="online source task"):
        dv2_finetune.train(_ctx(tmp_path, "unused", 2, source=None))


@pytest.mark.slow
def test_pretrains_on_the_source_then_finetunes_on_the_target_and_resumes(tmp_path):
    from collectors.collect import ensure_dataset

    dataset = ensure_dataset("walker_downhill", "random", episodes=2, image_size=32, variant="smoke",
                             max_episode_steps=20)
    result = dv2_finetune.train(_ctx(tmp_path, dataset, steps=2))
    run = tmp_path / "run"
    assert len(result.returns) == 1 and result.frames is not None
    pretrain_rows = list(csv.DictReader(open(run / "pretrain" / "metrics.csv")))
    assert [int(r["step"]) for r in pretrain_rows] == [1, 2, 3] and "model_loss" in pretrain_rows[0]  # smoke: 3
    pretrained = torch.load(run / "pretrain" / "checkpoints" / "latest.pt", weights_only=False)
    finetuned = torch.load(run / "checkpoints" / "latest.pt", weights_only=False)
    assert pretrained["step"] == 3 and finetuned["step"] == 2
    dv2_finetune.train(_ctx(tmp_path, dataset, steps=4))  # resume: finetuning only, from its checkpoint
    assert torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["step"] == 4
    assert len(list(csv.DictReader(open(run / "pretrain" / "metrics.csv")))) == 3
    assert [int(r["step"]) for r in csv.DictReader(open(run / "eval.csv"))] == [2, 4]
