"""Collection: rows and metadata, identical re-rendered frames, kill -9 / resume, medium-replay resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from collectors import store
from collectors.collect import collect, dataset_id, ensure_dataset
from collectors.envs import make
from collectors.errors import OwbenchError
from collectors.render_pool import render_states

TINY = dict(image_size=32, max_episode_steps=6)


def test_random_dataset_rows_and_metadata(tmp_path):
    out = tmp_path / "r.zarr"
    summary = collect("walker_walk", "random", out=out, episodes=3, **TINY)
    assert (summary.episodes, summary.steps, summary.resumed_from) == (3, 18, 0)
    ds = store.open_dataset(out)
    assert ds.n_steps == 21 and ds.read("image").shape == (21, 32, 32, 3) and ds.read("image").dtype == np.uint8
    starts = ds.episodes["start"]
    assert np.array_equal(starts, [0, 7, 14]) and ds.read("is_first")[starts].all()
    assert not ds.read("action")[starts].any()  # a_{-1} is zero
    assert ds.read("is_last")[starts + 6].all() and not ds.read("is_terminal").any()
    assert np.isclose(ds.episodes["return"], [ds.read("reward", s, s + 7).sum() for s in starts]).all()
    attrs = ds.attrs
    assert attrs["quality"] == "random" and attrs["complete"] and attrs["max_episode_steps"] == 6
    assert set(attrs["reference_returns"]) == {"random", "expert", "source"}
    assert {"backend", "renderer", "fast_render"} <= set(attrs["render"]) and "mujoco" in attrs["packages"]
    assert store.verify(out) == []
    again = collect("walker_walk", "random", out=out, episodes=3, **TINY)  # complete: nothing to do
    assert (again.episodes, again.resumed_from) == (3, 3)


def test_episodes_are_reproducible_and_steps_target(tmp_path):
    a = collect("cheetah_run", "random", out=tmp_path / "a.zarr", steps=10, seed=3, **TINY)
    collect("cheetah_run", "random", out=tmp_path / "b.zarr", steps=10, seed=3, **TINY)
    assert a.steps >= 10 and a.episodes == 2
    da, db = store.open_dataset(tmp_path / "a.zarr"), store.open_dataset(tmp_path / "b.zarr")
    assert np.array_equal(da.read("image"), db.read("image")) and np.array_equal(da.read("action"), db.read("action"))


def test_other_arguments_are_refused_unless_overwrite(tmp_path):
    out = tmp_path / "r.zarr"
    collect("walker_walk", "random", out=out, episodes=1, **TINY)
    with pytest.raises(OwbenchError, match="seed=0 \\(now 1\\).*--overwrite"):
        collect("walker_walk", "random", out=out, episodes=1, seed=1, **TINY)
    assert collect("walker_walk", "random", out=out, episodes=1, seed=1, overwrite=True, **TINY).resumed_from == 0
    with pytest.raises(OwbenchError, match="unknown quality 'expret'; did you mean 'expert'"):
        collect("walker_walk", "expret", out=tmp_path / "x.zarr", episodes=1)


@pytest.mark.parametrize("overwrite", [False, True])
def test_an_existing_location_that_is_not_an_owbench_dataset_is_refused_and_untouched(tmp_path, overwrite,
                                                                                         monkeypatch):
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "thesis.tex").write_text("x")
    a_file = tmp_path / "notes.txt"
    a_file.write_text("y")
    plain_zarr = tmp_path / "plain.zarr"
    import zarr

    zarr.open_group(str(plain_zarr), mode="w").attrs["mine"] = 1
    for out in (folder, a_file, plain_zarr):
        with pytest.raises(OwbenchError, match="is not an owbench dataset.*not even with --overwrite"):
            collect("walker_walk", "random", out=out, episodes=1, overwrite=overwrite, **TINY)
    monkeypatch.chdir(folder)
    with pytest.raises(OwbenchError, match="is not an owbench dataset"):
        collect("walker_walk", "random", out=".", episodes=1, overwrite=overwrite, **TINY)
    assert (folder / "thesis.tex").read_text() == "x" and a_file.read_text() == "y"
    assert sorted(p.name for p in folder.iterdir()) == ["thesis.tex"] and not (tmp_path / "d.lock").exists()
    assert dict(zarr.open_group(str(plain_zarr), mode="r").attrs) == {"mine": 1}


def test_overwrite_replaces_only_what_owbench_wrote(tmp_path):
    out = tmp_path / "r.zarr"
    collect("walker_walk", "random", out=out, episodes=2, **TINY)
    (out / "README.txt").write_text("mine")
    (tmp_path / "r.zarr.policy").mkdir()
    (tmp_path / "r.zarr.policy" / "notes.txt").write_text("mine too")
    summary = collect("walker_walk", "random", out=out, episodes=1, seed=2, overwrite=True, **TINY)
    assert summary.episodes == 1 and store.verify(out) == []
    assert (out / "README.txt").read_text() == "mine" and (tmp_path / "r.zarr.policy" / "notes.txt").exists()


class CrashAtCommit(Exception):
    pass


def test_a_kill_before_the_first_commit_record_resumes(tmp_path, monkeypatch):
    import zarr

    update = zarr.AsyncGroup.update_attributes

    async def crash_at_the_commit_record(self, attrs):
        if "committed_episodes" in attrs:
            raise CrashAtCommit  # arrays and attributes written, the (empty) commit record not yet
        return await update(self, attrs)

    out = tmp_path / "r.zarr"
    monkeypatch.setattr(zarr.AsyncGroup, "update_attributes", crash_at_the_commit_record)
    with pytest.raises(CrashAtCommit):
        collect("walker_walk", "random", out=out, episodes=2, **TINY)
    monkeypatch.setattr(zarr.AsyncGroup, "update_attributes", update)
    assert store.probe(str(out)) == "unfinished"
    assert [p.array for p in store.verify(out)] == ["commit record"]
    summary = collect("walker_walk", "random", out=out, episodes=2, **TINY)
    assert (summary.resumed_from, summary.episodes) == (0, 2) and store.verify(out) == []


def test_a_failed_collect_does_not_block_the_corrected_command(tmp_path, monkeypatch):
    def fail(self, steps, meta):
        raise CrashAtCommit

    out = tmp_path / "r.zarr"
    with monkeypatch.context() as m:
        m.setattr(store.DatasetWriter, "append_episode", fail)
        with pytest.raises(CrashAtCommit):
            collect("walker_walk", "random", out=out, episodes=2, seed=1, **TINY)
    assert store.open_dataset(out).n_episodes == 0
    summary = collect("walker_walk", "random", out=out, episodes=2, seed=2, **TINY)  # other arguments, no --overwrite
    assert summary.episodes == 2 and store.open_dataset(out).attrs["seed"] == 2


def test_a_crafted_policy_file_is_never_unpickled(tmp_path):
    out = tmp_path / "e.zarr"
    marker = tmp_path / "pwned"
    (tmp_path / "e.zarr.policy").mkdir()
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    (tmp_path / "e.zarr.policy" / "expert.pt").write_bytes(pickle.dumps({"agent": Payload()}))
    with pytest.raises(OwbenchError, match="expert.pt is not a plain tensor file.*never runs pickled code"):
        collect("walker_walk", "expert", out=out, episodes=1, sac_preset="smoke", **TINY)
    assert not marker.exists()


def test_pool_frames_equal_inline_frames(tmp_path):
    inline = collect("walker_walk", "random", out=tmp_path / "a.zarr", episodes=2, **TINY)
    pooled = collect("walker_walk", "random", out=tmp_path / "b.zarr", episodes=2, workers=2, **TINY)
    a, b = store.open_dataset(inline.location), store.open_dataset(pooled.location)
    for name in store.STEP_ARRAYS:
        assert np.array_equal(a.read(name), b.read(name)), name


def test_metaworld_rerendered_frames_equal_stepping_frames():
    # Meta-World moves bodies in the model on reset: re-rendering must reset to the episode's seed first.
    with make("mw_button-press", image_size=32) as env, make("mw_button-press", image_size=32) as other:
        frames, physics = [env.reset(seed=5)["image"]], [env.physics_state()]
        rng = np.random.default_rng(0)
        for _ in range(3):
            obs, *_ = env.step(rng.uniform(-1, 1, 4))
            frames.append(obs["image"])
            physics.append(env.physics_state())
        other.reset(seed=17)  # a different goal first, as a render worker would have
        assert np.array_equal(render_states(other, 5, np.stack(physics)), np.stack(frames))


def test_noisy_expert_cycles_sigma_and_uses_scripted_expert(tmp_path):
    summary = collect("mw_button-press", "noisy-expert", out=tmp_path / "n.zarr", episodes=6, image_size=32,
                      max_episode_steps=2)
    ds = store.open_dataset(summary.location)
    assert np.allclose(ds.episodes["noise_std"], [0.1, 0.3, 0.5, 1.0, 2.0, 0.1])
    assert ds.attrs["noise_schedule"] == [0.1, 0.3, 0.5, 1.0, 2.0]
    assert "scripted" in ds.attrs["behaviour"]["expert"]["description"]
    assert np.abs(ds.read("action")).max() <= 1.0


def _committed(path: Path) -> int:
    try:
        return json.loads((path / "zarr.json").read_text())["attributes"].get("committed_episodes", 0)
    except (FileNotFoundError, json.JSONDecodeError, KeyError):
        return 0


def test_kill_9_then_resume_gives_exactly_the_requested_episodes(tmp_path):
    out = tmp_path / "k.zarr"
    code = (f"from collectors.collect import collect; collect('walker_walk', 'random', out={str(out)!r}, "
            f"episodes=6, image_size=32, max_episode_steps=15)")
    proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ.copy())
    deadline = time.time() + 300
    while _committed(out) < 1 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_at = _committed(out)
    assert 1 <= killed_at, "the collection was killed before its first commit"
    assert store.verify(out) == []
    summary = collect("walker_walk", "random", out=out, episodes=6, image_size=32, max_episode_steps=15)
    assert summary.resumed_from == killed_at and summary.episodes == 6
    ds = store.open_dataset(out)
    starts, lengths = ds.episodes["start"], ds.episodes["length"]
    assert len(set(starts)) == 6 and np.array_equal(starts[1:], starts[:-1] + lengths[:-1])
    assert len(set(ds.episodes["seed"])) == 6 and store.verify(out) == []
    fresh = collect("walker_walk", "random", out=tmp_path / "f.zarr", episodes=6, image_size=32, max_episode_steps=15)
    assert np.array_equal(store.open_dataset(fresh.location).read("image"), ds.read("image"))


def test_medium_replay_resumes_exactly_after_a_crash(tmp_path, killed_before_commit):
    kwargs = dict(image_size=16, max_episode_steps=20, max_train_steps=120, sac_preset="smoke")
    reference = collect("walker_walk", "medium-replay", out=tmp_path / "ref.zarr", **kwargs)
    assert reference.episodes == 6 and (tmp_path / "ref.zarr.policy" / "medium.pt").exists()
    assert reference.behaviour["medium"]["train_steps"] == 120  # 6 episodes of 20 steps

    out = tmp_path / "mr.zarr"
    # after train_state.pt holds episode 3, before its commit
    killed_before_commit(lambda writer, meta: writer.committed_episodes == 3,
                         lambda: collect("walker_walk", "medium-replay", out=out, **kwargs))
    assert store.open_dataset(out).n_episodes == 3
    resumed = collect("walker_walk", "medium-replay", out=out, **kwargs)
    assert resumed.resumed_from == 3 and resumed.episodes == 6 and store.verify(out) == []
    a, b = store.open_dataset(reference.location), store.open_dataset(out)
    for name in ("action", "state", "reward", "image"):
        assert np.array_equal(a.read(name), b.read(name)), name


def test_ensure_dataset_lives_under_owbench_home(owbench_home):
    location = ensure_dataset("walker_walk", "random", episodes=1, variant="smoke", image_size=16,
                              max_episode_steps=3)
    assert dataset_id("walker_walk", "random", "smoke") == "dmc/walker_walk/random-smoke-v1"  # 64 px: no suffix
    assert dataset_id("walker_walk", "random", "smoke", 16) == "dmc/walker_walk/random-smoke-16px-v1"
    assert Path(location) == owbench_home / "datasets" / "dmc/walker_walk/random-smoke-16px-v1.zarr"
    assert store.open_dataset("dmc/walker_walk/random-smoke-16px-v1").n_episodes == 1
    assert ensure_dataset("walker_walk", "random", episodes=1, variant="smoke", image_size=16,
                          max_episode_steps=3) == location


def test_medium_expert_trains_once_and_saves_both_policies(tmp_path):
    summary = collect("walker_walk", "medium-expert", out=tmp_path / "me.zarr", episodes=2, image_size=16,
                      max_episode_steps=20, max_train_steps=150, sac_preset="smoke")
    policy_dir = tmp_path / "me.zarr.policy"
    assert (policy_dir / "medium.pt").exists() and (policy_dir / "expert.pt").exists()
    assert set(summary.behaviour) == {"medium", "expert"} and summary.episodes == 2
    assert all(150 <= info["train_steps"] < 170 for info in summary.behaviour.values())  # whole episodes


def test_collect_to_an_fsspec_url_with_policies_beside_it():
    url = f"memory://collect-{os.getpid()}/mr.zarr"
    summary = collect("walker_walk", "medium-replay", out=url, image_size=16, max_episode_steps=10,
                      max_train_steps=20, sac_preset="smoke")
    assert summary.location == url and store.open_dataset(url).n_episodes == 2 and store.verify(url) == []
    import fsspec

    assert fsspec.filesystem("memory").exists(f"/collect-{os.getpid()}/mr.zarr.policy/medium.pt")


def test_behaviour_stop_check_uses_seeds_apart_from_the_benchmark(tmp_path, monkeypatch):
    from collectors import collect as collect_module
    from collectors.seeds import EVAL_SEED_OFFSET, eval_seeds

    checked: list[int] = []
    evaluate = collect_module.evaluate_policy
    monkeypatch.setattr(collect_module, "evaluate_policy", lambda env, act, seeds: checked.extend(seeds) or
                        evaluate(env, act, seeds))
    collect("walker_walk", "medium-replay", out=tmp_path / "mr.zarr", image_size=16, max_episode_steps=20,
            max_train_steps=120, sac_preset="smoke", seed=3)
    assert checked  # the stop check ran
    benchmark = {s for training_seed in range(1000) for s in eval_seeds(10, training_seed)}
    assert not benchmark & set(checked) and min(checked) >= EVAL_SEED_OFFSET


def test_policy_and_training_state_files_round_trip_through_the_safe_loader(tmp_path):
    """What `save_beside` writes (networks, optimisers, RNG states, a pending episode) loads with weights_only."""
    from collectors.collect import Episode, load_beside, save_beside
    from collectors.policies.sac import SACConfig, SACTrainer

    trainer = SACTrainer(5, 2, SACConfig.preset("smoke"), seed=3)
    trainer.rng.random()  # a non-initial numpy RNG state
    rows = {"state": np.ones((3, 5), np.float32), "is_first": np.array([True, False, False])}
    pending = Episode(4, 123, 0.0, rows, np.float64(1.5), np.bool_(True))
    location = str(tmp_path / "d.zarr")
    save_beside(location, "train_state.pt", {"trainer": trainer.state_dict(), "pending": pending.to_saved()})
    saved = load_beside(location, "train_state.pt")
    restored = SACTrainer(5, 2, SACConfig.preset("smoke"), seed=0)
    restored.load_state_dict(saved["trainer"])
    assert restored.rng.random() == trainer.rng.random()
    back = Episode.from_saved(saved["pending"])
    assert (back.index, back.seed, back.ret, back.success) == (4, 123, 1.5, True)
    assert all(np.array_equal(back.rows[k], rows[k]) and back.rows[k].dtype == rows[k].dtype for k in rows)


def test_dataset_ids_carry_the_qualitys_recipe_version():
    """Medium-level SAC data changed recipe (its stop check moved off the benchmark's evaluation seeds): new ids,
    so a dataset collected before can never be read as one of today's."""
    from collectors.collect import dataset_id

    assert dataset_id("walker_walk", "random") == "dmc/walker_walk/random-v1"
    for quality in ("medium-replay", "medium", "medium-expert"):
        assert dataset_id("walker_walk", quality).endswith(f"/{quality}-v2")
    assert dataset_id("walker_downhill", "medium-replay", "smoke", 16) == "transfer/walker_downhill/medium-replay-smoke-16px-v2"
