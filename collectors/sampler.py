"""Training samplers over owbench datasets: sequence windows, n-step transitions, mixtures.

Memory stays bounded however large the store is: only the images of the sampled windows are
read. Low-dimensional columns (action, reward, discount, flags, state; ~1% of a dataset's bytes)
are held in memory. Image chunks are fetched whole, straight from the store and decoded with
their codec in background threads (decoding releases the GIL), each touched chunk once per
window, with a small byte-bounded LRU cache of decoded chunks. Every decoded chunk, image or
column, is checked against the checksum it was committed with: corrupt data stops training
with an error naming the dataset, never reaches a batch.

Sampling is uniform over valid windows (or over valid transitions), and a mixture picks the
dataset of each window by `weights` first. A window never crosses an episode boundary unless
`crossing=True`; episodes shorter than the window are skipped (never padded), and a dataset
with no window at all is an error naming the fix. Batches are deterministic under `seed`:
batch i draws from its own generator `default_rng([seed, i])`, and prefetched batches are
delivered in order whatever the number of worker threads.

Datasets in a mixture may differ in action and state dimension (multi-embodiment pretraining,
WPT Table 5): those columns are zero-padded to the largest one. Every batch also carries
`dataset` (B,) int64, the index of the dataset each sample came from.
"""
from __future__ import annotations

import functools
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numcodecs
import numpy as np
import zarr
from zarr.codecs import BloscCodec, BytesCodec, ZstdCodec
from zarr.core.buffer import default_buffer_prototype
from zarr.core.sync import sync
from zarr.storage import LocalStore

from collectors.errors import OwbenchError
from collectors.store import Dataset, corrupt, open_dataset

Batch = dict[str, Any]
FLAG_KEYS = ("is_first", "is_last", "is_terminal")
SCALAR_KEYS = ("reward", "discount", *FLAG_KEYS)
_DECODERS = {ZstdCodec: numcodecs.Zstd, BloscCodec: numcodecs.Blosc}


class ChunkReader:
    """Whole decoded chunks of one zarr array, read straight from its store.

    Arrays whose codecs are `bytes` + one zstd or blosc compressor are decoded here with
    numcodecs (no per-call overhead of zarr's indexing pipeline); any other layout (sharding,
    filters) falls back to zarr's own chunk-aligned slicing, so correctness never depends on
    the fast path.
    """

    def __init__(self, array: zarr.Array, check: Callable[[int, np.ndarray], None] | None = None,
                 corrupt: Callable[[str], Exception] | None = None):
        self.array = array
        self.check, self.corrupt = check, corrupt  # checksum test of a decoded chunk; error for undecodable bytes
        self.rows = array.chunks[0]
        self.row_shape = array.shape[1:]
        codecs = getattr(array.metadata, "codecs", ())  # zarr v2 metadata has none: fallback
        fast = (array.metadata.zarr_format == 3 and len(codecs) == 2 and isinstance(codecs[0], BytesCodec)
                and type(codecs[1]) in _DECODERS and tuple(array.chunks[1:]) == tuple(self.row_shape))
        self._decoder = _DECODERS[type(codecs[1])]() if fast else None
        store, path = array.store_path.store, array.store_path.path
        self._local_root = Path(store.root) / path if isinstance(store, LocalStore) else None
        self._store, self._path = store, path

    @property
    def fast_path(self) -> bool:
        return self._decoder is not None

    def chunk(self, index: int) -> np.ndarray:
        """Chunk `index` as an array of shape (rows, *row_shape); rows past the end are zeros."""
        try:
            out = self._decode(index)
        except Exception as exc:  # truncated or garbled bytes
            if self.corrupt is None:
                raise
            raise self.corrupt(f"{self.array.path} chunk {index} cannot be decoded ({type(exc).__name__})") from exc
        if self.check is not None:
            self.check(index, out)
        return out

    def _decode(self, index: int) -> np.ndarray:
        if self._decoder is None:
            start = index * self.rows
            out = np.zeros((self.rows, *self.row_shape), self.array.dtype)
            part = self.array[start:start + self.rows]
            out[:len(part)] = part
            return out
        raw = self._raw(self.array.metadata.encode_chunk_key((index,) + (0,) * len(self.row_shape)))
        if raw is None:  # never written: the fill value
            return np.full((self.rows, *self.row_shape), self.array.fill_value, self.array.dtype)
        flat = np.frombuffer(self._decoder.decode(raw), self.array.dtype)
        if flat.size != self.rows * int(np.prod(self.row_shape)):
            raise ValueError(f"decoded {flat.size} values, expected a whole chunk")
        return flat.reshape(self.rows, *self.row_shape)

    def _raw(self, key: str) -> bytes | None:
        if self._local_root is not None:
            try:
                return (self._local_root / key).read_bytes()
            except FileNotFoundError:
                return None
        buf = sync(self._store.get(f"{self._path}/{key}" if self._path else key, prototype=default_buffer_prototype()))
        return None if buf is None else buf.to_bytes()


class ChunkCache:
    """A thread-safe LRU cache of decoded chunks, bounded in bytes."""

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self._items: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = self.misses = 0

    def get(self, key: tuple[int, int], load: Callable[[], np.ndarray]) -> np.ndarray:
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
                self.hits += 1
                return value
            self.misses += 1
        value = load()  # outside the lock: decodes run in parallel
        if value.nbytes <= self.max_bytes:
            with self._lock:
                if key not in self._items:
                    self._items[key] = value
                    self._bytes += value.nbytes
                while self._bytes > self.max_bytes:
                    _, old = self._items.popitem(last=False)
                    self._bytes -= old.nbytes
        return value


class Source:
    """One dataset as the samplers see it: low-dim columns in memory, images through chunks."""

    def __init__(self, dataset: str | Path | Dataset, index: int, cache: ChunkCache):
        self.dataset = dataset if isinstance(dataset, Dataset) else open_dataset(dataset)
        self.index, self.cache = index, cache
        ds = self.dataset
        self.n_steps = ds.n_steps
        self.starts = ds.episodes["start"].astype(np.int64)
        self.lengths = ds.episodes["length"].astype(np.int64)
        self.columns = {k: ds.read(k) for k in ("action", "state", *SCALAR_KEYS) if k in ds.arrays}
        self.image = ChunkReader(ds.arrays["image"], functools.partial(ds.check_chunk, "image"),
                                 functools.partial(corrupt, ds.location))
        self.image_shape = tuple(ds.arrays["image"].shape[1:])

    @property
    def name(self) -> str:
        return self.dataset.location

    def describe(self) -> str:
        return f"{len(self.lengths)} episodes, longest {int(self.lengths.max()) if len(self.lengths) else 0} rows"

    def dim(self, key: str) -> int:
        return self.columns[key].shape[1] if key in self.columns else 0

    def images(self, start: int, stop: int, out: np.ndarray) -> None:
        """Copy image rows [start, stop) into `out`, decoding each touched chunk once."""
        rows = self.image.rows
        for c in range(start // rows, (stop - 1) // rows + 1):
            chunk = self.cache.get((self.index, c), lambda c=c: self.image.chunk(c))
            lo, hi = max(start, c * rows), min(stop, (c + 1) * rows)
            out[lo - start:hi - start] = chunk[lo - c * rows:hi - c * rows]

    def column(self, key: str, rows: np.ndarray, width: int) -> np.ndarray:
        """Column `key` at `rows` (any shape), zero-padded on its last axis to `width`."""
        values = self.columns[key][rows]
        if values.shape[-1] == width:
            return values
        out = np.zeros((*rows.shape, width), values.dtype)
        out[..., :values.shape[-1]] = values
        return out


class WindowTable:
    """Valid first rows of a dataset, drawn uniformly: row s is valid when s .. s+span-1 is allowed."""

    def __init__(self, source: Source, span: int, crossing: bool, what: str):
        if crossing:
            firsts, counts = np.zeros(1, np.int64), np.array([max(source.n_steps - span + 1, 0)])
        else:
            firsts, counts = source.starts, np.maximum(source.lengths - span + 1, 0)
        self.firsts, self.cumulative = firsts, np.cumsum(counts)
        self.total = int(self.cumulative[-1]) if len(counts) else 0
        if self.total == 0:
            fix = "lower the length" + ("" if crossing else " or allow windows across episodes (crossing=True)")
            raise OwbenchError(f"{source.name} has no {what} of {span} rows in one "
                               f"{'dataset' if crossing else 'episode'} ({source.describe()}); {fix}")

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        k = rng.integers(0, self.total, n)
        segment = np.searchsorted(self.cumulative, k, side="right")
        before = np.concatenate([[0], self.cumulative[:-1]])[segment]
        return self.firsts[segment] + (k - before)


class _Sampler:
    """Shared machinery: sources, mixture weights, seeded per-batch generators, ordered prefetch."""

    def __init__(self, datasets: Sequence[str | Path | Dataset] | str | Path | Dataset, batch_size: int,
                 span: int, seed: int, weights: Sequence[float] | None, prefetch: int, workers: int,
                 crossing: bool, cache_mb: float, as_torch: bool, pin_memory: bool, what: str):
        if isinstance(datasets, (str, Path, Dataset)):
            datasets = [datasets]
        if not datasets:
            raise OwbenchError("no datasets given to the sampler; pass at least one dataset id, path or URL")
        if batch_size < 1 or span < 1:
            raise OwbenchError(f"batch_size and length must be positive (got {batch_size}, {span})")
        self.cache = ChunkCache(int(cache_mb * 2**20))
        self.sources = [Source(d, i, self.cache) for i, d in enumerate(datasets)]
        shapes = {s.image_shape for s in self.sources}
        if len(shapes) > 1:
            raise OwbenchError(f"datasets have different image shapes {sorted(shapes)}; "
                               "collect them at one --image-size (frames re-render from the stored physics)")
        self.image_shape = shapes.pop()
        self.tables = [WindowTable(s, span, crossing, what) for s in self.sources]
        self.weights = self._weights(weights)
        self.action_dim = max(s.dim("action") for s in self.sources)
        self.state_dim = max(s.dim("state") for s in self.sources)
        self.batch_size, self.seed = batch_size, seed
        self.as_torch, self.pin_memory = as_torch, pin_memory
        self._next = 0
        self._prefetch = max(prefetch, 0)
        self._pool = ThreadPoolExecutor(max(workers, 1), thread_name_prefix="owbench-sampler") if prefetch else None
        self._pending: deque[Future] = deque()

    def _weights(self, weights: Sequence[float] | None) -> np.ndarray:
        if weights is None:  # uniform over the union of all valid windows
            w = np.array([t.total for t in self.tables], np.float64)
        else:
            w = np.asarray(weights, np.float64)
            if w.shape != (len(self.sources),) or np.any(w < 0) or w.sum() <= 0:
                raise OwbenchError(f"weights {list(weights)} must be {len(self.sources)} non-negative numbers "
                                   "with a positive sum, one per dataset")
        return w / w.sum()

    def draw(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(dataset index, first row) of each sample in a batch."""
        which = rng.choice(len(self.sources), self.batch_size, p=self.weights)
        firsts = np.empty(self.batch_size, np.int64)
        for d in np.unique(which):
            mask = which == d
            firsts[mask] = self.tables[d].draw(rng, int(mask.sum()))
        return which, firsts

    def make_batch(self, index: int) -> Batch:
        raise NotImplementedError("subclasses build batch `index` from default_rng([seed, index])")

    def _build(self, index: int) -> Batch:
        batch = self.make_batch(index)
        if not self.as_torch:
            return batch
        import torch

        pin = self.pin_memory and torch.cuda.is_available()
        return {k: (torch.from_numpy(v).pin_memory() if pin else torch.from_numpy(v)) for k, v in batch.items()}

    def sample(self) -> Batch:
        """The next batch (numpy arrays, or torch tensors with `as_torch=True`)."""
        if self._pool is None:
            self._next += 1
            return self._build(self._next - 1)
        while len(self._pending) < self._prefetch + 1:
            self._pending.append(self._pool.submit(self._build, self._next))
            self._next += 1
        batch = self._pending.popleft().result()
        self._pending.append(self._pool.submit(self._build, self._next))
        self._next += 1
        return batch

    def __iter__(self) -> Iterator[Batch]:
        while True:
            yield self.sample()

    def close(self) -> None:
        """Stop the prefetch threads (pending batches are dropped)."""
        if self._pool is not None:
            for f in self._pending:
                f.cancel()
            self._pool.shutdown(wait=True)
            self._pool, self._pending = None, deque()

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SequenceSampler(_Sampler):
    """Uniform random windows of `length` rows: image uint8 (B,T,H,W,3), action (B,T,A), reward,
    discount, is_first, is_last, is_terminal (B,T), state (B,T,S), dataset (B,)."""

    def __init__(self, datasets: Sequence[str | Path | Dataset] | str | Path | Dataset, batch_size: int = 16,
                 length: int = 50, seed: int = 0, weights: Sequence[float] | None = None, prefetch: int = 2,
                 workers: int = 2, crossing: bool = False, cache_mb: float = 64, as_torch: bool = False,
                 pin_memory: bool = False):
        super().__init__(datasets, batch_size, length, seed, weights, prefetch, workers, crossing, cache_mb,
                         as_torch, pin_memory, "window")
        self.length = length

    def make_batch(self, index: int) -> Batch:
        which, firsts = self.draw(np.random.default_rng([self.seed, index]))
        B, T = self.batch_size, self.length
        batch: Batch = {"image": np.empty((B, T, *self.image_shape), np.uint8),
                        "action": np.empty((B, T, self.action_dim), np.float32),
                        "state": np.empty((B, T, self.state_dim), np.float32),
                        **{k: np.empty((B, T), np.bool_ if k in FLAG_KEYS else np.float32) for k in SCALAR_KEYS},
                        "dataset": which.astype(np.int64)}
        for b, (d, s) in enumerate(zip(which, firsts)):
            self.sources[d].images(int(s), int(s) + T, batch["image"][b])
        for d in np.unique(which):
            mask, src = which == d, self.sources[d]
            rows = firsts[mask, None] + np.arange(T)
            batch["action"][mask] = src.column("action", rows, self.action_dim)
            batch["state"][mask] = src.column("state", rows, self.state_dim)
            for k in SCALAR_KEYS:
                batch[k][mask] = src.columns[k][rows]
        return batch


class TransitionSampler(_Sampler):
    """Uniform random n-step transitions with frame stacking, for the model-free baselines.

    obs / next_obs uint8 (B,H,W,3*frame_stack), oldest frame first, the episode's first frame
    repeated before its start (as on reset); action (B,A) = a_t, stored in row t+1;
    reward (B,) = sum_k gamma^k r_{t+1+k} over k < n_step; discount (B,) = gamma^n times the
    dataset's discounts (0 after a terminal step); dataset (B,).
    """

    def __init__(self, datasets: Sequence[str | Path | Dataset] | str | Path | Dataset, batch_size: int = 256,
                 frame_stack: int = 3, n_step: int = 1, discount: float = 0.99, seed: int = 0,
                 weights: Sequence[float] | None = None, prefetch: int = 2, workers: int = 2,
                 cache_mb: float = 64, as_torch: bool = False, pin_memory: bool = False):
        if frame_stack < 1 or n_step < 1:
            raise OwbenchError(f"frame_stack and n_step must be >= 1 (got {frame_stack}, {n_step})")
        super().__init__(datasets, batch_size, n_step + 1, seed, weights, prefetch, workers, False, cache_mb,
                         as_torch, pin_memory, "transition")
        self.frame_stack, self.n_step, self.gamma = frame_stack, n_step, discount

    def make_batch(self, index: int) -> Batch:
        which, t = self.draw(np.random.default_rng([self.seed, index]))
        B, k, n = self.batch_size, self.frame_stack, self.n_step
        H, W, C = self.image_shape
        obs = np.empty((B, H, W, C * k), np.uint8)
        next_obs = np.empty_like(obs)
        frames = np.empty((k + n, H, W, C), np.uint8)
        for b, (d, row) in enumerate(zip(which, t)):
            src = self.sources[d]
            episode_start = src.starts[np.searchsorted(src.starts, row, side="right") - 1]
            rows = np.maximum(np.arange(row - k + 1, row + n + 1), episode_start)  # first frame repeated
            lo = int(rows[0])
            src.images(lo, int(row) + n + 1, frames[:int(row) + n + 1 - lo])
            stacked = frames[rows - lo]  # (k+n, H, W, C): o_{t-k+1} .. o_{t+n}
            obs[b] = stacked[:k].transpose(1, 2, 0, 3).reshape(H, W, C * k)
            next_obs[b] = stacked[n:].transpose(1, 2, 0, 3).reshape(H, W, C * k)
        action = np.empty((B, self.action_dim), np.float32)
        reward, discount = np.empty(B, np.float32), np.empty(B, np.float32)
        for d in np.unique(which):
            mask, src = which == d, self.sources[d]
            after = t[mask, None] + 1 + np.arange(n)  # rows t+1 .. t+n
            action[mask] = src.column("action", after[:, 0], self.action_dim)
            d_after = src.columns["discount"][after]
            alive = np.cumprod(np.concatenate([np.ones((len(after), 1), np.float32), d_after[:, :-1]], 1), 1)
            reward[mask] = (self.gamma ** np.arange(n) * alive * src.columns["reward"][after]).sum(1)
            discount[mask] = self.gamma ** n * d_after.prod(1)
        return {"obs": obs, "action": action, "reward": reward, "discount": discount, "next_obs": next_obs,
                "dataset": which.astype(np.int64)}
