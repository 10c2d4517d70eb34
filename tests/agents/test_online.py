"""The online loop's random prefill: i.i.d. uniform actions, or actions held for several steps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.online import OnlineConfig, train_from_scratch
from baselines import dreamerv2
from collectors import store
from short_env import ShortContext


@pytest.mark.parametrize("hold", [1.0, 8.0])
def test_prefill_actions_are_uniform_and_held_for_hold_steps_on_average(hold: float, tmp_path: Path) -> None:
    ctx = ShortContext(method="dreamerv2", env_id="cartpole_swingup", datasets=[], run_dir=tmp_path, preset="smoke",
                       steps=1, eval_episodes=1, checkpoint_every=1, log_every=1, seed=0, device="cpu",
                       image_size=32, progress=False)
    train_from_scratch(ctx, dreamerv2, OnlineConfig(prefill=300, prefill_hold=hold, train_every=1))
    replay = store.open_dataset(tmp_path / "replay.zarr")
    per_episode = [replay.episode(i)["action"][1:, 0] for i in range(replay.n_episodes)]  # row 0 holds no action
    actions = np.concatenate(per_episode)
    changes = np.concatenate([np.diff(a) != 0 for a in per_episode])
    assert len(actions) >= 250 and actions.min() >= -1 and actions.max() <= 1 and abs(actions.mean()) < 0.2
    if hold == 1.0:
        assert changes.all()
    else:  # a geometric hold of mean 8: a change on about 1 step in 8
        assert 1 / 16 < changes.mean() < 1 / 4
