"""Export/import: lossless round trips through V-D4RL hdf5 and DreamerV2 npz; the loaders' layout."""
from __future__ import annotations

import re
from pathlib import Path

import h5py
import numpy as np
import pytest

from collectors import store
from collectors.collect import collect
from collectors.errors import OwbenchError
from collectors.export import export_dataset, import_dataset

VOLATILE = {"created", "updated", "imported_from", "chunk_rows", "tail_crc", "index_crc"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("src") / "src.zarr"
    collect("mw_button-press", "noisy-expert", out=out, episodes=3, image_size=16, max_episode_steps=4)
    return store.open_dataset(out)


def _assert_same(a: store.Dataset, b: store.Dataset) -> None:
    assert (a.n_steps, a.n_episodes) == (b.n_steps, b.n_episodes)
    for name in store.STEP_ARRAYS:
        x, y = a.read(name), b.read(name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name
    for name in store.EPISODE_ARRAYS:
        assert np.array_equal(a.episodes[name], b.episodes[name]), name
    strip = lambda attrs: {k: v for k, v in attrs.items() if k not in VOLATILE}  # noqa: E731
    assert strip(a.attrs) == strip(b.attrs)


@pytest.mark.parametrize("fmt", ["npz", "hdf5"])
def test_round_trip_is_lossless(dataset, tmp_path, fmt):
    files = export_dataset(dataset.location, tmp_path / "out", fmt, episodes_per_shard=2)
    assert len(files) == (3 if fmt == "npz" else 2)
    back = import_dataset(tmp_path / "out", tmp_path / "back.zarr")
    _assert_same(dataset, back)
    assert store.verify(back.location) == []


def test_npz_layout_matches_dreamerv2(dataset, tmp_path):
    files = export_dataset(dataset.location, tmp_path / "npz", "npz")
    assert [f.name for f in files] == sorted(f.name for f in files)  # sorted names = episode order
    for f in files:
        assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{32}-(\d+)\.npz", f.name)
        with np.load(f) as ep:
            assert int(f.name.split("-")[-1][:-4]) == len(ep["action"]) - 1
            assert ep["image"].shape[1:] == (16, 16, 3) and ep["image"].dtype == np.uint8
            assert ep["is_first"][0] and ep["is_last"][-1] and not ep["action"][0].any()


def test_hdf5_layout_matches_vd4rl_and_rerenders_at_another_size(dataset, tmp_path):
    [shard] = export_dataset(dataset.location, tmp_path / "h5", "hdf5", image_size=24)
    with h5py.File(shard) as f:
        assert f["observation"].shape == (dataset.n_steps, 3, 24, 24) and f["observation"].dtype == np.uint8
        assert list(f["step_type"][:5]) == [0, 1, 1, 1, 2]
        assert f["action"].shape == (dataset.n_steps, 4) and f["reward"].shape == f["discount"].shape


def test_foreign_npz_needs_env_and_quality(dataset, tmp_path):
    export_dataset(dataset.location, tmp_path / "f", "npz")
    (tmp_path / "f" / "owbench.json").unlink()
    for file in (tmp_path / "f").glob("*.npz"):  # an older DreamerV2 episode: no flags, no extras
        with np.load(file) as data:
            old = {k: data[k] for k in ("image", "action", "reward", "discount")}
        np.savez_compressed(file, **old)
    with pytest.raises(OwbenchError, match="--env and --quality"):
        import_dataset(tmp_path / "f", tmp_path / "x.zarr")
    ds = import_dataset(tmp_path / "f", tmp_path / "x.zarr", env_id="mw_button-press", quality="expert")
    assert ds.n_steps == dataset.n_steps and np.array_equal(ds.read("image"), dataset.read("image"))
    assert np.array_equal(ds.read("is_first"), dataset.read("is_first")) and ds.read("physics").shape[1] == 0
    assert store.verify(ds.location) == []


def test_bad_format_and_existing_output(dataset, tmp_path):
    with pytest.raises(OwbenchError, match="unknown export format 'csv'"):
        export_dataset(dataset.location, tmp_path / "o", "csv")
    export_dataset(dataset.location, tmp_path / "o", "npz")
    with pytest.raises(OwbenchError, match="--overwrite"):
        export_dataset(dataset.location, tmp_path / "o", "npz")
    with pytest.raises(OwbenchError, match="neither"):
        import_dataset(tmp_path, tmp_path / "y.zarr")


# -- safety: atomic exports, checked and resumable imports, hostile files --------------------------------------
class Crash(Exception):
    pass


def test_a_killed_import_resumes_without_losing_or_duplicating_episodes(dataset, tmp_path, monkeypatch):
    export_dataset(dataset.location, tmp_path / "npz", "npz")
    append = store.DatasetWriter.append_episode

    def crash_at_the_third(self, steps, meta):
        if self.committed_episodes == 2:
            raise Crash
        append(self, steps, meta)

    with monkeypatch.context() as m:
        m.setattr(store.DatasetWriter, "append_episode", crash_at_the_third)
        with pytest.raises(Crash):
            import_dataset(tmp_path / "npz", tmp_path / "back.zarr")
    partial = store.open_dataset(tmp_path / "back.zarr")
    assert partial.n_episodes == 2 and partial.attrs["complete"] is False  # not complete before the last episode
    back = import_dataset(tmp_path / "npz", tmp_path / "back.zarr")  # same source: resumes, no --overwrite
    _assert_same(dataset, back)
    with pytest.raises(OwbenchError, match="--overwrite"):  # another source over it still needs --overwrite
        import_dataset(_copy(tmp_path / "npz", tmp_path / "npz2"), tmp_path / "back.zarr")


def _copy(src, dst):
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.parametrize("fmt", ["npz", "hdf5"])
def test_a_killed_export_is_never_imported_as_complete(dataset, tmp_path, monkeypatch, fmt):
    from collectors import export

    write = export._write_atomic
    calls = []

    def crash_on_the_second_file(path, body):
        calls.append(path.name)
        if len([c for c in calls if c != export.SIDECAR]) == 2:
            raise Crash
        write(path, body)

    with monkeypatch.context() as m:
        m.setattr(export, "_write_atomic", crash_on_the_second_file)
        with pytest.raises(Crash):
            export_dataset(dataset.location, tmp_path / "out", fmt, episodes_per_shard=1)
    assert not list((tmp_path / "out").glob("*.partial"))  # the kill came before the file was opened
    with pytest.raises(OwbenchError, match="half-written export.*re-run `owbench datasets export`"):
        import_dataset(tmp_path / "out", tmp_path / "x.zarr")
    with pytest.raises(OwbenchError, match="--overwrite"):
        export_dataset(dataset.location, tmp_path / "out", fmt)
    export_dataset(dataset.location, tmp_path / "out", fmt, overwrite=True)
    _assert_same(dataset, import_dataset(tmp_path / "out", tmp_path / "x.zarr"))


def test_export_overwrite_deletes_only_its_own_files(dataset, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "episode.npz").write_bytes(b"not owbench's")
    for overwrite in (False, True):
        with pytest.raises(OwbenchError, match="not an owbench export.*not even with --overwrite"):
            export_dataset(dataset.location, mine, "npz", overwrite=overwrite)
    assert (mine / "episode.npz").read_bytes() == b"not owbench's"
    out = tmp_path / "out"
    export_dataset(dataset.location, out, "npz")
    (out / "notes.txt").write_text("keep")
    (out / "extra.npz").write_bytes(b"keep too")
    files = export_dataset(dataset.location, out, "npz", overwrite=True)
    assert (out / "notes.txt").read_text() == "keep" and (out / "extra.npz").read_bytes() == b"keep too"
    assert len(files) == 3
    with pytest.raises(OwbenchError, match="local folder"):
        export_dataset(dataset.location, "s3://bucket/x", "npz")
    assert not Path("s3:").exists()


def test_import_checks_each_file_against_the_export_checksum(dataset, tmp_path):
    files = export_dataset(dataset.location, tmp_path / "out", "npz")
    data = bytearray(files[1].read_bytes())
    data[len(data) // 2] ^= 0x01
    files[1].write_bytes(bytes(data))
    with pytest.raises(OwbenchError, match=f"{files[1].name} fails its checksum"):
        import_dataset(tmp_path / "out", tmp_path / "x.zarr")


def _silently_corrupt_image(location) -> None:
    import numcodecs

    chunk = next(f for f in sorted(Path(location, "image", "c").rglob("*")) if f.is_file())
    codec = numcodecs.Zstd()
    values = np.frombuffer(codec.decode(chunk.read_bytes()), np.uint8).copy()
    values[1] ^= 0xFF
    chunk.write_bytes(codec.encode(values))


def test_export_and_index_refuse_a_corrupt_dataset(dataset, tmp_path):
    from agents.retrieval import build_retrieval_index, make_extractor

    copy = _copy(dataset.location, tmp_path / "c.zarr")
    _silently_corrupt_image(copy)
    for read in (lambda: export_dataset(copy, tmp_path / "out", "hdf5"),
                 lambda: build_retrieval_index([str(copy)], make_extractor("pixels"))):
        with pytest.raises(OwbenchError, match="image chunk 0 fails its checksum.*owbench datasets verify"):
            read()


def test_import_waits_for_no_writer(dataset, tmp_path):
    export_dataset(dataset.location, tmp_path / "out", "npz")
    target = str(tmp_path / "busy.zarr")
    with store.writer_lock(target):  # e.g. a collect writing there
        with pytest.raises(OwbenchError, match="being written by another owbench process"):
            import_dataset(tmp_path / "out", target, overwrite=True)
    assert not Path(target).exists()


def test_channels_last_hdf5_imports_in_the_right_layout(dataset, tmp_path):
    [shard] = export_dataset(dataset.location, tmp_path / "h5", "hdf5")
    with h5py.File(shard, "a") as f:
        observation = f["observation"][()].transpose(0, 2, 3, 1)  # (N, S, S, 3), as some converters write it
        del f["observation"]
        f["observation"] = observation
    (tmp_path / "h5" / "owbench.json").unlink()  # edited: the export's checksums no longer hold
    back = import_dataset(tmp_path / "h5", tmp_path / "x.zarr")
    assert np.array_equal(back.read("image"), dataset.read("image"))
