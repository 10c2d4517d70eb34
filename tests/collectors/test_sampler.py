"""Samplers: windows inside episodes, determinism, mixtures, n-step transitions, bounded reads."""
from __future__ import annotations

import numpy as np
import pytest
import zarr
from zarr.codecs import GzipCodec, ZstdCodec

from collectors import store
from collectors.errors import OwbenchError
from collectors.sampler import ChunkReader, SequenceSampler, TransitionSampler

SIZE = 8


def make_dataset(location, lengths, action_dim=2, tag=0, terminal_last=False, image_chunk_rows=4):
    """Rows whose image says (row % 256, row // 256, tag) and whose reward is the row number."""
    w = store.create_dataset(location, {"env_id": "walker_walk", "quality": "random"},
                             {"image": (SIZE, SIZE, 3), "state": (3,), "action": (action_dim,), "physics": (2,)},
                             image_chunk_rows=image_chunk_rows)
    row = 0
    for e, n in enumerate(lengths):
        rows = np.arange(row, row + n)
        image = np.zeros((n, SIZE, SIZE, 3), np.uint8)
        image[..., 0], image[..., 1], image[..., 2] = (rows % 256)[:, None, None], (rows // 256)[:, None, None], tag
        flags = np.zeros(n, bool)
        w.append_episode({"image": image, "state": np.repeat(rows[:, None], 3, 1).astype(np.float32),
                          "action": np.repeat(rows[:, None], action_dim, 1).astype(np.float32),
                          "reward": rows.astype(np.float32),
                          "discount": np.r_[np.ones(n - 1), 0.0 if terminal_last else 1.0].astype(np.float32),
                          "is_first": np.r_[True, flags[1:]], "is_last": np.r_[flags[1:], True],
                          "is_terminal": np.r_[flags[1:], terminal_last], "physics": np.zeros((n, 2))},
                         {"return": float(rows.sum()), "seed": e})
        row += n
    return str(location)


def image_rows(images):
    return images[..., 0, 0, 0].astype(np.int64) + 256 * images[..., 0, 0, 1].astype(np.int64)


def test_sequence_batch_shapes_and_windows_stay_in_one_episode(tmp_path):
    path = make_dataset(tmp_path / "a.zarr", [30, 12, 25, 6])
    with SequenceSampler([path], batch_size=32, length=10, seed=1) as sampler:
        batch = sampler.sample()
    assert batch["image"].shape == (32, 10, SIZE, SIZE, 3) and batch["image"].dtype == np.uint8
    assert batch["action"].shape == (32, 10, 2) and batch["state"].shape == (32, 10, 3)
    for k in ("reward", "discount"):
        assert batch[k].shape == (32, 10) and batch[k].dtype == np.float32
    for k in ("is_first", "is_last", "is_terminal"):
        assert batch[k].shape == (32, 10) and batch[k].dtype == np.bool_
    rows = image_rows(batch["image"])
    assert np.all(np.diff(rows, axis=1) == 1)  # consecutive rows
    assert np.array_equal(rows, batch["reward"].astype(np.int64))  # images and columns agree
    assert np.array_equal(rows, batch["action"][..., 0].astype(np.int64))
    assert not batch["is_first"][:, 1:].any() and not batch["is_last"][:, :-1].any()  # no boundary inside
    assert not np.isin(rows, np.arange(67, 73)).any()  # the 6-row episode is shorter than T: skipped


def test_sampler_is_deterministic_under_a_seed_whatever_the_threads(tmp_path):
    path = make_dataset(tmp_path / "a.zarr", [40, 40])
    kw = dict(batch_size=8, length=5)
    with SequenceSampler(path, seed=3, prefetch=0, **kw) as s0, SequenceSampler(path, seed=3, prefetch=3, workers=2, **kw) as s1:
        a = [s0.sample() for _ in range(4)]
        b = [s1.sample() for _ in range(4)]
    with SequenceSampler(path, seed=4, prefetch=0, **kw) as s2:
        c = s2.sample()
    for x, y in zip(a, b):
        assert all(np.array_equal(x[k], y[k]) for k in x)
    assert not np.array_equal(a[0]["reward"], c["reward"])
    assert not np.array_equal(a[0]["reward"], a[1]["reward"])


def test_short_episodes_are_an_error_unless_crossing(tmp_path):
    path = make_dataset(tmp_path / "a.zarr", [5, 5, 5])
    with pytest.raises(OwbenchError, match="crossing=True"):
        SequenceSampler(path, length=8)
    with SequenceSampler(path, batch_size=16, length=8, crossing=True, prefetch=0) as sampler:
        batch = sampler.sample()
    assert batch["is_first"][:, 1:].any()  # windows now run across episode starts
    assert np.all(np.diff(image_rows(batch["image"]), axis=1) == 1)


def test_mixture_weights_and_action_padding(tmp_path):
    a = make_dataset(tmp_path / "a.zarr", [20, 20], action_dim=2, tag=1)
    b = make_dataset(tmp_path / "b.zarr", [20, 20], action_dim=4, tag=2)
    with SequenceSampler([a, b], batch_size=64, length=5, weights=[0, 1], prefetch=0) as only_b:
        batch = only_b.sample()
    assert np.all(batch["dataset"] == 1) and np.all(batch["image"][..., 2] == 2)
    with SequenceSampler([a, b], batch_size=256, length=5, weights=[3, 1], seed=0, prefetch=0) as mix:
        batch = mix.sample()
    assert batch["action"].shape == (256, 5, 4)
    from_a = batch["dataset"] == 0
    assert 0.6 < from_a.mean() < 0.9
    assert np.all(batch["image"][from_a][..., 2] == 1) and np.all(batch["image"][~from_a][..., 2] == 2)
    assert np.all(batch["action"][from_a][..., 2:] == 0)  # padded
    with pytest.raises(OwbenchError, match="one per dataset"):
        SequenceSampler([a, b], weights=[1.0], length=5)


def test_transition_frame_stack_and_n_step(tmp_path):
    path = make_dataset(tmp_path / "a.zarr", [10, 10], terminal_last=True)
    gamma, n, k = 0.9, 3, 3
    with TransitionSampler(path, batch_size=128, frame_stack=k, n_step=n, discount=gamma, seed=0) as sampler:
        batch = sampler.sample()
    assert batch["obs"].shape == (128, SIZE, SIZE, 3 * k) and batch["obs"].dtype == np.uint8
    assert batch["next_obs"].shape == batch["obs"].shape and batch["action"].shape == (128, 2)
    stack = image_rows(batch["obs"].reshape(128, SIZE, SIZE, k, 3).transpose(0, 3, 1, 2, 4))
    t = stack[:, -1]
    start = np.where(t >= 10, 10, 0)
    assert np.array_equal(stack, np.maximum(t[:, None] + np.arange(-k + 1, 1), start[:, None]))  # first frame repeated
    next_t = image_rows(batch["next_obs"][:, None, ..., -3:])[:, 0]
    assert np.array_equal(next_t, t + n) and np.all(next_t <= start + 9)  # n steps, same episode
    assert np.array_equal(batch["action"][:, 0], t + 1)  # a_t lives in row t+1
    expected = sum(gamma**i * (t + 1 + i) for i in range(n))
    np.testing.assert_allclose(batch["reward"], expected, rtol=1e-5)
    ends_terminal = next_t == start + 9
    np.testing.assert_allclose(batch["discount"], np.where(ends_terminal, 0.0, gamma**n), rtol=1e-6)
    assert ends_terminal.any() and (~ends_terminal).any()


def test_reads_are_bounded_to_the_touched_chunks(tmp_path):
    path = make_dataset(tmp_path / "a.zarr", [200, 200, 200], image_chunk_rows=4)
    with SequenceSampler(path, batch_size=4, length=10, prefetch=0, cache_mb=0) as sampler:
        sampler.sample()
        assert sampler.cache.misses <= 4 * (10 // 4 + 2)  # never the whole 150-chunk array


def test_memory_url_and_torch_output(tmp_path):
    torch = pytest.importorskip("torch")
    url = make_dataset("memory://owbench-sampler-test.zarr", [15, 15])
    with SequenceSampler(url, batch_size=4, length=6, as_torch=True, pin_memory=True) as sampler:
        batch = sampler.sample()
    assert isinstance(batch["image"], torch.Tensor) and batch["image"].dtype == torch.uint8
    rows = image_rows(batch["image"].numpy())
    assert np.array_equal(rows, batch["reward"].numpy().astype(np.int64))


@pytest.mark.parametrize("codec", [ZstdCodec(level=3), GzipCodec(level=1)])
def test_chunk_reader_fast_and_fallback_paths_agree(tmp_path, codec):
    values = np.random.default_rng(0).integers(0, 255, (37, 4, 4, 3), dtype=np.uint8)
    arr = zarr.create_array(str(tmp_path / "x.zarr"), shape=values.shape, chunks=(8, 4, 4, 3), dtype="uint8",
                            compressors=[codec])
    arr[:] = values
    reader = ChunkReader(arr)
    assert reader.fast_path == isinstance(codec, ZstdCodec)
    got = np.concatenate([reader.chunk(c) for c in range(5)])
    assert np.array_equal(got[:37], values) and not got[37:].any()


def _chunk_path(location, array: str, chunk: int):
    from pathlib import Path

    first = Path(location, array, "c", str(chunk))  # 1-d arrays: c/<chunk>; others: c/<chunk>/0/...
    return first if first.is_file() else next(f for f in sorted(first.rglob("*")) if f.is_file())


def _silently_corrupt(location, array: str, chunk: int) -> None:
    """Replace a chunk by a valid zstd chunk of other values: it decodes fine, only its checksum tells."""
    import numcodecs

    path = _chunk_path(location, array, chunk)
    codec = numcodecs.Zstd()
    values = np.frombuffer(codec.decode(path.read_bytes()), np.uint8).copy()
    values[1] ^= 0xFF  # a committed row
    path.write_bytes(codec.encode(values))


@pytest.mark.parametrize("damage", ["silent", "garbled"])
@pytest.mark.parametrize("sampler", [SequenceSampler, TransitionSampler])
def test_samplers_refuse_a_corrupt_image_chunk(tmp_path, damage, sampler):
    path = make_dataset(tmp_path / "a.zarr", [20], image_chunk_rows=32)  # one image chunk: every batch reads it
    if damage == "silent":
        _silently_corrupt(path, "image", 0)
    else:
        chunk = _chunk_path(path, "image", 0)
        chunk.write_bytes(chunk.read_bytes()[:-7])
    kwargs = {"length": 5} if sampler is SequenceSampler else {}
    with sampler(path, batch_size=2, seed=0, **kwargs) as s, pytest.raises(OwbenchError) as err:
        s.sample()
    assert path in str(err.value) and "owbench datasets verify" in str(err.value)


def test_samplers_refuse_a_corrupt_column_before_the_first_batch(tmp_path):
    path = make_dataset(tmp_path / "a.zarr", [20, 20])
    _silently_corrupt(path, "reward", 0)
    with pytest.raises(OwbenchError, match="reward chunk 0 fails its checksum.*datasets verify"):
        SequenceSampler(path, batch_size=2, length=5)
