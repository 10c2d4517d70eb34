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
`owbench`, and the sidecar `owbench.json`, which `*.npz` / `*.hdf5` globs skip). Foreign data (no
owbench metadata) imports too when the caller names the environment and quality.

Safety: an export writes `owbench.json` first with `complete: false`, each file under a temporary name
renamed when whole, and last `owbench.json` again with `complete: true` and each file's CRC32 (the
completion marker). An import refuses a folder whose marker is not complete, checks each file's CRC
before decoding it, validates every episode (keys, shapes, finite values), and commits episode by
episode under the dataset's writer lock, so a killed import resumes where it stopped.
"""
from __future__ import annotations

import io
import json
import os
import uuid
import zlib
from collections.abc import Callable, Iterator
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
REQUIRED_KEYS = ("image", "action", "reward", "discount")
Episode = tuple[dict[str, np.ndarray], dict[str, Any] | None]


def _check_format(fmt: str) -> None:
    if fmt not in FORMATS:
        raise OwbenchError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def _write_atomic(path: Path, write: Callable[[Any], None]) -> None:
    """Write through `write(file object)` to a temporary name, then rename: no reader sees half a file."""
    tmp = path.with_name(f"{path.name}.partial")
    with open(tmp, "wb") as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_sidecar(out: Path, doc: dict[str, Any]) -> None:
    _write_atomic(out / SIDECAR, lambda f: f.write(json.dumps(doc, indent=1, default=str).encode()))


def _read_sidecar(folder: Path) -> dict[str, Any] | None:
    path = folder / SIDECAR
    if not path.exists():
        return None
    try:
        doc = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise OwbenchError(f"{path} is not valid JSON ({type(exc).__name__}); re-export the dataset or delete "
                           "the file to import the folder as foreign data") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("attrs", {}), dict) \
            or not isinstance(doc.get("episodes", {}), dict) or not isinstance(doc.get("files", {}), dict):
        raise OwbenchError(f"{path} is not an owbench export description; re-export the dataset or delete the file "
                           "to import the folder as foreign data")
    return doc


def _fresh_folder(out: Path, overwrite: bool) -> None:
    """An empty output folder; with `overwrite`, an earlier owbench export's files are removed, nothing else."""
    if out.exists() and not out.is_dir():
        raise OwbenchError(f"{out} is a file; give --out a folder")
    if out.exists() and any(out.iterdir()):
        old = _read_sidecar(out) if (out / SIDECAR).exists() else None
        if old is None or "format" not in old:
            raise OwbenchError(f"{out} is not empty and not an owbench export; owbench will not write into it "
                               "(not even with --overwrite): choose another --out")
        if not overwrite:
            raise OwbenchError(f"{out} holds an export already; choose another --out or pass --overwrite")
        (out / SIDECAR).unlink()  # first: a kill from here on leaves no completion marker
        for name in (*old.get("files", {}), *old.get("episodes", {})):
            for path in (out / Path(name).name, out / f"{Path(name).name}.partial"):
                path.unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


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
    if "://" in str(out):
        raise OwbenchError(f"--out {out}: exports are written to a local folder; export locally, then copy the "
                           "folder to its URL")
    ds = store.open_dataset(location)
    if ds.n_episodes == 0:
        raise OwbenchError(f"{ds.location} has no committed episodes to export")
    out = Path(out)
    _fresh_folder(out, overwrite)
    _write_sidecar(out, {"format": fmt, "complete": False})  # marks the folder as owbench's, not yet whole
    attrs = {**ds.attrs, "image_size": image_size or ds.attrs["image_size"]}
    attrs = {k: v for k, v in attrs.items() if k not in ("tail_crc", "index_crc")}
    write = _export_npz if fmt == "npz" else _export_hdf5
    files, metas = write(ds, out, attrs, image_size, episodes_per_shard)
    crcs = {f.name: _file_crc(f.read_bytes()) for f in files}
    _write_sidecar(out, {"format": fmt, "complete": True, "files": crcs, "attrs": attrs, "episodes": metas})
    return files


def _file_crc(data: bytes) -> int:
    return zlib.crc32(data)


def _export_npz(ds: store.Dataset, out: Path, attrs: dict[str, Any], image_size: int | None,
                episodes_per_shard: int) -> tuple[list[Path], dict[str, Any]]:
    start_time = datetime.fromisoformat(ds.attrs["created"]).replace(tzinfo=None, microsecond=0)
    files, metas = [], {}
    for i in range(ds.n_episodes):
        ep = ds.episode(i, tuple(k for k in store.STEP_ARRAYS if k != "image"))
        ep["image"] = _episode_images(ds, i, image_size)
        stamp = (start_time + timedelta(seconds=i)).strftime("%Y%m%dT%H%M%S")  # sorted names = episode order
        name = f"{stamp}-{uuid.uuid5(uuid.NAMESPACE_URL, f'{ds.location}#{i}').hex}-{len(ep['reward']) - 1}.npz"
        _write_atomic(out / name, lambda f, ep=ep: np.savez_compressed(f, **ep))
        files.append(out / name)
        metas[name] = _index_meta(ds, i)
    return files, metas


def _export_hdf5(ds: store.Dataset, out: Path, attrs: dict[str, Any], image_size: int | None,
                 episodes_per_shard: int) -> tuple[list[Path], dict[str, Any]]:
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

        def write(handle: Any, eps=eps, images=images, step_type=step_type, indices=indices) -> None:
            with h5py.File(handle, "w") as f:
                f.create_dataset("observation", data=np.concatenate(images).transpose(0, 3, 1, 2), compression="gzip")
                f.create_dataset("step_type", data=np.concatenate(step_type))
                for key in ("action", "reward", "discount", "is_terminal", "state", "physics"):
                    f.create_dataset(key, data=np.concatenate([ep[key] for ep in eps]), compression="gzip")
                for key in ("return", "success", "noise_std", "seed"):
                    f.create_dataset(f"episode_{key}", data=ds.episodes[key][indices.start:indices.stop])
                f.attrs["owbench"] = json.dumps(attrs, default=str)

        _write_atomic(path, write)
        files.append(path)
    return files, {}


# -- import -------------------------------------------------------------------------------------------------
def detect_format(path: Path) -> str:
    if path.is_file() and path.suffix == ".hdf5" or path.is_dir() and any(path.glob("*.hdf5")):
        return "hdf5"
    if path.is_dir() and any(path.glob("*.npz")):
        return "npz"
    raise OwbenchError(f"{path} holds neither *.hdf5 shards nor *.npz episodes; point to an exported folder")


class _Source:
    """The files of an export in episode order, each read whole once and checked against the export's CRC."""

    def __init__(self, path: Path, fmt: str):
        self.path, self.fmt = path, fmt
        self.attrs: dict[str, Any] | None = None  # the dataset attributes an export carries (hdf5: read with a shard)
        self.sidecar = _read_sidecar(path) if path.is_dir() else None
        if self.sidecar is not None and "complete" in self.sidecar and not self.sidecar["complete"]:
            raise OwbenchError(f"{path} is a half-written export (its {SIDECAR} is not marked complete); re-run "
                               "`owbench datasets export` to finish it")
        listed = (self.sidecar or {}).get("files")
        if listed:
            self.files = [path / Path(name).name for name in sorted(listed)]
            missing = [f.name for f in self.files if not f.is_file()]
            if missing:
                raise OwbenchError(f"{path} lacks {len(missing)} of the files its {SIDECAR} lists (first: "
                                   f"{missing[0]}); re-export the dataset")
        else:
            self.files = [path] if path.is_file() else sorted(path.glob(f"*.{fmt}"))

    def metadata(self) -> dict[str, Any] | None:
        """The exported dataset's attributes, or None for foreign data."""
        return (self.sidecar or {}).get("attrs") or self.attrs

    def read(self, file: Path) -> bytes:
        data = file.read_bytes()
        want = ((self.sidecar or {}).get("files") or {}).get(file.name)
        if want is not None and _file_crc(data) != want:
            raise OwbenchError(f"{file} fails its checksum (a changed or damaged file); re-export the dataset")
        return data

    def unreadable(self, file: Path, exc: Exception) -> OwbenchError:
        reason = str(exc).strip().splitlines()[0][:120] if str(exc).strip() else type(exc).__name__
        return OwbenchError(f"{file} is not a readable {self.fmt} file ({reason}); re-export it or remove it "
                            "from the folder")


def _read_npz(source: _Source, skip: int) -> Iterator[tuple[Path, Episode]]:
    """Episodes of an npz folder, one per file, from episode `skip` on."""
    meta = (source.sidecar or {}).get("episodes", {})
    for file in source.files[skip:]:
        try:
            with np.load(io.BytesIO(source.read(file)), allow_pickle=False) as data:
                ep = {k: data[k] for k in data.files}
        except OwbenchError:
            raise
        except Exception as exc:  # truncated zip, object arrays, not a zip at all
            raise source.unreadable(file, exc) from exc
        _require(ep, file, REQUIRED_KEYS)
        yield file, (ep, meta.get(file.name))


def _read_hdf5(source: _Source, skip: int) -> Iterator[tuple[Path, Episode]]:
    """Episodes of the hdf5 shards in order, from episode `skip` on."""
    seen = 0
    for file in source.files:
        try:
            with h5py.File(io.BytesIO(source.read(file)), "r") as f:
                if "owbench" in f.attrs:
                    source.attrs = _json_attrs(f.attrs["owbench"], file)
                rows = {k: f[k][()] for k in f.keys() if not k.startswith("episode_")}
                index = {k.removeprefix("episode_"): f[k][()] for k in f.keys() if k.startswith("episode_")}
        except OwbenchError:
            raise
        except Exception as exc:  # truncated file, not hdf5, groups where datasets belong
            raise source.unreadable(file, exc) from exc
        _require(rows, file, ("observation", "step_type", "action", "reward", "discount"))
        step_type = np.asarray(rows["step_type"])
        starts = np.flatnonzero(step_type == FIRST)
        if step_type.ndim != 1 or not len(starts) or starts[0] != 0:
            raise OwbenchError(f"{file}: step_type must be one row per step and start with {FIRST} (first step)")
        stops = np.append(starts[1:], len(step_type))
        image = _channels_last(np.asarray(rows["observation"]), file)
        for e, (a, b) in enumerate(zip(starts, stops)):
            if seen + e < skip:
                continue
            ep = {k: v[a:b] for k, v in rows.items() if k not in ("observation", "step_type")}
            ep["image"] = image[a:b]
            ep["is_first"] = step_type[a:b] == FIRST
            ep["is_last"] = step_type[a:b] == LAST
            try:
                meta = {k: v[e].item() for k, v in index.items()} or None
            except (IndexError, AttributeError, ValueError):
                raise OwbenchError(f"{file}: the episode_* arrays do not have one entry per episode") from None
            yield file, (ep, meta)
        seen += len(starts)


def _json_attrs(text: Any, file: Path) -> dict[str, Any]:
    try:
        attrs = json.loads(text)
    except (TypeError, ValueError):
        attrs = None
    if not isinstance(attrs, dict):
        raise OwbenchError(f"{file}: its `owbench` attribute is not a JSON object; re-export the dataset")
    return attrs


def _channels_last(observation: np.ndarray, file: Path) -> np.ndarray:
    """V-D4RL stores (N, 3, S, S); some conversions store (N, S, S, 3): both become (N, S, S, 3)."""
    if observation.ndim == 4 and observation.shape[1] == 3 and observation.shape[-1] != 3:
        return observation.transpose(0, 2, 3, 1)
    if observation.ndim == 4 and observation.shape[-1] == 3:
        return observation
    raise OwbenchError(f"{file}: observation has shape {observation.shape}; expected (N, 3, S, S) or (N, S, S, 3) "
                       "RGB frames")


def _require(arrays: dict[str, Any], file: Path, keys: tuple[str, ...]) -> None:
    missing = [k for k in keys if k not in arrays]
    if missing:
        raise OwbenchError(f"{file} lacks {', '.join(missing)} (has {', '.join(sorted(arrays)) or 'nothing'}); "
                           "it is not an exported episode")


def _checked(ep: dict[str, np.ndarray], file: Path, shapes: dict[str, tuple[int, ...]] | None
             ) -> dict[str, np.ndarray]:
    """The episode with its flags filled in (older DreamerV2 files lack them: one episode per file), or an
    error for anything the store cannot hold faithfully: bad shapes, types, lengths or non-finite values."""
    n = len(ep["reward"]) if np.ndim(ep["reward"]) else 0
    if n < 2:
        raise OwbenchError(f"{file} holds an episode of {n} rows; an episode needs a first row and a step")
    for key, value in ep.items():
        if key not in store.STEP_ARRAYS:
            continue
        if value.dtype.kind not in "biuf":
            raise OwbenchError(f"{file}: {key} has dtype {value.dtype}; expected numbers")
        if value.ndim == 0 or len(value) != n:
            raise OwbenchError(f"{file}: {key} has {len(value) if value.ndim else 0} rows but reward has {n}")
        if value.dtype.kind == "f" and not np.isfinite(value).all():
            raise OwbenchError(f"{file}: {key} holds NaN or infinite values; fix the source data")
    image = ep["image"]
    if image.ndim != 4 or image.shape[-1] != 3 or image.shape[1] != image.shape[2] or image.dtype != np.uint8:
        raise OwbenchError(f"{file}: image has shape {image.shape} and dtype {image.dtype}; expected uint8 "
                           "(N, S, S, 3) RGB frames")
    for key, ndim in (("action", 2), ("reward", 1), ("discount", 1), ("state", 2), ("physics", 2)):
        if key in ep and ep[key].ndim != ndim:
            raise OwbenchError(f"{file}: {key} has shape {ep[key].shape}; expected {ndim} axes")
    if shapes is not None:
        for key, shape in shapes.items():
            if key in ep and ep[key].shape[1:] != shape:
                raise OwbenchError(f"{file}: {key} rows have shape {ep[key].shape[1:]} but earlier episodes' "
                                   f"have {shape}; one dataset holds one environment at one image size")
    rows = np.arange(n)
    ep = {**ep, **{k: np.asarray(ep[k], bool) for k in ("is_first", "is_last", "is_terminal") if k in ep}}
    ep.setdefault("is_first", rows == 0)
    ep.setdefault("is_last", rows == n - 1)
    ep.setdefault("is_terminal", ep["is_last"] & (ep["discount"] == 0.0))
    if not (np.array_equal(ep["is_first"], rows == 0) and np.array_equal(ep["is_last"], rows == n - 1)):
        raise OwbenchError(f"{file}: is_first / is_last do not mark exactly the first and last rows of one episode")
    return ep


def import_dataset(path: str | Path, out: str | Path, *, fmt: str | None = None, env_id: str | None = None,
                   quality: str | None = None, overwrite: bool = False) -> store.Dataset:
    """Import an hdf5 or npz export (ours, or foreign data given `env_id` and `quality`) into a store.

    Episodes are committed one by one under the dataset's writer lock; a killed import resumes where it
    stopped when run again with the same source, and the dataset is marked complete only at the end."""
    path = Path(path)
    if not path.exists():
        raise OwbenchError(f"no such file or folder: {path}")
    fmt = fmt or detect_format(path)
    _check_format(fmt)
    loc = store.resolve_location(out)
    store.refuse_foreign(loc, "an import")
    source = _Source(path, fmt)
    if not source.files:
        raise OwbenchError(f"{path} holds no *.{fmt} files")
    origin = {"path": str(path.resolve()), "format": fmt}
    with store.writer_lock(loc, wait=False):
        writer = _resume(loc, origin, overwrite)
        skip = writer.committed_episodes if writer is not None else 0
        episodes = (_read_npz if fmt == "npz" else _read_hdf5)(source, skip)
        shapes = None
        for file, (ep, meta) in episodes:
            if writer is None:
                shapes, writer = _create(loc, source, ep, file, origin, env_id, quality)
            shapes = shapes or {k: writer.group[k].shape[1:] for k in ("image", "action", "state", "physics")}
            ep = _checked(ep, file, {k: v for k, v in shapes.items() if k in ("image", "action")})
            n = len(ep["reward"])
            steps = {k: _fit(ep, k, n, shapes[k], file) if k in shapes else ep[k] for k in store.STEP_ARRAYS}
            meta = meta or {"return": float(np.sum(ep["reward"], dtype=np.float64)), "success": False,
                            "noise_std": 0.0, "seed": -1}
            writer.append_episode(steps, meta)
        if writer is None:
            raise OwbenchError(f"{path} holds no episodes")
        writer.trim()
        writer.set_attrs(complete=bool((source.metadata() or {}).get("complete", True)))
    return store.open_dataset(loc)


def _fit(ep: dict[str, np.ndarray], key: str, n: int, shape: tuple[int, ...], file: Path) -> np.ndarray:
    """A per-row array of the store's row shape; absent extras (`state`, `physics`) are empty rows."""
    if key not in ep:
        return np.zeros((n, *shape))
    if ep[key].shape[1:] != tuple(shape):
        raise OwbenchError(f"{file}: {key} rows have shape {ep[key].shape[1:]} but earlier episodes' have "
                           f"{tuple(shape)}")
    return ep[key]


def _resume(loc: str, origin: dict[str, str], overwrite: bool) -> store.DatasetWriter | None:
    """The writer of an import of the same source to resume, or None to start afresh."""
    state = store.probe(loc)
    if state == "dataset":
        same = store.attributes(loc).get("imported_from") == origin
        if same and not overwrite:
            return store.open_writer(loc)
        if not overwrite:
            raise OwbenchError(f"a dataset already exists at {loc}; pass --overwrite to replace it")
    return None


def _create(loc: str, source: _Source, first: dict[str, np.ndarray], file: Path, origin: dict[str, str],
            env_id: str | None, quality: str | None) -> tuple[dict[str, tuple[int, ...]], store.DatasetWriter]:
    """The store for an import, shaped by its first episode; not complete until the last episode is in."""
    _checked(first, file, None)
    attrs = source.metadata()
    if attrs is None:
        if env_id is None or quality is None:
            raise OwbenchError(f"{source.path} has no owbench metadata; name its task and quality with --env and "
                               "--quality")
        from collectors.envs import spec

        s = spec(env_id)
        attrs = {"env_id": s.id, "suite": s.suite, "quality": quality, "action_repeat": s.action_repeat,
                 "time_limit": s.time_limit, "camera": s.camera, "action_dim": s.action_dim,
                 "image_size": int(first["image"].shape[1]), "complete": True}
    attrs = {k: v for k, v in attrs.items()
             if k not in ("committed_episodes", "committed_steps", "schema_version", "created", "chunk_rows",
                          "tail_crc", "index_crc")}
    attrs.update(imported_from=origin, complete=False)  # the source's value once every episode is in
    shapes = {"image": first["image"].shape[1:], "action": first["action"].shape[1:],
              "state": first["state"].shape[1:] if "state" in first else (0,),
              "physics": first["physics"].shape[1:] if "physics" in first else (0,)}
    return shapes, store.create_dataset(loc, attrs, shapes, overwrite=True)
