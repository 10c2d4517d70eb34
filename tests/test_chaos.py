"""Chaos: repeated random SIGKILLs of a collection, an import and a training job, each followed by a resume
and `verify`. After every kill the committed prefix is sound and is a prefix of the uninterrupted result: no
committed episode is lost or duplicated; the training job's logs hold every step exactly once.

`test_chaos_short` (one or two kills each, seconds) runs in CI; `test_chaos` (many kills) is slow-marked.
"""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from collectors import store
from collectors.collect import collect
from collectors.export import export_dataset

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(image_size=16, max_episode_steps=10)


def _start(code: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)


def _kill_and_resume(code: str, kills: int, window: tuple[float, float], rng: np.random.Generator,
                     check: Callable[[], None]) -> int:
    """Run `code` until it finishes, SIGKILLing up to `kills` runs at random moments; `check` after each kill.
    Returns how many runs were killed."""
    killed = 0
    while True:
        proc = _start(code)
        try:
            _, err = proc.communicate(timeout=rng.uniform(*window) if killed < kills else 600)
            assert proc.returncode == 0, err.decode()[-2000:]
            print(f"{killed} kills, then a run to the end")  # shown with -s
            return killed
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.communicate()
            killed += 1
            check()


def _assert_prefix(location: Path, reference: store.Dataset) -> int:
    """The committed episodes at `location` verify and equal the reference's first ones; returns their count."""
    if store.probe(str(location)) != "dataset":
        return 0  # killed before the first commit record: nothing committed, nothing to lose
    assert store.verify(location) == []
    ds = store.open_dataset(location)
    k = ds.n_episodes
    assert np.array_equal(ds.episodes["seed"], reference.episodes["seed"][:k])  # no episode lost or repeated
    rows = int(reference.episodes["start"][k]) if k < reference.n_episodes else reference.n_steps
    assert ds.n_steps == rows
    for name in ("image", "action", "reward", "is_first"):
        assert np.array_equal(ds.read(name), reference.read(name, 0, rows)), name
    return k


def _timed(code: str) -> float:
    """Seconds one uninterrupted run of `code` takes (start-up included)."""
    started = time.perf_counter()
    proc = _start(code)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err.decode()[-2000:]
    return time.perf_counter() - started


def _chaos_collect(tmp_path: Path, episodes: int, kills: int, rng: np.random.Generator) -> None:
    code = ("from collectors.collect import collect; collect('walker_walk', 'random', out={out!r}, "
            f"episodes={episodes}, image_size=16, max_episode_steps=10)")
    took = _timed(code.format(out=str(tmp_path / "ref.zarr")))  # the uninterrupted reference
    reference = store.open_dataset(tmp_path / "ref.zarr")
    out = tmp_path / "chaos.zarr"
    seen = []
    _kill_and_resume(code.format(out=str(out)), kills, (0.2 * took, 0.9 * took), rng,
                     lambda: seen.append(_assert_prefix(out, reference)))
    assert seen == sorted(seen)  # the committed count never goes back
    assert _assert_prefix(out, reference) == episodes and store.open_dataset(out).attrs["complete"]


def _chaos_import(tmp_path: Path, episodes: int, kills: int, rng: np.random.Generator) -> None:
    reference = store.open_dataset(collect("walker_walk", "random", out=tmp_path / "src.zarr", episodes=episodes,
                                           **TINY).location)
    export_dataset(reference.location, tmp_path / "npz", "npz")
    code = f"from collectors.export import import_dataset; import_dataset({str(tmp_path / 'npz')!r}, {{out!r}})"
    took = _timed(code.format(out=str(tmp_path / "timing.zarr")))
    out = tmp_path / "imported.zarr"
    seen = []
    _kill_and_resume(code.format(out=str(out)), kills, (0.2 * took, 0.9 * took), rng,
                     lambda: seen.append(_assert_prefix(out, reference)))
    assert seen == sorted(seen)
    assert _assert_prefix(out, reference) == episodes and store.open_dataset(out).attrs["complete"]


TRAIN = """
import numpy as np
from agents import training
from agents.protocol import EvalResult
from benchmark.methods import get_method
from collectors.seeds import eval_seeds

def evaluate(agent, make_env, episodes=10, training_seed=0, record_frames=False):  # no 500-step rollouts
    seeds = eval_seeds(episodes, training_seed)
    return EvalResult(np.arange(episodes, dtype=float), np.zeros(episodes, bool), np.full(episodes, 500), seeds,
                      np.zeros((3, 16, 16, 3), np.uint8) if record_frames else None)

training.evaluate = evaluate
ctx = training.TrainContext(method="dreamerv2", env_id="walker_walk", datasets=[{data!r}], run_dir={run!r},
                            preset="smoke", steps={steps}, eval_every=2, eval_episodes=2, checkpoint_every=1,
                            log_every=1, image_size=16, progress=False,
                            overrides={{"batch_size": 2, "seq_len": 5}})
training.train_offline(ctx, get_method("dreamerv2").load())
"""


def _steps(path: Path) -> list[int]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [int(row["step"]) for row in csv.DictReader(f)]


def _chaos_train(tmp_path: Path, steps: int, kills: int, rng: np.random.Generator) -> None:
    data = collect("walker_walk", "random", out=tmp_path / "data.zarr", episodes=2, **TINY).location
    run = tmp_path / "run"
    code = TRAIN.format(data=data, run=str(run), steps=steps)

    def check() -> None:  # logs hold each finished step once, in order, whatever the kill interrupted
        logged = _steps(run / "metrics.csv")
        assert logged == list(range(1, len(logged) + 1))

    _kill_and_resume(code, kills, (4.0, 12.0), rng, check)
    assert _steps(run / "metrics.csv") == list(range(1, steps + 1))
    assert _steps(run / "eval.csv") == [s for s in range(2, steps + 1, 2) for _ in range(2)] + \
        ([steps] * 2 if steps % 2 else [])


@pytest.mark.timeout(600)
def test_chaos_short(tmp_path):
    """CI: one kill of a collection and one of an import, then resume and verify."""
    rng = np.random.default_rng(int(time.time()))
    _chaos_collect(tmp_path / "collect", episodes=6, kills=1, rng=rng)
    _chaos_import(tmp_path / "import", episodes=6, kills=1, rng=rng)


@pytest.mark.slow
@pytest.mark.parametrize("job", ["collect", "import", "train"])
def test_chaos(tmp_path, job):
    rng = np.random.default_rng(int(time.time()))
    if job == "collect":
        _chaos_collect(tmp_path, episodes=30, kills=8, rng=rng)
    elif job == "import":
        _chaos_import(tmp_path, episodes=30, kills=8, rng=rng)
    else:
        _chaos_train(tmp_path, steps=12, kills=5, rng=rng)
