"""Export a dataset to, and import it from, the formats the reference code bases load (DESIGN.md §4).

- `hdf5` (V-D4RL): a folder of `*.hdf5` shards with `observation` uint8 (N, 3, S, S) channels first,
  `action`, `reward`, `discount`, `step_type` (0 first, 1 mid, 2 last); rows keep the npz convention
  (row t: o_t, a_{t-1}, r_t), as V-D4RL's own `npz_to_hdf5.py` writes them. `image_size=84` re-renders
  from `physics` instead of V-D4RL's cubic resize.
- `npz` (DreamerV2 / CoWorld / V-D4RL): a flat folder of `{YYYYmmddTHHMMSS}-{uuid hex}-{length}.npz`
  episodes (`length` = transitions = rows - 1, DreamerV2's `eplen`), keys `image`, `action`, `reward`,
  `discount`, `is_first`, `is_last`, `is_terminal`, plus `state` and `physics`.

Round trips are lossless: besides the fields the loaders read, both formats carry `state`, `physics`,
`is_terminal` and the per-episode index, and the dataset attributes as JSON (hdf5 file attribute
`owbench`, npz sidecar `owbench.json`, which `*.npz` globs skip). Foreign data (no owbench metadata)
imports too when the caller names the environment and quality.
"""
from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from collectors import store
from collectors.errors import OwbenchError

FORMATS = ("hdf5", "npz")
SIDECAR = "owbench.json"
FIRST, MID, LAST = 0, 1, 2
LOADER_KEYS = ("image", "action", "reward", "discount", "is_first", "is_last", "is_terminal")


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise OwbenchError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _fresh_folder(out: Path, overwrite: bool) -> None:
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise OwbenchError(f"{out} exists and is not empty; choose another --out or pass --overwrite")
    out.mkdir(parents=True, exist_ok=True)
    for old in (*out.glob("*.npz"), *out.glob("*.hdf5"), out / SIDECAR):
        old.unlink(missing_ok=True)


def _episode_images(ds: store.Dataset, index: int, image_size: int | None) -> np.ndarray:
    """Stored frames, or frames re-rendered at another size from the physics rows."""
    ep = ds.episode(index, ("image", "physics"))
    if image_size is None or image_size == ds.attrs["image_size"]:
        return ep["image"]
    from collectors.envs import make
    from collectors.render_pool import render_states

    with make(ds.env_id, image_size=image_size, camera=ds.attrs.get("camera"),
              fast_render=ds.attrs.get("render", {}).get("fast_render", False)) as env:
        return render_states(env, int(ds.episodes["seed"][index]), ep["physics"])


def _index_meta(ds: store.Dataset, index: int) -> dict[str, Any]:
    return {name: ds.episodes[name][index].item() for name in ("return", "success", "noise_std", "seed")}


def export_dataset(location: str | Path, out: str | Path, fmt: str, *, image_size: int | None = None,
                   episodes_per_shard: int = 100, overwrite: bool = False) -> list[Path]:
    """Write a dataset's committed episodes as V-D4RL hdf5 shards or DreamerV2 npz episodes; returns the files."""
    _check_format(fmt)
    ds = store.open_dataset(location)
    if ds.n_episodes == 0:
        raise OwbenchError(f"{ds.location} has no committed episodes to export")
    out = Path(out)
    _fresh_folder(out, overwrite)
    attrs = {**ds.attrs, "image_size": image_size or ds.attrs["image_size"]}
    if fmt == "npz":
        return _export_npz(ds, out, attrs, image_size)
    return _export_hdf5(ds, out, attrs, image_size, episodes_per_shard)


def _export_npz(ds: store.Dataset, out: Path, attrs: dict[str, Any], image_size: int | None) -> list[Path]:
    start_time = datetime.fromisoformat(ds.attrs["created"]).replace(tzinfo=None, microsecond=0)
    files, metas = [], {}
    for i in range(ds.n_episodes):
        ep = ds.episode(i, tuple(k for k in store.STEP_ARRAYS if k != "image"))
        ep["image"] = _episode_images(ds, i, image_size)
        stamp = (start_time + timedelta(seconds=i)).strftime("%Y%m%dT%H%M%S")  # sorted names = episode order
        name = f"{stamp}-{uuid.uuid5(uuid.NAMESPACE_URL, f'{ds.location}#{i}').hex}-{len(ep['reward']) - 1}.npz"
        np.savez_compressed(out / name, **ep)
        files.append(out / name)
        metas[name] = _index_meta(ds, i)
    (out / SIDECAR).write_text(json.dumps({"attrs": attrs, "episodes": metas}, indent=1, default=str))
    return files


def _export_hdf5(ds: store.Dataset, out: Path, attrs: dict[str, Any], image_size: int | None,
                 episodes_per_shard: int) -> list[Path]:
    files = []
    for shard, first in enumerate(range(0, ds.n_episodes, episodes_per_shard)):
        indices = range(first, min(first + episodes_per_shard, ds.n_episodes))
        eps = [ds.episode(i, tuple(k for k in store.STEP_ARRAYS if k != "image")) for i in indices]
        images = [_episode_images(ds, i, image_size) for i in indices]
        step_type = []
        for ep in eps:
            st = np.full(len(ep["reward"]), MID, np.uint8)
            st[0], st[-1] = FIRST, LAST
            step_type.append(st)
        path = out / f"shard_{shard:05d}.hdf5"
        with h5py.File(path, "w") as f:
            f.create_dataset("observation", data=np.concatenate(images).transpose(0, 3, 1, 2), compression="gzip")
            f.create_dataset("step_type", data=np.concatenate(step_type))
            for key in ("action", "reward", "discount", "is_terminal", "state", "physics"):
                f.create_dataset(key, data=np.concatenate([ep[key] for ep in eps]), compression="gzip")
            for key in ("return", "success", "noise_std", "seed"):
                f.create_dataset(f"episode_{key}", data=ds.episodes[key][first:indices.stop])
            f.attrs["owbench"] = json.dumps(attrs, default=str)
        files.append(path)
    return files


# -- import -------------------------------------------------------------------------------------------------
def detect_format(path: Path) -> str:
    if path.is_file() and path.suffix == ".hdf5" or path.is_dir() and any(path.glob("*.hdf5")):
        return "hdf5"
    if path.is_dir() and any(path.glob("*.npz")):
        return "npz"
    raise OwbenchError(f"{path} holds neither *.hdf5 shards nor *.npz episodes; point to an exported folder")


def _read_npz(path: Path) -> tuple[dict[str, Any] | None, list[tuple[dict[str, np.ndarray], dict[str, Any]]]]:
    sidecar = json.loads((path / SIDECAR).read_text()) if (path / SIDECAR).exists() else None
    episodes = []
    for file in sorted(path.glob("*.npz")):
        with np.load(file) as data:
            ep = {k: data[k] for k in data.files}
        rows = np.arange(len(ep["reward"]))
        ep.setdefault("is_first", rows == 0)  # older DreamerV2 files lack the flags: one episode per file
        ep.setdefault("is_last", rows == rows[-1])
        ep.setdefault("is_terminal", ep["is_last"] & (ep["discount"] == 0.0))
        meta = (sidecar or {}).get("episodes", {}).get(file.name)
        episodes.append((ep, meta))
    return (sidecar or {}).get("attrs"), episodes


def _read_hdf5(path: Path) -> tuple[dict[str, Any] | None, list[tuple[dict[str, np.ndarray], dict[str, Any]]]]:
    files = [path] if path.is_file() else sorted(path.glob("*.hdf5"))
    attrs, episodes = None, []
    for file in files:
        with h5py.File(file, "r") as f:
            attrs = json.loads(f.attrs["owbench"]) if "owbench" in f.attrs else attrs
            rows = {k: f[k][:] for k in f.keys() if not k.startswith("episode_")}
            index = {k.removeprefix("episode_"): f[k][:] for k in f.keys() if k.startswith("episode_")}
        starts = np.flatnonzero(rows["step_type"] == FIRST)
        stops = np.append(starts[1:], len(rows["step_type"]))
        for e, (a, b) in enumerate(zip(starts, stops)):
            ep = {k: v[a:b] for k, v in rows.items() if k not in ("observation", "step_type")}
            ep["image"] = rows["observation"][a:b].transpose(0, 2, 3, 1)
            ep["is_first"] = rows["step_type"][a:b] == FIRST
            ep["is_last"] = rows["step_type"][a:b] == LAST
            ep.setdefault("is_terminal", ep["is_last"] & (ep["discount"] == 0.0))
            episodes.append((ep, {k: v[e].item() for k, v in index.items()} or None))
    return attrs, episodes


def import_dataset(path: str | Path, out: str | Path, *, fmt: str | None = None, env_id: str | None = None,
                   quality: str | None = None, overwrite: bool = False) -> store.Dataset:
    """Import an hdf5 or npz export (ours, or foreign data given `env_id` and `quality`) into a store."""
    path = Path(path)
    if not path.exists():
        raise OwbenchError(f"no such file or folder: {path}")
    fmt = fmt or detect_format(path)
    _check_format(fmt)
    attrs, episodes = (_read_npz if fmt == "npz" else _read_hdf5)(path)
    if not episodes:
        raise OwbenchError(f"{path} holds no episodes")
    if attrs is None:
        if env_id is None or quality is None:
            raise OwbenchError(f"{path} has no owbench metadata; name its task and quality with --env and --quality")
        from collectors.envs import spec

        s = spec(env_id)
        attrs = {"env_id": s.id, "suite": s.suite, "quality": quality, "action_repeat": s.action_repeat,
                 "time_limit": s.time_limit, "camera": s.camera, "action_dim": s.action_dim,
                 "image_size": int(episodes[0][0]["image"].shape[1]), "complete": True}
    attrs = {k: v for k, v in attrs.items()
             if k not in ("committed_episodes", "committed_steps", "schema_version", "created", "chunk_rows")}
    attrs["imported_from"] = {"path": str(path.resolve()), "format": fmt}
    first = episodes[0][0]
    shapes = {"image": first["image"].shape[1:], "action": first["action"].shape[1:],
              "state": first["state"].shape[1:] if "state" in first else (0,),
              "physics": first["physics"].shape[1:] if "physics" in first else (0,)}
    writer = store.create_dataset(out, attrs, shapes, overwrite=overwrite)
    for ep, meta in episodes:
        n = len(ep["reward"])
        steps = {k: ep[k] if k in ep else np.zeros((n, *shapes[k])) for k in store.STEP_ARRAYS}
        meta = meta or {"return": float(np.sum(ep["reward"], dtype=np.float64)), "success": False,
                        "noise_std": 0.0, "seed": -1}
        writer.append_episode(steps, meta)
    writer.trim()
    return store.open_dataset(writer.location)
