"""Export/import: lossless round trips through V-D4RL hdf5 and DreamerV2 npz; the loaders' layout."""
from __future__ import annotations

import re

import h5py
import numpy as np
import pytest

from collectors import store
from collectors.collect import collect
from collectors.errors import OwbenchError
from collectors.export import export_dataset, import_dataset

VOLATILE = {"created", "updated", "imported_from", "chunk_rows"}


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
