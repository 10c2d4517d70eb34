"""The Zarr store: round trip, committed-prefix semantics, resume, verify catching corruption, URLs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from zarr.codecs import BloscCodec
from zarr.storage import LocalStore

from collectors import store
from collectors.errors import OwbenchError

SHAPES = {"image": (8, 8, 3), "state": (5,), "action": (2,), "physics": (7,)}


def _episode(length: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = np.zeros(length, bool)
    first[0] = True
    last = np.zeros(length, bool)
    last[-1] = True
    return {"image": rng.integers(0, 256, (length, 8, 8, 3), dtype=np.uint8),
            "state": rng.standard_normal((length, 5)).astype(np.float32),
            "action": rng.uniform(-1, 1, (length, 2)).astype(np.float32) * ~first[:, None],
            "reward": rng.random(length).astype(np.float32), "discount": np.ones(length, np.float32),
            "is_first": first, "is_last": last, "is_terminal": np.zeros(length, bool),
            "physics": rng.standard_normal((length, 7))}


def _write(location, lengths=(40, 30, 50)) -> list[dict[str, np.ndarray]]:
    writer = store.create_dataset(location, {"env_id": "walker_walk", "quality": "random"}, SHAPES,
                                  image_chunk_rows=16)
    episodes = [_episode(n, i) for i, n in enumerate(lengths)]
    for i, ep in enumerate(episodes):
        writer.append_episode(ep, {"return": float(ep["reward"].sum()), "seed": i, "noise_std": 0.1 * i})
    return episodes


@pytest.mark.parametrize("where", ["path", "memory"])
def test_round_trip(tmp_path, where):
    location = str(tmp_path / "d.zarr") if where == "path" else f"memory://{tmp_path.name}/d.zarr"
    episodes = _write(location)
    ds = store.open_dataset(location)
    assert (ds.n_episodes, ds.n_steps) == (3, 120) and ds.attrs["env_id"] == "walker_walk"
    for name in store.STEP_ARRAYS:
        want = np.concatenate([ep[name] for ep in episodes])
        got = ds.read(name)
        assert got.dtype == store.DTYPES[name] and np.array_equal(got, want.astype(store.DTYPES[name])), name
    assert list(ds.episodes["start"]) == [0, 40, 70] and list(ds.episodes["seed"]) == [0, 1, 2]
    assert np.array_equal(ds.episode(1)["image"], episodes[1]["image"])
    assert store.verify(location) == []


def test_trim_leaves_plain_zarr_exactly_the_committed_rows_and_appending_goes_on(tmp_path):
    import zarr

    location = str(tmp_path / "d.zarr")
    episodes = _write(location, (20, 30))
    writer = store.open_writer(location)
    assert writer.group["reward"].shape[0] > 50  # arrays grow ahead of the commit point
    writer.trim()
    group = zarr.open_group(location, mode="r")
    assert group["image"].shape == (50, 8, 8, 3) and group["episodes/start"].shape == (2,)
    assert np.array_equal(group["image"][:], np.concatenate([ep["image"] for ep in episodes]))
    assert group["manifest/image"].shape == (-(-50 // 16),) and store.verify(location) == []
    new = _episode(10, 9)
    writer.append_episode(new, {"return": 1.0})
    ds = store.open_dataset(location)
    assert ds.n_steps == 60 and np.array_equal(ds.read("image", 50, 60), new["image"])
    assert store.verify(location) == []


def test_readers_see_only_the_committed_prefix_and_resume_overwrites_leftovers(tmp_path):
    location = str(tmp_path / "d.zarr")
    _write(location, (20, 30))  # 50 rows: the committed prefix ends inside an image chunk
    group = store.open_writer(location).group
    group["image"].resize((100, 8, 8, 3))  # an in-flight episode: rows written, never committed
    group["image"][50:60] = 255
    group["manifest/image"][3] ^= 1  # its checksum of the shared chunk (rows 48-63) too, killed before commit
    ds = store.open_dataset(location)
    assert ds.n_steps == 50 and ds.read("image", 0, 1000).shape[0] == 50 and store.verify(location) == []
    writer = store.open_writer(location)
    new = _episode(10, 9)
    writer.append_episode(new, {"return": 1.0})
    ds = store.open_dataset(location)
    assert ds.n_episodes == 3 and np.array_equal(ds.read("image", 50, 60), new["image"])
    assert store.verify(location) == []


def test_appends_read_nothing_back_and_write_the_commit_record_once(tmp_path, monkeypatch):
    location = str(tmp_path / "d.zarr")
    _write(location, (20, 30))  # 50 rows: the next episode starts inside image chunk 3 and state chunk 0
    writer = store.open_writer(location)  # reads each array's last chunk once
    written = []
    monkeypatch.setattr(LocalStore, "get", _no_reads)
    monkeypatch.setattr(LocalStore, "set", _recording(LocalStore.set, written))
    for i, n in enumerate((25, 40)):
        writer.append_episode(_episode(n, 10 + i), {"return": 1.0})
    monkeypatch.undo()
    assert written.count("zarr.json") == 2  # one commit record per episode, in one document
    ds = store.open_dataset(location)
    assert ds.n_steps == 115 and np.array_equal(ds.read("state", 75, 115), _episode(40, 11)["state"])
    assert store.verify(location) == []


async def _no_reads(self, key, *args, **kwargs):
    raise AssertionError(f"the writer read {key} back")


def _recording(set_key, keys):
    async def record(self, key, value):
        keys.append(key)
        await set_key(self, key, value)
    return record


def test_a_kill_while_rewriting_a_shared_chunk_keeps_its_committed_rows(tmp_path, monkeypatch):
    location = str(tmp_path / "d.zarr")
    episodes = _write(location, (20, 30))  # image chunk 3 holds committed rows 48-49
    replace = os.replace

    def killed_before_rename(src, dst, *args, **kwargs):
        if str(dst).endswith(f"image{os.sep}c{os.sep}3{os.sep}0{os.sep}0{os.sep}0"):
            raise OSError("killed")  # stands in for SIGKILL: the new chunk is written but not in place
        replace(src, dst, *args, **kwargs)

    monkeypatch.setattr(os, "replace", killed_before_rename)
    with pytest.raises(OSError, match="killed"):
        store.open_writer(location).append_episode(_episode(10, 9), {})
    monkeypatch.undo()
    ds = store.open_dataset(location)
    assert ds.n_episodes == 2 and np.array_equal(ds.read("image", 48, 50), episodes[1]["image"][28:])
    assert store.verify(location) == []
    store.open_writer(location).append_episode(_episode(10, 9), {})  # resume
    assert np.array_equal(store.open_dataset(location).read("image", 50, 60), _episode(10, 9)["image"])
    assert store.verify(location) == []


def test_appends_to_arrays_stored_with_blosc(tmp_path, monkeypatch):
    # datasets written before every array was plain zstd keep blosc-zstd on their low-dimensional arrays
    monkeypatch.setattr(store, "_compressor", lambda: BloscCodec(cname="zstd", clevel=3, shuffle="shuffle"))
    location = str(tmp_path / "d.zarr")
    episodes = _write(location)
    ds = store.open_dataset(location)
    assert isinstance(ds.arrays["physics"].metadata.codecs[1], BloscCodec)
    assert np.array_equal(ds.read("physics"), np.concatenate([ep["physics"] for ep in episodes]))
    assert store.verify(location) == []


def _chunk_file(location: str, array: str, chunk: int) -> Path:
    files = sorted(Path(location, array, "c").glob(f"{chunk}/**/*"))
    return next(f for f in files if f.is_file())


def test_verify_names_array_and_chunk_for_a_flipped_byte(tmp_path):
    location = str(tmp_path / "d.zarr")
    _write(location)
    path = _chunk_file(location, "image", 2)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    problems = store.verify(location)
    assert [(p.array, p.chunk) for p in problems] == [("image", 2)]


def test_verify_catches_a_truncated_chunk(tmp_path):
    location = str(tmp_path / "d.zarr")
    _write(location)
    path = _chunk_file(location, "state", 0)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    problems = store.verify(location)
    assert problems and problems[0].array == "state" and problems[0].chunk == 0


def test_verify_catches_an_inconsistent_episode_index(tmp_path):
    location = str(tmp_path / "d.zarr")
    _write(location)
    group = store.open_writer(location).group
    group["episodes/start"][1] = 41
    assert [p.array for p in store.verify(location)] == ["episodes/start", "episodes"]


@pytest.mark.parametrize("name,value", [("return", 1e6), ("seed", 12345)])
def test_the_episode_index_is_checksummed_and_readers_refuse_an_edited_one(tmp_path, name, value):
    location = str(tmp_path / "d.zarr")
    _write(location)
    store.open_writer(location).group[f"episodes/{name}"][1] = value  # tiles as before: only its checksum tells
    assert [(p.array, p.message) for p in store.verify(location)] == [(f"episodes/{name}", "checksum mismatch")]
    with pytest.raises(OwbenchError, match=f"corrupt: the episode index .episodes/{name}.*datasets verify"):
        store.open_dataset(location)


def test_missing_commit_record(tmp_path):
    location = str(tmp_path / "d.zarr")
    _write(location)
    meta = Path(location, "zarr.json")
    doc = json.loads(meta.read_text())
    del doc["attributes"]["committed_steps"]
    meta.write_text(json.dumps(doc))
    assert [p.array for p in store.verify(location)] == ["commit record"]
    with pytest.raises(OwbenchError, match="no commit record"):
        store.open_dataset(location)


def test_create_refuses_to_overwrite_and_ids_resolve_under_home(tmp_path, owbench_home):
    location = str(tmp_path / "d.zarr")
    _write(location, (5,))
    with pytest.raises(OwbenchError, match="--overwrite"):
        store.create_dataset(location, {}, SHAPES)
    assert store.resolve_location("dmc/walker_walk/random-v1") == str(
        owbench_home / "datasets" / "dmc/walker_walk/random-v1.zarr")
    with pytest.raises(OwbenchError, match="no dataset at"):
        store.open_dataset("dmc/walker_walk/nothing-v1")


def test_list_local_and_stats(owbench_home):
    _write(store.resolve_location("dmc/walker_walk/random-v1"), (10, 20))
    [entry] = store.list_local()
    assert (entry.id, entry.episodes, entry.steps, entry.quality) == ("dmc/walker_walk/random-v1", 2, 28, "random")
    ds = store.open_dataset("dmc/walker_walk/random-v1")
    assert store.return_stats(ds)["episodes"] == 2
    assert store.filmstrip(ds, 1, 4).shape == (8, 32, 3)
