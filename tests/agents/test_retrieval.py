"""Retrieval indexer: extractors, Faiss index kinds, atomic save/load round trip, id map, task retrieval, CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from agents.retrieval import (RandomProjectionExtractor, RetrievalIndex, build_index, build_retrieval_index,
                              compare_with_brute_force, make_extractor, search_brute_force)
from collectors.envs import make
from collectors.errors import OwbenchError
from collectors.store import create_dataset, open_dataset

SIZE = 32


def write_rollouts(location: Path, env_id: str, episodes: int, steps: int, seed: int = 0) -> str:
    """A tiny dataset of random-action episodes of `steps` rows rendered at 32 px."""
    env = make(env_id, image_size=SIZE)
    spec = env.spec
    obs = env.reset(seed=seed)
    shapes = {"image": (SIZE, SIZE, 3), "state": obs["state"].shape, "action": (spec.action_dim,),
              "physics": env.physics_state().shape}
    writer = create_dataset(location, {"env_id": env_id, "quality": "random", "image_size": SIZE,
                                       "action_dim": spec.action_dim}, shapes)
    rng = np.random.default_rng(seed)
    for e in range(episodes):
        obs = env.reset(seed=seed + e)
        rows = {k: [] for k in ("image", "state", "action", "reward", "physics")}
        action = np.zeros(spec.action_dim, np.float32)
        for t in range(steps):
            for k, v in (("image", obs["image"]), ("state", obs["state"]), ("action", action),
                         ("physics", env.physics_state())):
                rows[k].append(v)
            action = rng.uniform(-1, 1, spec.action_dim).astype(np.float32)
            obs, reward, *_ = env.step(action)
            rows["reward"].append(reward if t else 0.0)
        out = {k: np.stack(v) if k != "reward" else np.asarray(v, np.float32) for k, v in rows.items()}
        out.update(discount=np.ones(steps, np.float32), is_first=np.arange(steps) == 0,
                   is_last=np.arange(steps) == steps - 1, is_terminal=np.zeros(steps, bool))
        writer.append_episode(out, {"return": float(out["reward"].sum()), "seed": seed + e})
    env.close()
    return str(location)


@pytest.fixture(scope="module")
def pool(tmp_path_factory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("pool")
    return {env_id: write_rollouts(root / f"{env_id}.zarr", env_id, episodes=3, steps=4, seed=10 * i)
            for i, env_id in enumerate(["walker_walk", "cheetah_run", "mw_button-press-topdown"])}


@pytest.mark.parametrize("kind", ["flat", "ivf", "hnsw"])
def test_index_kinds_find_exact_neighbours_of_indexed_vectors(kind):
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    index = build_index(vectors, kind)
    assert index.ntotal == len(vectors)
    _, ids = index.search(vectors[:50], 1)
    assert (ids[:, 0] == np.arange(50)).mean() >= 0.9


def test_auto_is_exact_for_small_pools_and_brute_force_agrees():
    rng = np.random.default_rng(1)
    vectors, queries = rng.standard_normal((500, 8)).astype(np.float32), rng.standard_normal((7, 8)).astype(np.float32)
    report = compare_with_brute_force(vectors, queries, k=5)
    assert report["kind"] == "flat" and report["recall"] == 1.0
    d2, ids = search_brute_force(vectors, queries, 5)
    assert ids.shape == (7, 5) and np.all(np.diff(d2, axis=1) >= -1e-4)


def test_extractors_shapes_and_determinism():
    images = np.random.default_rng(0).integers(0, 255, (3, 64, 64, 3), dtype=np.uint8)
    for name in ("pixels", "random-proj"):
        extractor = make_extractor(name)
        out = extractor(images)
        assert out.shape == (3, extractor.dim) and out.dtype == np.float32
        np.testing.assert_array_equal(out, make_extractor(name)(images))
    assert RandomProjectionExtractor(seed=1).hash != RandomProjectionExtractor().hash
    with pytest.raises(OwbenchError, match="did you mean"):
        make_extractor("pixel")
    with pytest.raises(OwbenchError, match="pretrain wpt"):
        make_extractor("wpt:/nonexistent/model.pt")


def test_round_trip_ids_map_back(pool, tmp_path):
    extractor = make_extractor("pixels")
    index = build_retrieval_index(list(pool.values()), extractor, every=2)
    assert index.ntotal == index.meta["count"] == 3 * 3 * 2  # 3 datasets x 3 episodes x steps {0, 2}
    path = index.save(tmp_path / "pool.index")
    assert [p.name for p in tmp_path.iterdir()] == ["pool.index"]  # no temporary file left behind
    loaded = RetrievalIndex.load(path)
    assert loaded.ntotal == index.ntotal and loaded.meta["encoder_hash"] == extractor.hash
    assert loaded.meta["dim"] == extractor.dim and loaded.datasets == index.datasets
    for i in (0, 5, loaded.ntotal - 1):  # id -> (dataset, episode, step) -> the very frame that was indexed
        name, episode, step = loaded.location(i)
        ds = open_dataset(name)
        frame = ds.read("image", int(ds.episodes["start"][episode]) + step)[0]
        hit = loaded.query(frame, extractor, k=1)[0][0]
        assert (hit.dataset, hit.episode, hit.distance) == (name, episode, pytest.approx(0.0, abs=1e-3))


def test_queries_retrieve_their_own_task_first(pool):
    extractor = make_extractor("pixels")
    index = build_retrieval_index(list(pool.values()), extractor)
    for env_id, location in pool.items():
        env = make(env_id, image_size=SIZE)
        image = env.reset(seed=12345)["image"]  # an unseen episode start
        env.close()
        hits = index.query(image, extractor, k=3)[0]
        assert len(hits) == 3 and all(h.dataset == location for h in hits), (env_id, hits)


def test_load_rejects_damaged_files_and_mismatched_encoders(pool, tmp_path):
    bad = tmp_path / "bad.index"
    bad.write_bytes(b"not an index")
    with pytest.raises(OwbenchError, match="rebuild it"):
        RetrievalIndex.load(bad)
    index = build_retrieval_index([pool["walker_walk"]], make_extractor("pixels"))
    with pytest.raises(OwbenchError, match="same --encoder"):
        index.query(np.zeros((SIZE, SIZE, 3), np.uint8), make_extractor("random-proj"))


def test_index_cli_build_and_query(pool, tmp_path):
    from PIL import Image

    from datasets_cli.main import cli

    runner = CliRunner()
    out = tmp_path / "cli.index"
    result = runner.invoke(cli, ["index", "build", "--datasets", pool["walker_walk"], "--datasets", pool["cheetah_run"],
                                 "--encoder", "random-proj", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.is_file()
    png = tmp_path / "q.png"
    Image.fromarray(open_dataset(pool["cheetah_run"]).read("image", 0, 1)[0]).save(png)
    result = runner.invoke(cli, ["index", "query", str(out), "--image", str(png), "-k", "2"])
    assert result.exit_code == 0, result.output
    assert "cheetah_run" in result.output
    result = runner.invoke(cli, ["index", "query", str(out), "--from-env", "walker_walk", "-k", "1"])
    assert result.exit_code == 0 and "walker_walk" in result.output, result.output
    result = runner.invoke(cli, ["index", "build", "--datasets", pool["walker_walk"], "--encoder", "clip",
                                 "--out", str(out)])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1, result.output
    result = runner.invoke(cli, ["index", "query", str(out)])
    assert result.exit_code == 2 and "--image" in result.output


def test_index_build_never_unpickles_a_crafted_wpt_file(pool, tmp_path):
    """A `wpt:PATH` file is loaded with weights_only=True: pickled code in it does not run (exit 2, one line)."""
    import os
    import pickle

    from datasets_cli.main import cli

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    crafted = tmp_path / "model.pt"
    crafted.write_bytes(pickle.dumps({"wm_config": Payload()}))
    result = CliRunner().invoke(cli, ["index", "build", "--datasets", next(iter(pool.values())),
                                      "--encoder", f"wpt:{crafted}", "--out", str(tmp_path / "i.index")])
    assert result.exit_code == 2 and not marker.exists(), result.output
    assert "never runs pickled code" in result.output and len(result.output.strip().splitlines()) == 1
