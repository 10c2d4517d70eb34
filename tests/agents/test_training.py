"""Training-loop utilities: CSV logs, checkpoints, and the generic offline loop with resume after a kill."""
from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from agents import training
from benchmark.methods import get_method
from agents.protocol import EvalResult
from collectors.seeds import eval_seeds
from collectors import store
from collectors.envs import spec

ENV_ID = "walker_walk"


class Killed(RuntimeError):
    pass


@pytest.fixture
def fake_evaluate(monkeypatch):
    """Evaluation without rendering 500-step episodes: returns grow with the agent's update count."""
    calls = []

    def evaluate(agent, make_env, episodes=10, training_seed=0, record_frames=False):
        calls.append(record_frames)
        seeds = eval_seeds(episodes, training_seed)
        frames = np.zeros((3, 32, 32, 3), np.uint8) if record_frames else None
        return EvalResult(np.arange(episodes, dtype=float), np.zeros(episodes, bool), np.full(episodes, 500), seeds,
                          frames)

    monkeypatch.setattr(training, "evaluate", evaluate)
    return calls


def tiny_dataset(path, episodes=3, length=20, size=32):
    env = spec(ENV_ID)
    writer = store.create_dataset(path, {"env_id": ENV_ID, "quality": "random", "image_size": size},
                                  {"image": (size, size, 3), "state": (env.state_dim,), "action": (env.action_dim,),
                                   "physics": (4,)})
    rng = np.random.default_rng(0)
    for e in range(episodes):
        first = np.zeros(length, bool)
        first[0] = True
        last = np.roll(first, -1)
        writer.append_episode({"image": rng.integers(0, 256, (length, size, size, 3), dtype=np.uint8),
                               "state": rng.normal(size=(length, env.state_dim)),
                               "action": rng.uniform(-1, 1, (length, env.action_dim)) * ~first[:, None],
                               "reward": rng.random(length), "discount": np.ones(length),
                               "is_first": first, "is_last": last, "is_terminal": np.zeros(length, bool),
                               "physics": np.zeros((length, 4))}, {"return": 0.0, "seed": e})
    return str(path)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_csv_log_grows_its_header_and_truncates(tmp_path):
    log = training.CsvLog(tmp_path / "m.csv", ["step"])
    log.append([{"step": 1, "a": 1.0}, {"step": 2, "a": 2.0}])
    log.append([{"step": 3, "a": 3.0, "b": 4.0}])
    rows = read_csv(tmp_path / "m.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3"] and rows[0]["b"] == "" and rows[2]["b"] == "4.0"
    log.truncate_after(2)
    assert [r["step"] for r in read_csv(tmp_path / "m.csv")] == ["1", "2"]
    assert training.CsvLog(tmp_path / "m.csv").columns == ["step", "a", "b"]


def test_metrics_logger_averages_every_k_updates(tmp_path):
    logger = training.MetricsLogger(tmp_path, every=2, tensorboard=False)
    assert logger.log(1, {"loss": 1.0}) is None
    assert logger.log(2, {"loss": 3.0}) == {"loss": 2.0}
    assert logger.log(3, {"loss": torch.tensor(5.0)}, force=True) == {"loss": 5.0}  # tensors, as updates return
    assert [(r["step"], float(r["loss"])) for r in read_csv(tmp_path / "metrics.csv")] == [("2", 2.0), ("3", 5.0)]


def test_checkpointer_round_trip_restores_agent_and_rng(tmp_path):
    module = get_method("dreamerv2").load()
    config = module.Config.preset("smoke")
    agent = module.make_agent(spec(ENV_ID), config, "cpu", 0)
    ckpt = training.Checkpointer(tmp_path / "checkpoints")
    assert ckpt.load(agent) is None
    ckpt.save(7, agent, note="x")
    expected = torch.rand(3)
    other = module.make_agent(spec(ENV_ID), config, "cpu", 1)
    state = ckpt.load(other)
    assert state["step"] == 7 and state["note"] == "x"
    assert torch.equal(torch.rand(3), expected)  # the torch RNG continues where it was saved
    for a, b in zip(agent.wm.parameters(), other.wm.parameters()):
        assert torch.equal(a, b)
    assert not list(ckpt.folder.glob("*.tmp"))


def dreamer_agent(seed=0):
    module = get_method("dreamerv2").load()
    return module.make_agent(spec(ENV_ID), module.Config.preset("smoke"), "cpu", seed)


def test_checkpointer_restores_python_numpy_and_torch_generators(tmp_path):
    import random

    ckpt = training.Checkpointer(tmp_path)
    ckpt.save(1, dreamer_agent())
    expected = (random.random(), np.random.random(), np.random.normal(), torch.rand(2))
    ckpt.load(dreamer_agent(1))
    got = (random.random(), np.random.random(), np.random.normal(), torch.rand(2))
    assert got[:3] == expected[:3] and torch.equal(got[3], expected[3])


def test_checkpoint_written_on_a_gpu_resumes_on_the_cpu(tmp_path, monkeypatch):
    """Storages tagged `cuda:0` (as torch.save writes a GPU agent's) load here: the Checkpointer maps them to
    the CPU, and the agent's own load_state_dict moves them to its device (Adam's `step` stays on the CPU)."""
    import torch.serialization as serialization

    agent = dreamer_agent()
    agent.update({k: v for k, v in _sequence_batch(agent).items()})
    ckpt = training.Checkpointer(tmp_path)
    with monkeypatch.context() as m:
        m.setattr(serialization, "location_tag", lambda storage: "cuda:0")
        ckpt.save(3, agent)
    with pytest.raises(RuntimeError, match="CUDA"):  # what loading without map_location="cpu" does here
        torch.load(ckpt.path, weights_only=True)
    other = dreamer_agent(1)
    assert ckpt.load(other)["step"] == 3
    for a, b in zip(agent.wm.parameters(), other.wm.parameters()):
        assert torch.equal(a, b)
    steps = [s["step"] for s in other.wm.opt.opt.state.values()]
    assert steps and all(s.device.type == "cpu" for s in steps)


def test_checkpointer_never_unpickles_objects(tmp_path):
    """weights_only=True: a checkpoint holding a pickled object (code on load) is refused, not executed."""
    ckpt = training.Checkpointer(tmp_path)
    ckpt.save(1, dreamer_agent(), evil=Killed("x"))
    with pytest.raises(Exception, match="weights_only|Unsupported global"):
        ckpt.load(dreamer_agent(1))


def test_cuda_generators_restore_only_on_the_gpus_this_machine_has(monkeypatch):
    """A checkpoint from a 2-GPU job resumes on a 1-GPU (only GPU 0 restored) or CPU-only machine."""
    restored = []
    monkeypatch.setattr(torch.cuda, "set_rng_state", lambda state, device: restored.append(device))
    state = {**training.rng_state(), "cuda": [torch.zeros(16, dtype=torch.uint8)] * 2}
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    training.set_rng_state(state)
    assert restored == [0]
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    training.set_rng_state(state)
    assert restored == [0]


def _sequence_batch(agent):
    rng = np.random.default_rng(0)
    B, T, S, A = agent.config.batch_size, agent.config.seq_len, agent.config.image_size, agent.action_dim
    first = np.zeros((B, T), bool)
    first[:, 0] = True
    return {"image": rng.integers(0, 256, (B, T, S, S, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (B, T, A)).astype(np.float32), "reward": rng.random((B, T), np.float32),
            "discount": np.ones((B, T), np.float32), "is_first": first, "is_last": np.roll(first, -1, 1),
            "is_terminal": np.zeros((B, T), bool)}


def test_train_offline_resumes_after_a_kill(tmp_path, fake_evaluate):
    data = tiny_dataset(tmp_path / "data.zarr")
    ctx = training.TrainContext(method="dreamerv2", env_id=ENV_ID, datasets=[data], run_dir=tmp_path / "run",
                                preset="smoke", steps=6, eval_every=2, eval_episodes=2, checkpoint_every=3,
                                log_every=1, image_size=32, progress=False)
    module = get_method("dreamerv2").load()

    def kill_at_5(step, metrics):
        assert all(np.isfinite(v) for v in metrics.values())
        if step == 5:
            raise Killed

    with pytest.raises(Killed):
        training.train_offline(ctx, module, on_update=kill_at_5)
    assert (ctx.run_dir / "checkpoints" / "latest.pt").exists()
    assert [r["step"] for r in read_csv(ctx.run_dir / "eval.csv")] == ["2", "2", "4", "4"]

    resumed = []
    result = training.train_offline(ctx, module, on_update=lambda step, m: resumed.append(step))
    assert resumed == [4, 5, 6]  # continued from the checkpoint at step 3
    assert [int(r["step"]) for r in read_csv(ctx.run_dir / "metrics.csv")] == [1, 2, 3, 4, 5, 6]
    evals = read_csv(ctx.run_dir / "eval.csv")
    assert [r["step"] for r in evals] == ["2", "2", "4", "4", "6", "6"]
    assert list(evals[0]) == training.EVAL_COLUMNS
    assert result.frames is not None and fake_evaluate[-1] is True
    assert torch.load(ctx.run_dir / "checkpoints" / "latest.pt", weights_only=False)["step"] == 6


def test_train_offline_runs_a_method_without_batches(tmp_path, fake_evaluate):
    ctx = training.TrainContext(method="random", batch="none", env_id=ENV_ID, datasets=[], run_dir=tmp_path / "run",
                                steps=3, eval_episodes=1, checkpoint_every=0, progress=False)
    result = training.train_offline(ctx, get_method("random").load())
    assert len(result.returns) == 1
    assert [r["step"] for r in read_csv(ctx.run_dir / "eval.csv")] == ["3"]
