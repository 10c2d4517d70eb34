"""The online loop's random prefill: i.i.d. uniform actions, or actions held for several steps."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
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


@pytest.mark.parametrize("prefill, train_every", [(16, 1), (30, 3)])
def test_env_step_budget_gives_every_method_the_same_frames(prefill: int, train_every: int, tmp_path: Path) -> None:
    """budget="env_steps": ctx.steps x the task's action repeat frames, prefill included, whatever the prefill
    and update rate; metrics.csv logs the real frames so far (agent steps x action repeat) as env_steps."""
    ctx = ShortContext(method="dreamerv2", env_id="cartpole_swingup", datasets=[], run_dir=tmp_path, preset="smoke",
                       steps=40, eval_episodes=1, checkpoint_every=0, log_every=1, seed=0, device="cpu",
                       image_size=32, progress=False)
    train_from_scratch(ctx, dreamerv2, OnlineConfig(prefill=prefill, train_every=train_every, budget="env_steps"))
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    frames = metrics["env_steps"].to_numpy()
    assert 80 - 2 * 2 * train_every < frames[-1] <= 80  # 40 agent steps at action repeat 2, to one update's spacing
    assert frames[0] >= 2 * (prefill - prefill // ctx.episode_steps - 1)  # the prefill's frames count
    assert set(np.diff(frames)) <= {2 * train_every, 2 * (train_every - 1), 2 * (train_every + 1)}  # x action repeat
    episodes = store.open_dataset(tmp_path / "replay.zarr")
    done = sum(len(episodes.episode(i)["reward"]) - 1 for i in range(episodes.n_episodes))
    assert 2 * done <= frames[-1]


def test_update_budget_is_unchanged(tmp_path: Path) -> None:
    ctx = ShortContext(method="dreamerv2", env_id="cartpole_swingup", datasets=[], run_dir=tmp_path, preset="smoke",
                       steps=3, eval_episodes=1, checkpoint_every=0, log_every=1, seed=0, device="cpu",
                       image_size=32, progress=False)
    train_from_scratch(ctx, dreamerv2, OnlineConfig(prefill=16, train_every=2))
    metrics = pd.read_csv(tmp_path / "metrics.csv")
    assert metrics["step"].tolist() == [1, 2, 3]
    # the first update at 16 replay rows: a 12-step episode (13 rows) and 2 steps of the next (3 rows) = 14 agent
    # steps of 2 frames; then every 2 agent steps
    assert metrics["env_steps"].tolist() == [28, 32, 36]
