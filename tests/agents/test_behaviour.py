"""DreamerV2 as the behaviour agent of medium-replay data (CoWorld §4): tiny model, 16 px, 8-step episodes."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from agents import behaviour
from agents.behaviour import collect_dreamerv2, load_checkpoint, medium_target, with_behaviour
from collectors import store
from collectors.errors import OwbenchError
from collectors.seeds import CHECK_SEED_OFFSET

TINY = dict(image_size=16, max_episode_steps=8, preset="smoke")


def test_stops_when_the_stop_check_first_reaches_the_target(tmp_path, monkeypatch):
    """With a target every policy reaches, collection ends after the first stop check, after the first episode
    with updates: the prefill (16 rows) spans episode 0 (9 rows) and most of episode 1, which then updates."""
    seeds = []
    check = behaviour._stop_check
    monkeypatch.setattr(behaviour, "_stop_check", lambda agent, env, n, seed: seeds.append(seed) or check(agent, env, n, seed))
    summary = collect_dreamerv2("walker_walk", "medium-replay", out=tmp_path / "d.zarr", stop_return=-1e9, **TINY)
    info = summary.behaviour["medium"]
    assert summary.episodes == 2 and summary.steps == 16 and store.verify(summary.location) == []
    assert info["reached_target"] and info["stopped_by"] == "the stop check reaching the target"
    assert info["agent"] == "dreamerv2" and info["train_steps"] == 16 and info["env_steps"] == 32
    assert info["updates"] > 0 and len(info["evaluations"]) == 1 and seeds == [0]
    ds = store.open_dataset(summary.location)
    assert ds.attrs["behaviour_agent"] == "dreamerv2" and ds.attrs["complete"]
    assert ds.attrs["collect_args"]["behaviour"] == "dreamerv2" and ds.read("image").shape[1:] == (16, 16, 3)
    assert ds.attrs["return_stats"]["episodes"] == 2 and ds.attrs["return_stats"]["return mean"] == summary.mean_return
    model = ds.attrs["behaviour"]["medium"]["dreamer_config"]  # the behaviour's whole model config is recorded
    assert model["wm"]["image_size"] == 16 and model["wm"]["deter"] == 32 and info["preset"] == "smoke"


def test_quick_behaviour_is_the_learning_checks_small_model_at_any_image_size():
    quick = behaviour.BehaviourConfig.preset("quick")
    config = quick.dreamer_config(32)
    shape = (config.wm.image_size, config.wm.deter, config.wm.depth, config.batch_size, config.seq_len)
    assert shape == (32, 96, 16, 16, 32)
    assert not config.wm.discount_head and quick.train_every == 4 and quick.prefill == 1000
    assert quick.model == "quick preset: the learning checks' small model"
    with pytest.raises(OwbenchError, match="behaviour preset"):
        behaviour.BehaviourConfig.preset("fast")


def test_stop_check_episodes_use_the_behaviour_check_seeds(tmp_path, monkeypatch):
    reset_seeds = []
    run_episode = behaviour.run_episode

    def spy(agent, env, seed, *a, **k):
        reset_seeds.append(seed)
        return run_episode(agent, env, seed, *a, **k)

    monkeypatch.setattr(behaviour, "run_episode", spy)
    collect_dreamerv2("walker_walk", "medium-replay", out=tmp_path / "d.zarr", stop_return=-1e9, **TINY)
    assert reset_seeds and all(s >= CHECK_SEED_OFFSET for s in reset_seeds)


def test_behaviour_steps_caps_an_unreached_target_and_says_so(tmp_path):
    summary = collect_dreamerv2("walker_walk", "medium-replay", out=tmp_path / "d.zarr", stop_return=1e9,
                                behaviour_steps=24, **TINY)
    info = summary.behaviour["medium"]
    assert summary.steps == 24 and summary.episodes == 3  # whole episodes up to the cap
    assert not info["reached_target"] and "--behaviour-steps cap of 24" in info["stopped_by"]
    assert store.open_dataset(summary.location).attrs["collect_args"]["behaviour_steps"] == 24
    assert len(info["evaluations"]) == 2  # a stop check after each episode with updates (smoke: every step)


class Unpicklable:
    """Any object that is not a tensor: a checkpoint holding it needs arbitrary unpickling."""


def test_kill_then_resume_continues_from_the_checkpoint_beside_the_dataset(tmp_path, killed_before_commit):
    kwargs = dict(stop_return=1e9, behaviour_steps=40, **TINY)
    reference = collect_dreamerv2("walker_walk", "medium-replay", out=tmp_path / "ref.zarr", **kwargs)
    out = tmp_path / "mr.zarr"
    # the agent's checkpoint holds episode 2; episode 3 never commits
    killed_before_commit(lambda writer, meta: writer.committed_episodes == 3,
                         lambda: collect_dreamerv2("walker_walk", "medium-replay", out=out, **kwargs))
    assert store.open_dataset(out).n_episodes == 3 and load_checkpoint(str(out))["episodes"] == 3
    resumed = collect_dreamerv2("walker_walk", "medium-replay", out=out, **kwargs)
    assert resumed.resumed_from == 3 and resumed.episodes == reference.episodes == 5
    assert store.verify(out) == []
    assert resumed.behaviour["medium"]["updates"] == reference.behaviour["medium"]["updates"]
    a, b = store.open_dataset(reference.location), store.open_dataset(out)
    for name in ("action", "reward", "image"):  # the resumed run redoes episode 3 from the same state
        assert np.array_equal(a.read(name), b.read(name)), name


def test_checkpoint_is_loaded_with_weights_only(tmp_path):
    """A checkpoint that needs arbitrary unpickling is refused, not executed."""
    collect_dreamerv2("walker_walk", "medium-replay", out=tmp_path / "d.zarr", stop_return=1e9,
                      behaviour_steps=8, **TINY)
    torch.save({"episodes": 1, "evil": Unpicklable()}, tmp_path / "d.zarr.policy" / "dreamerv2.pt")
    with pytest.raises(OwbenchError, match="not a plain tensor file.*[Ww]eights only.*--overwrite"):
        load_checkpoint(str(tmp_path / "d.zarr"))


def test_resume_with_other_arguments_is_refused(tmp_path):
    out = tmp_path / "d.zarr"
    collect_dreamerv2("walker_walk", "medium-replay", out=out, stop_return=1e9, behaviour_steps=8, **TINY)
    with pytest.raises(OwbenchError, match="behaviour_steps=8 .now 16."):
        collect_dreamerv2("walker_walk", "medium-replay", out=out, stop_return=1e9, behaviour_steps=16, **TINY)


def test_overwrite_starts_afresh_without_the_old_checkpoint(tmp_path):
    out = tmp_path / "d.zarr"
    collect_dreamerv2("walker_walk", "medium-replay", out=out, stop_return=1e9, behaviour_steps=16, **TINY)
    again = collect_dreamerv2("walker_walk", "medium-replay", out=out, stop_return=1e9, behaviour_steps=8,
                              overwrite=True, **TINY)
    assert again.resumed_from == 0 and again.episodes == 1 and load_checkpoint(str(out))["episodes"] == 1


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_location_that_is_not_an_owbench_dataset_is_refused_and_untouched(tmp_path, overwrite):
    import zarr

    folder, plain_zarr = tmp_path / "d", tmp_path / "plain.zarr"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    zarr.open_group(str(plain_zarr), mode="w").attrs["mine"] = 1
    for out in (folder, plain_zarr):
        with pytest.raises(OwbenchError, match="is not an owbench dataset.*not even with --overwrite"):
            collect_dreamerv2("walker_walk", "medium-replay", out=out, overwrite=overwrite, stop_return=1e9,
                              behaviour_steps=8, **TINY)
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"]
    assert not (tmp_path / "d.lock").exists() and not (tmp_path / "plain.zarr.lock").exists()
    assert dict(zarr.open_group(str(plain_zarr), mode="r").attrs) == {"mine": 1}


def test_a_store_killed_before_its_first_commit_starts_afresh(tmp_path):
    """An owbench store without a commit record (killed while being created) is re-created without --overwrite,
    and a checkpoint beside it, of no committed episode, is not resumed from."""
    import json

    out = tmp_path / "d.zarr"
    collect_dreamerv2("walker_walk", "medium-replay", out=out, stop_return=1e9, behaviour_steps=16, **TINY)
    meta = json.loads((out / "zarr.json").read_text())
    for key in ("committed_episodes", "committed_steps"):
        del meta["attributes"][key]
    (out / "zarr.json").write_text(json.dumps(meta))
    assert store.probe(str(out)) == "unfinished" and load_checkpoint(str(out))["episodes"] == 2
    again = collect_dreamerv2("walker_walk", "medium-replay", out=out, stop_return=1e9, behaviour_steps=8, **TINY)
    assert again.resumed_from == 0 and again.episodes == 1 and load_checkpoint(str(out))["episodes"] == 1


def test_random_data_is_refused_with_the_fix(tmp_path):
    with pytest.raises(OwbenchError, match="no behaviour agent; collect it with --behaviour sac"):
        collect_dreamerv2("walker_walk", "random", out=tmp_path / "d.zarr", **TINY)
    with pytest.raises(OwbenchError, match="--behaviour-steps, not --episodes"):
        collect_dreamerv2("walker_walk", "medium-replay", out=tmp_path / "d.zarr", episodes=3, **TINY)


def test_medium_expert_alternates_two_frozen_dreamerv2_levels(tmp_path):
    out = tmp_path / "me.zarr"
    summary = collect_dreamerv2("walker_walk", "medium-expert", out=out, stop_return=-1e9, episodes=3, **TINY)
    assert summary.episodes == 3 and summary.steps == 24 and store.verify(summary.location) == []
    assert set(summary.behaviour) == {"medium", "expert"}
    for kind in ("medium", "expert"):
        info = summary.behaviour[kind]
        assert info["agent"] == "dreamerv2" and info["reached_target"] and "deterministic actions" in info["description"]
        assert info["training_data"] == f"{out}.policy/{kind}-train.zarr"
        assert store.open_dataset(info["training_data"]).attrs["complete"]
    ds = store.open_dataset(out)
    assert "frozen (medium when its stop check first reached 1/3, expert when" in ds.attrs["quality_description"]
    assert list(ds.episodes["noise_std"]) == [0.0, 0.0, 0.0]


def test_noisy_expert_cycles_sigma_and_resumes_exactly_after_a_kill(tmp_path, killed_before_commit):
    kwargs = dict(stop_return=-1e9, episodes=3, **TINY)
    reference = collect_dreamerv2("walker_walk", "noisy-expert", out=tmp_path / "ref.zarr", **kwargs)
    ds = store.open_dataset(reference.location)
    assert np.allclose(ds.episodes["noise_std"], [0.1, 0.3, 0.5]) and set(reference.behaviour) == {"expert"}
    out = tmp_path / "ne.zarr"
    third = lambda writer, meta: writer.committed_episodes == 2 and meta.get("noise_std") == np.float32(0.5)  # noqa: E731
    killed_before_commit(third, lambda: collect_dreamerv2("walker_walk", "noisy-expert", out=out, **kwargs))
    resumed = collect_dreamerv2("walker_walk", "noisy-expert", out=out, **kwargs)
    assert resumed.resumed_from == 2 and resumed.episodes == 3 and store.verify(out) == []
    a, b = store.open_dataset(reference.location), store.open_dataset(out)
    for name in ("action", "reward", "image"):
        assert np.array_equal(a.read(name), b.read(name)), name


def test_target_is_a_third_of_dreamerv2s_maximum_of_the_stock_task():
    downhill, walk = medium_target("walker_downhill"), medium_target("walker_walk")
    assert downhill.maximum == walk.maximum == 964.9 and downhill.target == pytest.approx(964.9 / 3)
    assert "stock task walker_walk" in downhill.source and "dmc-vision-dreamerv2.json" in walk.source
    meta_world = medium_target("mw_button-press")
    assert meta_world.expected_frames is None and "no published DreamerV2 score" in meta_world.source


def test_behaviours_never_share_a_dataset_id():
    assert with_behaviour("", "sac") == "" and with_behaviour("smoke", "sac") == "smoke"
    assert with_behaviour("", "dreamerv2") == "dreamerv2" and with_behaviour("smoke", "dreamerv2") == "dreamerv2-smoke"
