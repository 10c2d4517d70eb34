"""Trajectory retrieval over a pool of datasets with Faiss (WPT §3.3, Eq. 5).

Every trajectory of the pool is keyed by the feature e(o_0) of its first observation (and,
optionally, of every k-th frame); a query image is embedded with the same extractor and its
nearest keys under the L2 distance D = ||e(o_on) - e(o_off)||_2 name the trajectories to retrieve.

    extractor = make_extractor("random-proj")                 # or "pixels", "wpt:PATH"
    index = build_retrieval_index(["dmc/walker_walk/random-v1", ...], extractor)
    index.save("pool.index")                                   # one file, replaced atomically
    hits = RetrievalIndex.load("pool.index").query(image, extractor, k=5)   # -> [Hit(dataset, episode, step, distance)]

Index kinds: `flat` (exact), `ivf` (inverted lists, k-means coarse quantiser) and `hnsw` (graph);
`auto` picks flat up to FLAT_MAX vectors and IVF above. `build_index` / `search_brute_force` are
the pieces `benchmark/perf.py` times.
"""
from __future__ import annotations

import hashlib
import io
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from collectors.errors import OwbenchError, unknown
from collectors.store import Dataset, open_dataset

INDEX_FORMAT = 1
INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
ENCODERS = ("pixels", "random-proj", "wpt:PATH")
FLAT_MAX = 200_000  # `auto` stays exact up to this many vectors (a flat search of 200k x 128 is ~10 ms)
HNSW_M = 32  # graph degree of HNSW
EMBED_BATCH = 256  # images per extractor call


# -- feature extractors ----------------------------------------------------------------------
def _pool(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 (N, S, S, 3) -> float32 (N, size, size, 3) in [0, 1] by average pooling (S a multiple of size)."""
    n, s = images.shape[0], images.shape[1]
    if s % size:
        raise OwbenchError(f"images are {s}px, not a multiple of {size}px; use 32- or 64-px datasets for retrieval")
    f = s // size
    return images.reshape(n, size, f, size, f, 3).mean((2, 4), dtype=np.float32) / 255.0


@dataclass(frozen=True)
class PixelExtractor:
    """Raw pixels, average-pooled to `size` x `size` and flattened (a no-learning baseline)."""

    size: int = 16

    @property
    def name(self) -> str:
        return "pixels"

    @property
    def dim(self) -> int:
        return self.size * self.size * 3

    @property
    def hash(self) -> str:
        return f"pixels-v1-{self.size}"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return _pool(images, self.size).reshape(len(images), -1)


@dataclass(frozen=True)
class RandomProjectionExtractor:
    """A fixed Gaussian random projection of pooled pixels (Johnson-Lindenstrauss: distances kept)."""

    dim: int = 128
    size: int = 32  # pixels are pooled to size x size before projecting
    seed: int = 0

    @property
    def name(self) -> str:
        return "random-proj"

    @property
    def hash(self) -> str:
        return f"random-proj-v1-{self.size}-{self.dim}-{self.seed}"

    def projection(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        return (rng.standard_normal((self.size * self.size * 3, self.dim)) / math.sqrt(self.dim)).astype(np.float32)

    def __call__(self, images: np.ndarray) -> np.ndarray:
        flat = _pool(images, self.size).reshape(len(images), -1)
        return flat @ self.projection()


class WorldModelExtractor:
    """The encoder of a pretrained WPT world model: e_t = encoder(o_t) (the paper's choice)."""

    def __init__(self, path: str | Path, device: str = "cpu"):
        from agents.wpt_pretrained import load_pretrained  # lazy: torch only when this extractor is used

        self.path = str(path)
        self.wm = load_pretrained(path, device).wm.eval()
        self.device = device
        self.image_size = self.wm.cfg.image_size
        self.dim = self.wm.encoder.embed_dim
        self.hash = "wpt-" + hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]

    @property
    def name(self) -> str:
        return f"wpt:{self.path}"

    def __call__(self, images: np.ndarray) -> np.ndarray:
        import torch

        if images.shape[1] != self.image_size:
            raise OwbenchError(f"images are {images.shape[1]}px but the world model {self.path} encodes "
                               f"{self.image_size}px; index datasets of that size")
        with torch.no_grad():
            embed = self.wm.encode(torch.as_tensor(images, device=self.device))
        return embed.float().cpu().numpy()


Extractor = Callable[[np.ndarray], np.ndarray]


def make_extractor(spec: str, device: str = "cpu") -> Any:
    """`pixels`, `random-proj` or `wpt:PATH` (world_model.pt saved by `owbench pretrain wpt`, or its --out directory)."""
    if spec == "pixels":
        return PixelExtractor()
    if spec == "random-proj":
        return RandomProjectionExtractor()
    if spec.startswith("wpt:"):
        path = Path(spec[4:]).expanduser()
        if path.is_dir():
            path = path / "world_model.pt"
        if not path.is_file():
            raise OwbenchError(f"no pretrained world model at {path}; create one with `owbench pretrain wpt --pool ...`")
        return WorldModelExtractor(path, device)
    raise unknown("encoder", spec, ENCODERS, "use pixels, random-proj or wpt:PATH")


# -- Faiss indices ---------------------------------------------------------------------------
def ivf_lists(n: int) -> int:
    """Number of inverted lists for n vectors (~sqrt(n), faiss' rule of thumb)."""
    return max(1, min(int(math.sqrt(n)), n // 39))


def build_index(vectors: np.ndarray, kind: str = "auto", nprobe: int | None = None, seed: int = 0) -> Any:
    """A Faiss L2 index over float32 `vectors` (N, D); row i gets id i. `auto` -> flat for up to
    FLAT_MAX vectors, else IVF. IVF searches `nprobe` lists (default nlist/32, at least 8)."""
    import faiss

    if kind not in INDEX_KINDS:
        raise unknown("index kind", kind, INDEX_KINDS)
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, d = vectors.shape
    if n == 0:
        raise OwbenchError("nothing to index: the datasets have no committed episodes")
    if kind == "auto":
        kind = "flat" if n <= FLAT_MAX else "ivf"
    if kind == "flat":
        index = faiss.IndexFlatL2(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, HNSW_M)
        index.hnsw.efSearch = 128
    else:
        nlist = ivf_lists(n)
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(d), d, nlist)
        index.cp.seed = seed
        sample = vectors[np.random.default_rng(seed).permutation(n)[:40 * nlist]]  # k-means on ~40 points per list
        index.train(sample)
        index.nprobe = min(nlist, nprobe or max(8, nlist // 32))
    index.add(vectors)
    return index


def index_kind(index: Any) -> str:
    import faiss

    if isinstance(index, faiss.IndexIVF):
        return "ivf"
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    return "flat"


def search_brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest neighbours with numpy (the reference for recall): (distances^2, ids), each (Q, k)."""
    vectors = np.asarray(vectors, np.float32)
    norms = np.einsum("nd,nd->n", vectors, vectors)
    d2 = norms[None] - 2 * queries @ vectors.T + np.einsum("qd,qd->q", queries, queries)[:, None]
    ids = np.argpartition(d2, min(k, len(vectors) - 1), axis=1)[:, :k]
    order = np.take_along_axis(d2, ids, 1).argsort(1)
    ids = np.take_along_axis(ids, order, 1)
    return np.take_along_axis(d2, ids, 1), ids


def recall_at_k(approx_ids: np.ndarray, exact_ids: np.ndarray) -> float:
    """Fraction of the exact k nearest neighbours the approximate search found."""
    hits = sum(len(set(a) & set(e)) for a, e in zip(approx_ids.tolist(), exact_ids.tolist()))
    return hits / exact_ids.size


def compare_with_brute_force(vectors: np.ndarray, queries: np.ndarray, k: int = 10, kind: str = "auto") -> dict[str, Any]:
    """Build time, query time and recall@k of a Faiss index against numpy brute force on the same
    vectors (what `owbench perf` reports). Times in seconds for all queries together."""
    t0 = time.perf_counter()
    index = build_index(vectors, kind)
    t1 = time.perf_counter()
    _, approx = index.search(np.ascontiguousarray(queries, np.float32), k)
    t2 = time.perf_counter()
    _, exact = search_brute_force(vectors, queries, k)
    t3 = time.perf_counter()
    return {"kind": index_kind(index), "n": len(vectors), "dim": vectors.shape[1], "queries": len(queries), "k": k,
            "build_s": t1 - t0, "query_s": t2 - t1, "brute_force_s": t3 - t2, "recall": recall_at_k(approx, exact)}


# -- the retrieval index over a pool ------------------------------------------------------------
@dataclass(frozen=True)
class Hit:
    """One retrieved trajectory: the dataset, its episode, the step of the matching frame, the L2 distance."""

    dataset: str
    episode: int
    step: int
    distance: float


@dataclass
class RetrievalIndex:
    """A Faiss index whose id i maps to (datasets[dataset[i]], episode[i], step[i])."""

    index: Any
    datasets: list[str]
    dataset: np.ndarray  # (N,) int32 position in `datasets`
    episode: np.ndarray  # (N,) int64 episode number in its dataset
    step: np.ndarray  # (N,) int64 step within the episode
    meta: dict[str, Any]

    @property
    def ntotal(self) -> int:
        return int(self.index.ntotal)

    def location(self, i: int) -> tuple[str, int, int]:
        """Id -> (dataset, episode, step)."""
        return self.datasets[int(self.dataset[i])], int(self.episode[i]), int(self.step[i])

    def search(self, vectors: np.ndarray, k: int) -> list[list[Hit]]:
        """The k nearest distinct trajectories of each query vector (a trajectory keyed by several
        frames counts once, at its closest frame)."""
        if k < 1:
            raise OwbenchError(f"-k {k}: ask for at least one trajectory")
        per_traj = max(1, int(self.meta.get("keys_per_trajectory", 1)))
        fetch = min(self.ntotal, k * per_traj)
        dist, ids = self.index.search(np.ascontiguousarray(vectors, np.float32), fetch)
        results = []
        for row_d, row_i in zip(dist, ids):
            hits, seen = [], set()
            for d, i in zip(row_d.tolist(), row_i.tolist()):
                if i < 0:
                    continue
                name, episode, step = self.location(i)
                if (name, episode) not in seen:
                    seen.add((name, episode))
                    hits.append(Hit(name, episode, step, math.sqrt(max(d, 0.0))))
            results.append(hits[:k])
        return results

    def query(self, images: np.ndarray, extractor: Any, k: int = 5) -> list[list[Hit]]:
        """Nearest trajectories of uint8 query images (Q, S, S, 3) or one image (S, S, 3)."""
        if extractor.hash != self.meta["encoder_hash"]:
            raise OwbenchError(f"the index was built with encoder {self.meta['encoder']!r} ({self.meta['encoder_hash']}); "
                               f"query it with the same --encoder, not {extractor.name!r} ({extractor.hash})")
        images = np.asarray(images, np.uint8)
        images = images[None] if images.ndim == 3 else images
        return self.search(extractor(images), k)

    def save(self, path: str | Path) -> Path:
        """Index, id map and metadata in one .npz file, written to a temporary file and renamed
        into place (readers see the old file or the new one, never half of one)."""
        import faiss

        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                np.savez(f, index=faiss.serialize_index(self.index), dataset=self.dataset, episode=self.episode,
                         step=self.step, meta=np.frombuffer(json.dumps({**self.meta, "datasets": self.datasets})
                                                            .encode(), np.uint8))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "RetrievalIndex":
        import faiss

        path = Path(path).expanduser()
        if not path.is_file():
            raise OwbenchError(f"no retrieval index at {path}; build one with `owbench index build`")
        try:
            with np.load(path) as data:
                meta = json.loads(data["meta"].tobytes())
                index = faiss.deserialize_index(data["index"])
                ids = {k: data[k] for k in ("dataset", "episode", "step")}
        except Exception as exc:  # not an npz, truncated, or missing keys
            raise OwbenchError(f"{path} is not a readable retrieval index ({type(exc).__name__}); "
                               "rebuild it with `owbench index build`") from exc
        if meta.get("format") != INDEX_FORMAT or not index.ntotal == meta.get("count") == len(ids["step"]):
            raise OwbenchError(f"{path} is inconsistent (format {meta.get('format')}, {index.ntotal} vectors, "
                               f"count {meta.get('count')}); rebuild it with `owbench index build`")
        if index_kind(index) == "ivf":
            faiss.extract_index_ivf(index).nprobe = meta["nprobe"]
        datasets = meta.pop("datasets")
        return cls(index, datasets, ids["dataset"], ids["episode"], ids["step"], meta)


def key_steps(length: int, every: int) -> np.ndarray:
    """Steps of an episode that get a key: the first observation, plus every `every`-th frame when > 0."""
    return np.arange(0, length, every) if every > 0 else np.zeros(1, np.int64)


def embed_pool(datasets: Sequence[Dataset], extractor: Extractor, every: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Embed the key frames of every committed episode: (vectors, dataset, episode, step)."""
    vectors, dataset_ids, episodes, steps = [], [], [], []
    for d, ds in enumerate(datasets):
        starts, lengths = ds.episodes["start"], ds.episodes["length"]
        ep = np.concatenate([np.full(len(key_steps(int(n), every)), e) for e, n in enumerate(lengths)]) \
            if len(lengths) else np.zeros(0, np.int64)
        st = np.concatenate([key_steps(int(n), every) for n in lengths]) if len(lengths) else np.zeros(0, np.int64)
        rows = starts[ep] + st
        for i in range(0, len(rows), EMBED_BATCH):
            vectors.append(np.asarray(extractor(ds.take("image", rows[i:i + EMBED_BATCH])),
                                      np.float32))
        dataset_ids.append(np.full(len(rows), d, np.int32))
        episodes.append(ep.astype(np.int64))
        steps.append(st.astype(np.int64))
    if not vectors:
        raise OwbenchError("nothing to index: the datasets have no committed episodes; collect some first")
    return np.concatenate(vectors), np.concatenate(dataset_ids), np.concatenate(episodes), np.concatenate(steps)


def build_retrieval_index(datasets: Sequence[str | Dataset], extractor: Any, every: int = 0, kind: str = "auto",
                          nprobe: int | None = None) -> RetrievalIndex:
    """Embed a pool (dataset ids, paths, URLs or open datasets) and index it."""
    if not datasets:
        raise OwbenchError("no datasets given; pass --datasets ID (repeatable)")
    if every < 0:
        raise OwbenchError(f"--every {every}: use 0 (first observations only) or a positive frame stride")
    opened = [d if isinstance(d, Dataset) else open_dataset(d) for d in datasets]
    vectors, dataset, episode, step = embed_pool(opened, extractor, every)
    index = build_index(vectors, kind, nprobe)
    ivf = index_kind(index) == "ivf"
    meta = {"format": INDEX_FORMAT, "encoder": extractor.name, "encoder_hash": extractor.hash,
            "dim": int(vectors.shape[1]), "count": int(len(vectors)), "kind": index_kind(index),
            "nprobe": int(index.nprobe) if ivf else None, "every": every,
            "keys_per_trajectory": int(np.unique(np.stack([dataset, episode]), axis=1, return_counts=True)[1].max()),
            "image_size": int(opened[0].arrays["image"].shape[1]), "env_ids": [d.env_id for d in opened],
            "created": datetime.now(timezone.utc).isoformat()}
    return RetrievalIndex(index, [d.location for d in opened], dataset, episode, step, meta)


def load_png(path: str | Path, size: int) -> np.ndarray:
    """A PNG (or any image PIL reads) as uint8 (size, size, 3), resized when needed."""
    from PIL import Image

    try:
        image = Image.open(io.BytesIO(Path(path).expanduser().read_bytes())).convert("RGB")
    except (OSError, ValueError) as exc:
        raise OwbenchError(f"cannot read image {path} ({exc}); pass a PNG or JPEG file") from exc
    if image.size != (size, size):
        image = image.resize((size, size), Image.BICUBIC)
    return np.asarray(image, np.uint8)


def first_observation(env_id: str, size: int, seed: int = 0) -> np.ndarray:
    """The first image of an episode of `env_id` at `size` px (a query for the task's trajectories)."""
    from collectors.envs import make

    env = make(env_id, image_size=size)
    try:
        return env.reset(seed=seed)["image"]
    finally:
        env.close()
