"""Hostile import files: whatever bytes or arrays a folder holds, an import ends in a dataset that verifies
or in an OwbenchError (one line, exit 2 in the CLI), never in another exception."""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collectors import store
from collectors.errors import OwbenchError
from collectors.export import import_dataset

FOREIGN = dict(env_id="walker_walk", quality="expert")


def _good_episode(n: int = 5, size: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(n)
    return {"image": rng.integers(0, 255, (n, size, size, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (n, 6)).astype(np.float32), "reward": rng.random(n).astype(np.float32),
            "discount": np.ones(n, np.float32)}


def _import(folder: Path) -> store.Dataset | None:
    """Import a folder; None when it was refused with an OwbenchError."""
    try:
        ds = import_dataset(folder, folder.parent / "out.zarr", overwrite=True, **FOREIGN)
    except OwbenchError as exc:
        assert "\n" not in str(exc)
        return None
    assert store.verify(ds.location) == []
    return ds


def _npz(folder: Path, arrays: dict[str, np.ndarray], name: str = "ep.npz") -> Path:
    folder.mkdir(exist_ok=True)
    np.savez(folder / name, **arrays)  # allow_pickle: object arrays are written as the hostile file would be
    return folder


@pytest.mark.parametrize("case,match", [
    ("keyless", "lacks image, action"),
    ("zero-length", "episode of 0 rows"),
    ("nan-reward", "reward holds NaN"),
    ("no-channel-axis", "image has shape"),
    ("object-array", "not a readable npz"),
    ("wrong-length", "action has 4 rows but reward has 5"),
    ("random-bytes", "not a readable npz"),
    ("truncated", "not a readable npz"),
    ("other-image-size", "earlier episodes"),
])
def test_hostile_npz_is_refused_in_one_line(tmp_path, case, match):
    folder = tmp_path / "in"
    ep = _good_episode()
    if case == "keyless":
        _npz(folder, {"foo": np.zeros(3)})
    elif case == "zero-length":
        _npz(folder, {k: v[:0] for k, v in ep.items()})
    elif case == "nan-reward":
        _npz(folder, {**ep, "reward": np.r_[ep["reward"][:-1], np.nan].astype(np.float32)})
    elif case == "no-channel-axis":
        _npz(folder, {**ep, "image": ep["image"][..., 0]})
    elif case == "object-array":
        _npz(folder, {**ep, "reward": np.array([1, "x", None, 2, 3], dtype=object)})
    elif case == "wrong-length":
        _npz(folder, {**ep, "action": ep["action"][:4]})
    elif case == "random-bytes":
        folder.mkdir()
        (folder / "ep.npz").write_bytes(np.random.default_rng(0).bytes(300))
    elif case == "truncated":
        _npz(folder, ep)
        data = (folder / "ep.npz").read_bytes()
        (folder / "ep.npz").write_bytes(data[:len(data) // 2])
    elif case == "other-image-size":
        _npz(folder, ep, "a.npz")
        _npz(folder, _good_episode(size=12), "b.npz")
    with pytest.raises(OwbenchError, match=match):
        import_dataset(folder, tmp_path / "out.zarr", **FOREIGN)


@pytest.mark.parametrize("case,match", [
    ("random-bytes", "not a readable hdf5"),
    ("truncated", "not a readable hdf5"),
    ("keyless", "lacks observation"),
    ("no-channel-axis", "observation has shape"),
    ("nan-reward", "reward holds NaN"),
    ("no-first-step", "step_type must"),
])
def test_hostile_hdf5_is_refused_in_one_line(tmp_path, case, match):
    folder = tmp_path / "in"
    folder.mkdir()
    ep = _good_episode()
    shard = folder / "shard.hdf5"
    rows = {"observation": ep["image"].transpose(0, 3, 1, 2), "action": ep["action"], "reward": ep["reward"],
            "discount": ep["discount"], "step_type": np.array([0, 1, 1, 1, 2], np.uint8)}
    if case == "keyless":
        rows = {"foo": np.zeros(3)}
    elif case == "no-channel-axis":
        rows["observation"] = ep["image"][..., 0]
    elif case == "nan-reward":
        rows["reward"] = np.full(5, np.nan, np.float32)
    elif case == "no-first-step":
        rows["step_type"] = np.ones(5, np.uint8)
    if case == "random-bytes":
        shard.write_bytes(np.random.default_rng(0).bytes(400))
    else:
        with h5py.File(shard, "w") as f:
            for k, v in rows.items():
                f[k] = v
    if case == "truncated":
        shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(OwbenchError, match=match):
        import_dataset(folder, tmp_path / "out.zarr", **FOREIGN)


def test_bad_sidecar_json_is_refused(tmp_path):
    folder = _npz(tmp_path / "in", _good_episode())
    for text in ("{not json", "[1, 2]", '{"attrs": 5}'):
        (folder / "owbench.json").write_text(text)
        with pytest.raises(OwbenchError, match="owbench.json"):
            import_dataset(folder, tmp_path / "out.zarr", **FOREIGN)


ARRAY = st.one_of(
    st.builds(lambda shape, kind: np.zeros(shape, kind),
              st.lists(st.integers(0, 6), min_size=0, max_size=4).map(tuple),
              st.sampled_from(["uint8", "float32", "float64", "int64", "bool", "U3"])),
    st.builds(lambda n: np.full(n, np.nan, np.float32), st.integers(0, 6)),
    st.just(np.array([None, 1], dtype=object)),
)
KEYS = st.sampled_from(["image", "action", "reward", "discount", "is_first", "is_last", "state", "physics", "x"])


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arrays=st.dictionaries(KEYS, ARRAY, max_size=6), base=st.booleans())
def test_any_npz_content_verifies_or_is_refused(arrays, base):
    """Property: random arrays under the loaders' keys (over a valid episode or alone)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        _import(_npz(folder, {**(_good_episode() if base else {}), **arrays}))


@settings(max_examples=25, deadline=None, derandomize=True)
@given(data=st.binary(max_size=2000), cut=st.integers(0, 4000), fmt=st.sampled_from(["npz", "hdf5"]))
def test_any_bytes_verify_or_are_refused(data, cut, fmt):
    """Property: random bytes, or a valid file cut anywhere, as an npz episode or an hdf5 shard."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "in"
        folder.mkdir()
        if data:
            (folder / f"x.{fmt}").write_bytes(data)
        else:
            buffer = io.BytesIO()
            ep = _good_episode()
            if fmt == "npz":
                np.savez(buffer, **ep)
            else:
                with h5py.File(buffer, "w") as f:
                    f["observation"] = ep["image"].transpose(0, 3, 1, 2)
                    f["step_type"] = np.array([0, 1, 1, 1, 2], np.uint8)
                    for k in ("action", "reward", "discount"):
                        f[k] = ep[k]
            (folder / f"x.{fmt}").write_bytes(buffer.getvalue()[:cut])
        _import(folder)
