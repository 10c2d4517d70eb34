"""The owbench dataset store: one Zarr v3 group per dataset (schema 1, DESIGN.md §4).

Rows are timesteps concatenated across episodes. Crash safety comes from the order of writes:

1. an episode's rows are written to the arrays (growing them if needed),
2. its entry in `episodes/*` and the checksums of the chunks it touched (`manifest/*`),
3. last, the commit record (`committed_episodes`, `committed_steps` in the group attributes),
   one metadata document replaced atomically (zarr's local store writes to a temporary file and
   renames it; object stores replace keys atomically).

Readers trust only the committed prefix; rows or episodes past it are in-flight leftovers that a
resumed writer overwrites. The manifest holds, per array and chunk, a checksum (CRC32C; zlib's
CRC32 in datasets written before, named by the `checksum` attribute) of the chunk's committed rows
as decoded values, and the commit record a running checksum of each episode-index array, so
`verify` and every reader catch flipped bytes and truncated chunks without being fooled by
uncommitted rows that share a chunk with committed ones.
"""
from __future__ import annotations

import asyncio
import fcntl
import functools
import json
import os
import zlib
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import fsspec
import google_crc32c
import numcodecs
import numpy as np
import zarr
import zarr.api.asynchronous
from numcodecs.abc import Codec
from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec
from zarr.codecs.bytes import Endian
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore

from collectors.errors import OwbenchError
from collectors.home import datasets_home

SCHEMA_VERSION = 1
STEP_ARRAYS = ("image", "state", "action", "reward", "discount", "is_first", "is_last", "is_terminal", "physics")
EPISODE_ARRAYS = {"start": "int64", "length": "int64", "return": "float64", "success": "bool",
                  "noise_std": "float32", "seed": "int64"}
DTYPES = {"image": "uint8", "state": "float32", "action": "float32", "reward": "float32", "discount": "float32",
          "is_first": "bool", "is_last": "bool", "is_terminal": "bool", "physics": "float64"}
IMAGE_CHUNK_ROWS = 32  # random 50-step windows touch 2-3 chunks; see docs/performance.md
SCALAR_CHUNK_ROWS = 4096
MANIFEST_CHUNK = 1024
BLOSC_SHUFFLE = {"noshuffle": 0, "shuffle": 1, "bitshuffle": 2}  # zarr's names -> numcodecs' ids


def _compressor() -> ZstdCodec:
    # Plain zstd-2 for every array (docs/performance.md): on pixels it is smaller than blosc-zstd and
    # single-threaded, so the sampler's threads decode chunks in parallel without oversubscribing; level
    # 2 encodes pixels ~1.4x faster than 3 for 3.6% more bytes (level 1 breaks the 1.1x-npz budget) and
    # decodes as fast. On the low-dimensional columns blosc-zstd with byte-shuffle encoded physics
    # (91 float64 per row) ~4x slower, the writer's largest cost after the images, for no smaller store.
    return ZstdCodec(level=2)


def resolve_location(location: str | Path) -> str:
    """A dataset id (`dmc/walker_walk/medium-replay-v2`), a local path or an fsspec URL -> store location."""
    location = str(location)
    if "://" in location:
        check_url(location)
        return location
    path = Path(location).expanduser()
    if path.suffix == ".zarr" or path.exists() or path.is_absolute() or location.startswith("."):
        return str(path)
    return str(datasets_home() / f"{location}.zarr")


def check_url(url: str) -> None:
    """Refuse a URL whose scheme fsspec does not know or whose filesystem package is not installed."""
    protocol = url.split("://", 1)[0]
    try:
        fsspec.get_filesystem_class(protocol)
    except ImportError as exc:
        raise OwbenchError(f"{url}: the {protocol}:// filesystem needs a package that is not installed "
                           f"({exc}); install it, e.g. `pip install owbench[s3]` for s3://") from exc
    except ValueError as exc:
        raise OwbenchError(f"{url}: unknown URL scheme {protocol!r}; use a local path or an fsspec URL "
                           "(s3://, gs://, memory://, ...)") from exc


CHECKSUM = "crc32c"  # of new datasets (hardware CRC32C, ~6x cheaper than zlib's CRC32, which older ones use)


def _crc(values: np.ndarray, algorithm: str = CHECKSUM, start: int = 0) -> int:
    """The checksum of `values`' bytes, continued from `start` (the checksum of the bytes before them)."""
    data = np.ascontiguousarray(values).view(np.uint8).ravel()
    return google_crc32c.extend(start, data) if algorithm == "crc32c" else zlib.crc32(data, start)


def _open_group(location: str, mode: str) -> zarr.Group:
    try:
        return zarr.open_group(location, mode=mode, zarr_format=3)
    except FileNotFoundError as exc:
        raise OwbenchError(f"no dataset at {location}; create it with `owbench collect` "
                           "or list datasets with `owbench datasets list`") from exc
    except Exception as exc:  # unreadable metadata: not a zarr group or damaged
        raise OwbenchError(f"{location} is not a readable owbench dataset ({type(exc).__name__}: {exc}); "
                           "check the path or re-create it with `owbench collect --overwrite`") from exc


@dataclass
class Dataset:
    """Read access to the committed prefix of a dataset. Every read checks the checksums of the chunks
    it decodes (and opening checks the episode index's), so no reader trains on or exports corrupt data."""

    location: str
    group: zarr.Group
    check_index: bool = True
    attrs: dict[str, Any] = field(init=False)

    def __post_init__(self) -> None:
        self.attrs = dict(self.group.attrs)
        self.checksum = self.attrs.get("checksum", "crc32")
        if self.attrs.get("schema_version") != SCHEMA_VERSION:
            raise OwbenchError(f"{self.location} is not an owbench schema-{SCHEMA_VERSION} dataset "
                               f"(schema_version={self.attrs.get('schema_version')!r}); check the path")
        if not {"committed_steps", "committed_episodes"} <= self.attrs.keys():
            raise OwbenchError(f"{self.location} has no commit record; resume its collection with `owbench collect`")
        missing = [name for name in (*STEP_ARRAYS, *(f"episodes/{k}" for k in EPISODE_ARRAYS))
                   if name not in self.group]
        if missing:
            raise OwbenchError(f"{self.location} lacks the arrays {', '.join(missing)}; run "
                               f"`owbench datasets verify {self.location}` and re-create the dataset")
        self.arrays = {name: self.group[name] for name in STEP_ARRAYS}
        n = self.n_episodes
        try:
            self.episodes = {name: self.group[f"episodes/{name}"][:n] for name in EPISODE_ARRAYS}
        except Exception as exc:  # undecodable chunk of the episode index
            raise corrupt(self.location, f"the episode index cannot be decoded ({type(exc).__name__})") from exc
        self._manifests: dict[str, np.ndarray] = {}
        self._verified: set[tuple[str, int]] = set()  # (array, chunk) whose checksum matched
        if self.check_index:
            bad = self.index_problems()
            if bad:
                raise corrupt(self.location, f"the episode index ({', '.join(bad)}) fails its checksum")

    @property
    def n_steps(self) -> int:
        return int(self.attrs["committed_steps"])

    @property
    def n_episodes(self) -> int:
        return int(self.attrs["committed_episodes"])

    @property
    def env_id(self) -> str:
        return self.attrs["env_id"]

    def index_problems(self) -> list[str]:
        """The episode-index arrays whose committed entries differ from the commit record's checksums
        (datasets written before the index was checksummed have none to compare)."""
        want = self.attrs.get("index_crc", {})
        return [f"episodes/{name}" for name in EPISODE_ARRAYS
                if name in want and _crc(self.episodes[name], self.checksum) != want[name]]

    def chunk_crc(self, name: str, chunk: int) -> tuple[int, int]:
        """(committed rows in chunk `chunk` of array `name`, the checksum they were committed with)."""
        rows, n = self.arrays[name].chunks[0], self.n_steps
        count = min(rows, n - chunk * rows)
        tail = self.attrs.get("tail_crc", {})
        if chunk == (n - 1) // rows and n % rows and name in tail:
            return count, int(tail[name])
        if name not in self._manifests:
            self._manifests[name] = self.group[f"manifest/{name}"][:-(-n // rows)]
        manifest = self._manifests[name]
        if chunk >= len(manifest):
            raise corrupt(self.location, f"manifest/{name} is shorter than the committed rows")
        return count, int(manifest[chunk])

    def check_chunk(self, name: str, chunk: int, values: np.ndarray) -> None:
        """Raise if the committed rows of a decoded chunk (`values`, from the chunk's first row) are corrupt."""
        count, want = self.chunk_crc(name, chunk)
        if _crc(values[:count], self.checksum) != want:
            raise corrupt(self.location, f"{name} chunk {chunk} fails its checksum")
        self._verified.add((name, chunk))

    def read(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Rows [start, stop) of one array, never past the committed prefix; chunks not yet checked are read
        whole and checked against the manifest."""
        stop = self.n_steps if stop is None else min(stop, self.n_steps)
        if stop <= start:
            return self.arrays[name][start:start]
        arr, rows = self.arrays[name], self.arrays[name].chunks[0]
        chunks = range(start // rows, (stop - 1) // rows + 1)
        todo = [c for c in chunks if (name, c) not in self._verified]
        lo, hi = (chunks[0] * rows, min((chunks[-1] + 1) * rows, self.n_steps)) if todo else (start, stop)
        try:
            values = arr[lo:hi]
        except Exception as exc:  # undecodable chunk: truncated or garbled bytes
            raise corrupt(self.location, f"{name} rows {lo}-{hi} cannot be decoded ({type(exc).__name__})") from exc
        for c in todo:
            self.check_chunk(name, c, values[c * rows - lo:(c + 1) * rows - lo])
        return values[start - lo:stop - lo]

    def take(self, name: str, rows: np.ndarray) -> np.ndarray:
        """Committed rows at any indices, each touched chunk read (and checked) once."""
        arr, per = self.arrays[name], self.arrays[name].chunks[0]
        rows = np.asarray(rows, np.int64)
        if len(rows) and (rows.min() < 0 or rows.max() >= self.n_steps):
            raise IndexError(f"rows outside the committed {self.n_steps} rows of {self.location}")
        out = np.empty((len(rows), *arr.shape[1:]), arr.dtype)
        chunk_of = rows // per
        for c in np.unique(chunk_of):
            mask = chunk_of == c
            out[mask] = self.read(name, int(c) * per, (int(c) + 1) * per)[rows[mask] - int(c) * per]
        return out

    def episode(self, index: int, keys: tuple[str, ...] = STEP_ARRAYS) -> dict[str, np.ndarray]:
        """All rows of one committed episode."""
        if not 0 <= index < self.n_episodes:
            raise OwbenchError(f"episode {index} out of range: {self.location} has {self.n_episodes} episodes")
        start = int(self.episodes["start"][index])
        stop = start + int(self.episodes["length"][index])
        return {k: self.read(k, start, stop) for k in keys if k in self.arrays}


def corrupt(location: str, what: str) -> OwbenchError:
    """The error every reader raises on data that fails its checksum."""
    return OwbenchError(f"{location} is corrupt: {what}; run `owbench datasets verify {location}` for the full "
                        "report, then re-create or re-import the dataset")


def return_stats(ds: Dataset) -> dict[str, float]:
    """Episode-return statistics of the committed episodes (and the success rate)."""
    returns, lengths = ds.episodes["return"], ds.episodes["length"]
    if not len(returns):
        return {"episodes": 0}
    return {"episodes": len(returns), "return mean": float(returns.mean()), "return std": float(returns.std()),
            "return min": float(returns.min()), "return max": float(returns.max()),
            "success rate": float(ds.episodes["success"].mean()), "mean length": float(lengths.mean())}


def filmstrip(ds: Dataset, episode: int, frames: int = 8) -> np.ndarray:
    """`frames` evenly spaced frames of one episode side by side, uint8 (S, frames * S, 3)."""
    images = ds.episode(episode, ("image",))["image"]
    picks = np.linspace(0, len(images) - 1, min(frames, len(images))).round().astype(int)
    return np.concatenate(list(images[picks]), axis=1)


@dataclass(frozen=True)
class LocalDataset:
    id: str
    location: str
    quality: str
    episodes: int
    steps: int
    size_bytes: int
    complete: bool


def list_local() -> list[LocalDataset]:
    """Datasets (schema 1) under `$OWBENCH_HOME/datasets`, sorted by id."""
    root = datasets_home()
    out = []
    for meta in sorted(root.glob("**/*.zarr/zarr.json")):
        path = meta.parent
        try:
            attrs = dict(zarr.open_group(str(path), mode="r", zarr_format=3).attrs)
        except Exception:  # damaged: `owbench datasets verify` reports details
            attrs = {}
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        episodes = int(attrs.get("committed_episodes", 0))
        steps = int(attrs.get("committed_steps", 0)) - episodes  # transitions: rows minus first rows
        out.append(LocalDataset(str(path.relative_to(root)).removesuffix(".zarr"), str(path),
                                attrs.get("quality", "?"), episodes, steps, size, bool(attrs.get("complete", False))))
    return out


def open_dataset(location: str | Path, check_index: bool = True) -> Dataset:
    """Open a dataset by id, path or URL for reading."""
    loc = resolve_location(location)
    if "://" not in loc and not Path(loc).exists():
        raise OwbenchError(f"no dataset at {loc}; create it with `owbench collect` "
                           "or list them with `owbench datasets list`")
    return Dataset(loc, _open_group(loc, "r"), check_index)


def exists(location: str | Path) -> bool:
    loc = resolve_location(location)
    if "://" not in loc:
        return (Path(loc) / "zarr.json").exists()
    try:
        zarr.open_group(loc, mode="r", zarr_format=3)
        return True
    except Exception:
        return False


# what an owbench dataset holds: only these entries are ever deleted (to replace or re-create a dataset)
OWNED_ENTRIES = ("zarr.json", *STEP_ARRAYS, "manifest", "episodes")


def probe(location: str) -> str:
    """What is at a store location: "absent", "foreign" (something owbench did not write), "unfinished" (an
    owbench dataset killed before its first commit record) or "dataset"."""
    fs, path = fsspec.core.url_to_fs(location)
    try:
        if not fs.exists(path):
            return "absent"
        if not fs.isdir(path) or not fs.exists(f"{path}/zarr.json"):
            return "foreign"
        doc = json.loads(fs.cat_file(f"{path}/zarr.json"))
    except (OSError, ValueError):
        return "foreign"
    attrs = doc.get("attributes", {}) if isinstance(doc, dict) else {}
    if not isinstance(attrs, dict) or attrs.get("schema_version") != SCHEMA_VERSION:
        return "foreign"
    return "dataset" if {"committed_steps", "committed_episodes"} <= attrs.keys() else "unfinished"


def attributes(location: str) -> dict[str, Any]:
    """The group attributes of an owbench store (complete or not)."""
    return dict(_open_group(location, "r").attrs)


def refuse_foreign(location: str, what: str = "a dataset") -> None:
    """Raise unless `location` is absent or an owbench dataset: owbench never writes over other files."""
    if probe(location) == "foreign":
        raise OwbenchError(f"{location} exists and is not an owbench dataset; owbench will not write {what} "
                           "over it (not even with --overwrite): choose another --out")


def remove_dataset(location: str) -> None:
    """Delete an owbench dataset's own entries (a folder it sits in keeps every other file)."""
    fs, path = fsspec.core.url_to_fs(location)
    for name in OWNED_ENTRIES:
        if fs.exists(f"{path}/{name}"):
            fs.rm(f"{path}/{name}", recursive=True)


@contextmanager
def writer_lock(location: str, wait: bool = True) -> Iterator[None]:
    """One writer per local dataset (`<location>.lock`): with `wait` a second writer waits, then resumes or
    finds the dataset complete; without, it is refused. fsspec URLs are not locked."""
    if "://" in location:
        yield
        return
    lock = Path(f"{location}.lock")
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a")
    except OSError as exc:
        raise OwbenchError(f"cannot write beside {location} ({exc.strerror}); choose another --out") from exc
    with f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            raise OwbenchError(f"{location} is being written by another owbench process (lock {lock}); "
                               "wait for it to finish or choose another --out") from None
        yield


class _ChunkAppender:
    """Writes rows of one array as whole encoded chunks, straight to the store, never reading back.

    The rows of the array's last written chunk stay in memory, so a write that starts inside that
    chunk re-encodes it from its first row (the rows past the end are the fill value, as zarr pads an
    edge chunk). Chunks are encoded with the array's own codecs (bytes + one compressor) and stored
    under the array's own chunk keys, so plain zarr and the sampler's `ChunkReader` read them as if
    zarr had written them. Each chunk is replaced atomically (a local chunk is written to a temporary
    file and renamed over the old one; other stores get one `set`, and object stores replace keys
    whole): a kill during the rewrite of a chunk that holds committed rows leaves the old chunk or the
    new one, never a mix.
    """

    def __init__(self, array: zarr.Array, length: int):
        self.array = array
        self.rows = array.chunks[0]
        self.encoder = _chunk_encoder(array)
        store, path = array.store_path.store, array.store_path.path
        self._local_root = Path(store.root) / path if isinstance(store, LocalStore) else None
        self._folders: set[str] = set()  # chunk folders known to exist
        # first row of the last chunk holding rows, and that chunk's rows [start, length) (read once)
        self.start = (max(length, 1) - 1) // self.rows * self.rows
        self.tail = array[self.start:length] if length else np.zeros((0, *array.shape[1:]), array.dtype)

    def plan(self, lo: int, values: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The chunks that rows [lo, lo + len(values)) touch: (chunk index, its rows from the chunk's start)."""
        assert self.start <= lo <= self.start + len(self.tail), f"{self.array.path}: write at {lo} leaves a gap"
        hi, rows = lo + len(values), self.rows
        pieces = []
        for c in range(lo // rows, (hi - 1) // rows + 1):
            c0, c1 = c * rows, min((c + 1) * rows, hi)
            if c0 < lo:  # the kept chunk: its rows before lo, then the new ones
                piece = np.concatenate([self.tail[c0 - self.start:lo - self.start], values[:c1 - lo]])
            else:
                piece = values[c0 - lo:c1 - lo]
            pieces.append((c, piece))
        return pieces

    def keep(self, pieces: list[tuple[int, np.ndarray]]) -> None:
        """Remember the last written chunk once its rows are committed."""
        c, piece = pieces[-1]
        self.start, self.tail = c * self.rows, piece.copy()

    def write(self, c: int, piece: np.ndarray) -> None:
        """Encode chunk `c` from its rows and store it (atomically, see above)."""
        key = self.array.metadata.encode_chunk_key((c,) + (0,) * (self.array.ndim - 1))
        data = self._encode(piece)
        if self._local_root is None:
            sync((self.array.store_path / key).set(default_buffer_prototype().buffer.from_bytes(data)))
            return
        path = f"{self._local_root}/{key}"
        folder = os.path.dirname(path)
        if folder not in self._folders:
            os.makedirs(folder, exist_ok=True)
            self._folders.add(folder)
        with open(f"{path}.partial", "wb") as f:
            f.write(data)
        os.replace(f"{path}.partial", path)  # atomic: a kill leaves the old chunk or the new one

    def _encode(self, piece: np.ndarray) -> bytes:
        if len(piece) < self.rows:  # a partly filled chunk is stored whole, padded with the fill value
            full = np.full((self.rows, *piece.shape[1:]), self.array.fill_value, piece.dtype)
            full[:len(piece)] = piece
            piece = full
        return self.encoder.encode(np.ascontiguousarray(piece, piece.dtype.newbyteorder("<")))


def _chunk_encoder(array: zarr.Array) -> Codec:
    """numcodecs' encoder for an array stored as bytes (little-endian) + one zstd or blosc compressor."""
    codecs = array.metadata.codecs
    if len(codecs) == 2 and isinstance(codecs[0], BytesCodec) and codecs[0].endian in (None, Endian.little):
        compressor = codecs[1]
        if isinstance(compressor, ZstdCodec):
            return numcodecs.Zstd(level=compressor.level, checksum=compressor.checksum)
        if isinstance(compressor, BloscCodec):
            return numcodecs.Blosc(cname=compressor.cname.value, clevel=compressor.clevel,
                                   shuffle=BLOSC_SHUFFLE[compressor.shuffle.value],
                                   blocksize=compressor.blocksize, typesize=compressor.typesize)
    raise OwbenchError(f"{array.path} is stored with codecs {[type(c).__name__ for c in codecs]}, which this "
                       "writer cannot append to; re-create the dataset with `owbench collect --overwrite`")


class DatasetWriter:
    """Appends whole episodes; each append ends with an atomic commit.

    An episode's chunks (data, episode index, manifest) are encoded and stored by a thread per core
    (the codecs release the GIL); only when all of them are stored is the commit record written, in
    one metadata document. Every write covers whole chunks built from rows kept in memory
    (`_ChunkAppender`), and chunk checksums come from the same rows, so nothing is read back.
    """

    def __init__(self, location: str, group: zarr.Group):
        self.location = location
        self.group = group
        attrs = dict(group.attrs)
        self.checksum = attrs.get("checksum", "crc32")
        self.committed_episodes = int(attrs["committed_episodes"])
        self.committed_steps = int(attrs["committed_steps"])
        nodes = dict(group.members(max_depth=None))  # every array's metadata, read concurrently
        self._arrays = {name: _ChunkAppender(nodes[name], self.committed_steps) for name in STEP_ARRAYS}
        self._manifests = {name: _ChunkAppender(nodes[f"manifest/{name}"], self._committed_chunks(name))
                           for name in STEP_ARRAYS}
        self._index = {name: _ChunkAppender(nodes[f"episodes/{name}"], self.committed_episodes)
                       for name in EPISODE_ARRAYS}
        # running CRC32 of each episode-index array's committed entries (older datasets: computed once here)
        self.index_crc = dict(attrs.get("index_crc") or {
            name: _crc(nodes[f"episodes/{name}"][:self.committed_episodes], self.checksum)
            for name in EPISODE_ARRAYS})

    @property
    def attrs(self) -> dict[str, Any]:
        return dict(self.group.attrs)

    def append_episode(self, steps: dict[str, np.ndarray], meta: dict[str, Any]) -> None:
        """Write one episode (all STEP_ARRAYS, same length T) and commit it.

        `meta` holds the per-episode index fields: return, success, noise_std, seed.
        """
        length = len(steps["reward"])
        missing = [k for k in STEP_ARRAYS if k not in steps]
        if missing:
            raise ValueError(f"episode is missing arrays {missing}")
        start, stop = self.committed_steps, self.committed_steps + length
        plans, tail_crc = [], {}  # (appender, rows, pieces): 1. data, 2. episode index and checksums
        for name in STEP_ARRAYS:
            values = np.ascontiguousarray(steps[name], dtype=DTYPES[name])
            data = self._arrays[name]
            want = (length, *data.array.shape[1:])
            assert values.shape == want, f"{name}: got {values.shape}, want {want}"
            pieces = data.plan(start, values)
            crcs = np.asarray([_crc(piece, self.checksum) for _, piece in pieces], np.uint32)  # committed rows of each chunk
            tail_crc[name] = int(crcs[-1])
            plans += [(data, stop, pieces), self._plan(self._manifests[name], pieces[0][0], crcs)]
        e = self.committed_episodes
        index = {"start": start, "length": length, "return": meta.get("return", 0.0),
                 "success": meta.get("success", False), "noise_std": meta.get("noise_std", 0.0),
                 "seed": meta.get("seed", -1)}
        entries = {name: np.asarray([value], EPISODE_ARRAYS[name]) for name, value in index.items()}
        plans += [self._plan(self._index[name], e, entry) for name, entry in entries.items()]
        index_crc = {name: _crc(entry, self.checksum, self.index_crc[name]) for name, entry in entries.items()}
        for appender, rows, _ in plans:
            _grow(appender.array, rows)
        pool = _chunk_pool()
        _wait_all([pool.submit(appender.write, c, piece) for appender, _, pieces in plans for c, piece in pieces])
        self.committed_episodes += 1  # 3. commit record, last and atomic
        self.committed_steps = stop
        # The last chunk's checksum also goes into the commit record: an in-flight append rewrites that
        # chunk's manifest entry before its own commit, and verify must not mistake that for corruption.
        self.group.update_attributes({"committed_episodes": self.committed_episodes, "committed_steps": stop,
                                      "tail_crc": tail_crc, "index_crc": index_crc,
                                      "updated": datetime.now(timezone.utc).isoformat()})
        self.index_crc = index_crc
        for appender, _, pieces in plans:
            appender.keep(pieces)

    def trim(self) -> None:
        """Shrink every array to its committed rows (they grow ahead by doubling while appending), so plain
        zarr readers see exactly the committed dataset. Only chunks past the commit point are dropped."""
        lengths = [(appender, self.committed_steps) for appender in self._arrays.values()]
        lengths += [(self._manifests[name], self._committed_chunks(name)) for name in STEP_ARRAYS]
        lengths += [(appender, self.committed_episodes) for appender in self._index.values()]
        for appender, rows in lengths:
            if appender.array.shape[0] != rows:
                appender.array.resize((rows, *appender.array.shape[1:]))

    def _committed_chunks(self, name: str) -> int:
        """How many chunks of array `name` hold committed rows (the length of its manifest)."""
        return -(-self.committed_steps // self._arrays[name].rows)

    @staticmethod
    def _plan(appender: _ChunkAppender, lo: int, values: np.ndarray) -> tuple:
        return appender, lo + len(values), appender.plan(lo, values)

    def set_attrs(self, **attrs: Any) -> None:
        """Add descriptive attributes (e.g. the behaviour policy's eval return once known)."""
        reserved = {"committed_episodes", "committed_steps", "schema_version", "tail_crc", "index_crc",
                    "checksum"} & attrs.keys()
        if reserved:
            raise ValueError(f"{sorted(reserved)} are managed by the writer")
        self.group.update_attributes(attrs)


@functools.cache
def _chunk_pool() -> ThreadPoolExecutor:
    """The threads that encode and store chunks, one per core (a forked child makes its own)."""
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="owbench-store")


os.register_at_fork(after_in_child=_chunk_pool.cache_clear)


def _wait_all(futures: list[Future]) -> None:
    """Wait for every write, then raise the first failure: no write of a failed append outlives it."""
    wait(futures)
    for future in futures:
        future.result()


def _grow(arr: zarr.Array, rows: int) -> None:
    """Make room for `rows` rows, doubling (in whole chunks) so that metadata rewrites stay rare."""
    if arr.shape[0] < rows:
        chunk = arr.chunks[0]
        arr.resize((-(-max(rows, 2 * arr.shape[0]) // chunk) * chunk, *arr.shape[1:]))


def create_dataset(location: str | Path, attrs: dict[str, Any], shapes: dict[str, tuple[int, ...]],
                   overwrite: bool = False, image_chunk_rows: int = IMAGE_CHUNK_ROWS) -> DatasetWriter:
    """Create an empty dataset. `shapes` gives per-row shapes of image, state, action and physics.

    Writes only where nothing is, over an owbench dataset killed before its first commit record, or with
    `overwrite` over an owbench dataset; anything else at `location` is refused and left untouched."""
    loc = resolve_location(location)
    state = probe(loc)
    refuse_foreign(loc)
    if state == "dataset" and not overwrite:
        raise OwbenchError(f"a dataset already exists at {loc}; pass --overwrite to replace it")
    if state != "absent":
        remove_dataset(loc)
    if "://" not in loc:
        Path(loc).parent.mkdir(parents=True, exist_ok=True)
    row_shapes = {"reward": (), "discount": (), "is_first": (), "is_last": (), "is_terminal": (), **shapes}
    arrays = {}  # path -> (rows per chunk, row shape, dtype); arrays start one chunk long and grow by doubling
    for name in STEP_ARRAYS:
        rows = image_chunk_rows if name == "image" else SCALAR_CHUNK_ROWS
        arrays[name] = (rows, tuple(row_shapes[name]), DTYPES[name])
        arrays[f"manifest/{name}"] = (MANIFEST_CHUNK, (), "uint32")
    arrays.update({f"episodes/{name}": (MANIFEST_CHUNK, (), dtype) for name, dtype in EPISODE_ARRAYS.items()})
    attrs = {**attrs, "schema_version": SCHEMA_VERSION, "checksum": CHECKSUM,
             "created": datetime.now(timezone.utc).isoformat(),
             "chunk_rows": {"image": image_chunk_rows, "other": SCALAR_CHUNK_ROWS}}
    group = zarr.Group(sync(_create_group(loc, arrays, attrs)))
    return DatasetWriter(loc, group)


async def _create_group(location: str, arrays: dict[str, tuple[int, tuple[int, ...], str]],
                        attrs: dict[str, Any]) -> zarr.AsyncGroup:
    """A new group with its attributes (marking it as owbench's), its arrays (created concurrently), then the
    empty commit record: a kill before that leaves an "unfinished" store that the next writer re-creates."""
    attrs = {k: v for k, v in attrs.items() if k not in ("committed_episodes", "committed_steps", "index_crc")}
    group = await zarr.api.asynchronous.open_group(location, mode="a", zarr_format=3, attributes=attrs)
    await asyncio.gather(*(group.create_array(path, shape=(rows, *row), chunks=(rows, *row), dtype=dtype,
                                              compressors=[_compressor()], fill_value=0)
                           for path, (rows, row, dtype) in arrays.items()))
    await group.update_attributes({"committed_episodes": 0, "committed_steps": 0,
                                   "index_crc": {name: 0 for name in EPISODE_ARRAYS}})
    return group


def open_writer(location: str | Path) -> DatasetWriter:
    """Reopen an existing dataset to append after its committed prefix (resume)."""
    loc = resolve_location(location)
    group = _open_group(loc, "r+")
    if not {"committed_steps", "committed_episodes"} <= group.attrs.keys():
        raise OwbenchError(f"{loc} has no commit record; re-create it with `owbench collect --overwrite`")
    return DatasetWriter(loc, group)


@dataclass(frozen=True)
class VerifyProblem:
    array: str
    chunk: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.array}" + (f" chunk {self.chunk}" if self.chunk is not None else "")
        return f"{where}: {self.message}"


def verify(location: str | Path) -> list[VerifyProblem]:
    """Check shapes, dtypes, the episode index and every committed chunk's checksum.

    Returns the problems found (empty when the dataset is sound); raises if `location` holds no owbench dataset.
    """
    loc = resolve_location(location)
    state = probe(loc)
    if state == "absent":
        raise OwbenchError(f"no dataset at {loc}; list datasets with `owbench datasets list`")
    if state == "foreign":
        raise OwbenchError(f"{loc} is not an owbench dataset (no owbench schema-{SCHEMA_VERSION} attributes), so "
                           "there is nothing to verify; check the path")
    if state == "unfinished":
        return [VerifyProblem("commit record", None, "missing: the collection was stopped before its first "
                                                     "episode; resume it with `owbench collect`")]
    ds = open_dataset(loc, check_index=False)  # lacking arrays: not a dataset to check, an error
    problems = [VerifyProblem(name, None, "checksum mismatch") for name in ds.index_problems()]
    n, e = ds.n_steps, ds.n_episodes
    for name in STEP_ARRAYS:
        arr = ds.arrays[name]
        if str(arr.dtype) != DTYPES[name]:
            problems.append(VerifyProblem(name, None, f"dtype {arr.dtype}, expected {DTYPES[name]}"))
        if arr.shape[0] < n:
            problems.append(VerifyProblem(name, None, f"{arr.shape[0]} rows but {n} committed"))
            continue
        rows = arr.chunks[0]
        for c in range(-(-n // rows)):
            try:
                count, want = ds.chunk_crc(name, c)
            except OwbenchError:
                problems.append(VerifyProblem(name, None, "manifest shorter than the committed rows"))
                break
            try:
                values = arr[c * rows:c * rows + count]
            except Exception as exc:  # undecodable chunk: truncated or garbled bytes
                problems.append(VerifyProblem(name, c, f"unreadable ({type(exc).__name__}: {exc})"))
                continue
            if _crc(values, ds.checksum) != want:
                problems.append(VerifyProblem(name, c, "checksum mismatch"))
    starts, lengths = ds.episodes["start"], ds.episodes["length"]
    if e and (starts[0] != 0 or np.any(starts[1:] != starts[:-1] + lengths[:-1]) or starts[-1] + lengths[-1] != n):
        problems.append(VerifyProblem("episodes", None, "start/length do not tile the committed rows"))
    elif e and not problems:
        first, last = ds.read("is_first"), ds.read("is_last")
        if not (first[starts].all() and last[starts + lengths - 1].all() and first.sum() == e and last.sum() == e):
            problems.append(VerifyProblem("episodes", None, "is_first/is_last disagree with the episode index"))
    return problems
