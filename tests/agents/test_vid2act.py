"""Vid2Act: domain weights, frozen teacher, action replay, pretraining artefact, online transfer, CLI."""
from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from agents import vid2act
from agents.action_replay import ActionReplay
from collectors import envs, store
from datasets_cli.main import cli
from short_env import ShortContext

SIZE = 32


def make_source(path: Path, env_id: str, action_dim: int, episodes: int = 2, length: int = 12) -> str:
    """A tiny reward-free dataset of random frames and actions."""
    rng = np.random.default_rng(len(env_id))
    writer = store.create_dataset(path, {"env_id": env_id, "quality": "random", "image_size": SIZE,
                                         "action_dim": action_dim},
                                  {"image": (SIZE, SIZE, 3), "state": (3,), "action": (action_dim,), "physics": (4,)})
    for e in range(episodes):
        flags = np.zeros(length, bool)
        action = rng.uniform(-1, 1, (length, action_dim)).astype(np.float32)
        action[0] = 0
        writer.append_episode({"image": rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8),
                               "state": rng.normal(size=(length, 3)), "action": action, "reward": np.zeros(length),
                               "discount": np.ones(length), "is_first": np.r_[True, flags[1:]],
                               "is_last": np.r_[flags[1:], True], "is_terminal": flags, "physics": np.zeros((length, 4))},
                              {"return": 0.0, "seed": e})
    return str(path)


def sequence_batch(action_dim: int, batch: int = 4, length: int = 8, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    is_first = np.zeros((batch, length), bool)
    is_first[:, 0] = True
    return {"image": rng.integers(0, 256, (batch, length, SIZE, SIZE, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (batch, length, action_dim)).astype(np.float32),
            "reward": rng.normal(size=(batch, length)).astype(np.float32),
            "discount": np.ones((batch, length), np.float32), "is_first": is_first,
            "is_last": np.zeros((batch, length), bool), "is_terminal": np.zeros((batch, length), bool)}


@pytest.fixture
def sources(tmp_path: Path) -> list[str]:
    return [make_source(tmp_path / "cheetah.zarr", "cheetah_run", 6), make_source(tmp_path / "hopper.zarr", "hopper_stand", 4)]


def test_domain_weights_sum_to_one_and_respect_the_floor() -> None:
    for n in (2, 4, 10):
        agent = vid2act.make_agent(envs.spec("walker_walk"), vid2act.Config.preset("smoke", untrained_sources=n))
        feat = agent.wm.feat_dim
        teacher_feat, student_feat = 10 * torch.randn(n, 5, 7, feat), 10 * torch.randn(5, 7, feat)
        weights = agent.weights(teacher_feat, student_feat)
        assert weights.shape == (n, 5, 7)
        torch.testing.assert_close(weights.sum(0), torch.ones(5, 7))
        assert weights.min() >= 0.1 - 1e-6
    uniform = vid2act.make_agent(envs.spec("walker_walk"),
                                 vid2act.Config.preset("smoke", untrained_sources=4, domain_weights=False))
    torch.testing.assert_close(uniform.weights(torch.randn(4, 3, feat), torch.randn(3, feat)), torch.full((4, 3), 0.25))


def test_too_high_floor_is_a_user_error() -> None:
    with pytest.raises(vid2act.OwbenchError, match="weight_floor"):
        vid2act.make_agent(envs.spec("walker_walk"), vid2act.Config.preset("smoke", untrained_sources=11))


def test_distillation_gradient_does_not_reach_the_frozen_teacher() -> None:
    agent = vid2act.make_agent(envs.spec("walker_walk"), vid2act.Config.preset("smoke", alpha=10.0))
    before = {k: v.clone() for k, v in agent.teacher.state_dict().items()}
    distill_before = [p.clone() for p in agent.distill.parameters()]
    weight_before = [p.clone() for p in agent.domain_weight.parameters()]
    metrics = agent.update(sequence_batch(6))
    assert np.isfinite(metrics["distill_loss"]) and metrics["distill_loss"] > 0
    assert all(p.grad is None and not p.requires_grad for p in agent.teacher.parameters())
    for k, v in agent.teacher.state_dict().items():
        torch.testing.assert_close(v, before[k], msg=f"teacher {k} changed")
    assert any(not torch.equal(a, b) for a, b in zip(distill_before, agent.distill.parameters()))
    assert any(not torch.equal(a, b) for a, b in zip(weight_before, agent.domain_weight.parameters()))
    assert {"weight/source0", "weight/source1", "actor_loss", "model_loss"} <= metrics.keys()


def teacher_states(agent: vid2act.Vid2ActAgent, batch: dict) -> torch.Tensor:
    """s^k_t computed here from the teacher alone: its own posterior (mode) on the batch's images
    under label k, (N, B, T, F)."""
    data = vid2act.to_torch(batch, "cpu")
    feats = []
    for k in range(len(agent.teacher.sources)):
        task = torch.full(data["is_first"].shape, k)
        post, _, _ = agent.teacher.wm.observe({**data, "action": agent.teacher.condition(data["action"], task)},
                                              sample=False)
        feats.append(agent.teacher.wm.rssm.feat(post))
    return torch.stack(feats)


def test_teacher_predicts_with_its_own_posterior_on_the_target_images() -> None:
    """As the released code (`dynamics_teachers.observe` on the target batch): the distillation targets
    are the teacher's posterior states of the target images, whatever the student's latent."""
    batch = sequence_batch(6, seed=4)
    seen = []
    for seed in (1, 2):  # two students, one teacher (the teacher is built before the student)
        torch.manual_seed(0)
        teacher = vid2act.Teacher(vid2act.Config.preset("smoke").dreamer.wm, ["a", "b"], 6)
        agent = vid2act.Vid2ActAgent(6, vid2act.Config.preset("smoke"), teacher)
        torch.manual_seed(seed)
        agent.wm.load_state_dict(vid2act.WorldModel(agent.config.wm, 6).state_dict())
        transfer = agent.transfer
        agent.transfer = lambda tf, f: (seen.append(tf.detach().clone()), transfer(tf, f))[1]
        agent.update(batch)
        torch.testing.assert_close(seen[-1], teacher_states(agent, batch))
    torch.testing.assert_close(seen[0], seen[1])  # independent of the student


def test_action_replay_is_queried_with_teacher_states() -> None:
    """G_θ was trained on teacher states, so it is asked with teacher states: when acting, the teacher's
    posterior s^{k*}_t of the observation; in imagination, first the teacher's s^{k*} of the start state."""
    agent = vid2act.make_agent(envs.spec("walker_walk"), vid2act.Config.preset("smoke"), seed=3)
    queried = []
    decode = agent.teacher.replay.decode
    agent.teacher.replay.decode = lambda state, task, **kw: (queried.append((state.clone(), task.clone())),
                                                             decode(state, task, **kw))[1]
    batch = sequence_batch(6, seed=5)
    obs = {"image": batch["image"][0, 0], "state": np.zeros(3, np.float32)}
    agent.act(obs, eval_mode=True)
    state, task = queried[-1]
    expected = teacher_states(agent, {k: v[:1, :1] for k, v in batch.items()})[:, 0, 0]  # (N, F), first row
    torch.testing.assert_close(state[0], expected[int(task[0])])
    queried.clear()
    agent.update(batch)
    state, task = queried[0]  # imagination step 0: the start states
    expected = teacher_states(agent, batch).flatten(1, 2)  # (N, B*T, F), the teacher before any update (frozen)
    torch.testing.assert_close(state, expected[task, torch.arange(len(task))])


def test_paper_online_loop_is_the_released_codes() -> None:
    online = vid2act.Config.preset("paper").online  # released configs.yaml dmc: train_every 5, prefill 2500
    assert (online.train_every, online.prefill, online.budget) == (5, 2500, "env_steps")


def test_action_replay_reconstructs_source_actions_better_than_chance() -> None:
    torch.manual_seed(0)
    n, state_dim, action_dim = 3, 6, 4
    maps = torch.randn(n, state_dim, action_dim)  # each source task has its own state -> action behaviour

    def data(count: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        state, task = torch.randn(count, state_dim), torch.randint(n, (count,))
        return state, torch.tanh(torch.einsum("bs,bsa->ba", state, maps[task])), task

    replay = ActionReplay(state_dim, action_dim, n, latent=4, hidden=64)
    opt = torch.optim.Adam(replay.parameters(), 3e-3)
    for _ in range(200):
        loss, _ = replay.loss(*data(128))
        opt.zero_grad()
        loss.backward()
        opt.step()
    state, action, task = data(512)
    with torch.no_grad():
        error = (replay.decode(state, task) - action).pow(2).sum(-1).mean()
    chance = (action - action[torch.randperm(len(action))]).pow(2).sum(-1).mean()  # another pair's action
    wrong_task = (replay.decode(state, (task + 1) % n) - action).pow(2).sum(-1).mean()
    assert error < 0.3 * chance, (float(error), float(chance))
    assert error < wrong_task  # the label selects the source's behaviour


def test_pretrain_writes_a_frozen_reusable_teacher(sources: list[str], tmp_path: Path) -> None:
    config = vid2act.Config.preset("smoke", pretrain_steps=3)
    path = vid2act.pretrain(sources, config, action_pad=12, progress=False)
    assert path.exists() and (path.parent / "pretrain_metrics.csv").exists()
    assert len(pd.read_csv(path.parent / "pretrain_metrics.csv")) == 3
    stamp = path.stat().st_mtime_ns
    assert vid2act.pretrain(sources, config, action_pad=12, progress=False) == path and path.stat().st_mtime_ns == stamp
    teacher = vid2act.load_teacher(path)
    assert teacher.sources == ["cheetah_run", "hopper_stand"] and teacher.action_pad == 12
    assert not any(p.requires_grad for p in teacher.parameters())
    agent = vid2act.make_agent(envs.spec("quadruped_walk"), dataclasses.replace(config, teacher=str(path)))
    for k, v in teacher.state_dict().items():
        torch.testing.assert_close(agent.teacher.state_dict()[k], v)
    with pytest.raises(vid2act.OwbenchError, match="action-pad"):
        vid2act.make_agent(envs.spec("quadruped_walk"),
                           dataclasses.replace(config, teacher=str(vid2act.pretrain(sources, config, progress=False))))


def test_state_dict_round_trip_acts_identically(sources: list[str]) -> None:
    for switches in ({}, {"action_replay": False}, {"domain_weights": False}):
        config = vid2act.Config.preset("smoke", **switches)
        agent = vid2act.make_agent(envs.spec("walker_walk"), config, seed=1)
        agent.update(sequence_batch(6))
        clone = vid2act.make_agent(envs.spec("walker_walk"), config, seed=2)
        clone.load_state_dict(agent.state_dict())
        obs = {"image": sequence_batch(6)["image"][0, 0], "state": np.zeros(3, np.float32)}
        a, state = agent.act(obs, eval_mode=True)
        b, _ = clone.act(obs, eval_mode=True)
        np.testing.assert_allclose(a, b, atol=1e-6)
        a2, _ = agent.act(obs, state, eval_mode=True)
        assert a2.shape == (6,) and np.all(np.abs(a2) <= 1)


def context(run_dir: Path, datasets: list[str], steps: int, method: str = "vid2act") -> ShortContext:
    return ShortContext(method=method, env_id="walker_walk", datasets=datasets, run_dir=run_dir, preset="smoke",
                        steps=steps, eval_every=4, eval_episodes=1, checkpoint_every=4, log_every=2, seed=0,
                        device="cpu", image_size=SIZE, progress=False,
                        overrides={"pretrain_steps": 2} if method == "vid2act" else {})


def test_online_transfer_logs_weights_checkpoints_and_resumes(sources: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = vid2act.train(context(run_dir, sources, steps=8))
    assert len(result.returns) == 1 and result.frames is not None
    for name in ("eval.csv", "metrics.csv", "domain_weights.csv", "domain_weights.png", "checkpoints/latest.pt"):
        assert (run_dir / name).exists(), name
    weights = pd.read_csv(run_dir / "domain_weights.csv")
    assert set(weights["source"]) == {"cheetah_run", "hopper_stand"}
    np.testing.assert_allclose(weights.groupby("step")["weight"].sum(), 1.0, atol=1e-5)
    assert store.open_dataset(run_dir / "replay.zarr").n_episodes >= 1
    assert torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)["step"] == 8
    vid2act.train(context(run_dir, sources, steps=10))  # resumes from update 8: only updates 9 and 10 run
    steps = pd.read_csv(run_dir / "metrics.csv")["step"]
    assert steps.is_unique and steps.max() == 10
    assert torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)["step"] == 10


def test_dreamerv2_from_scratch_uses_the_same_online_loop(tmp_path: Path) -> None:
    from agents.online import train_from_scratch
    from baselines import dreamerv2

    ctx = context(tmp_path / "dv2", [], steps=4, method="dreamerv2")
    result = train_from_scratch(ctx, dreamerv2)
    assert len(result.returns) == 1
    assert pd.read_csv(tmp_path / "dv2" / "metrics.csv")["step"].max() == 4


def test_cli_pretrain_vid2act(sources: list[str], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "teacher"
    ok = runner.invoke(cli, ["pretrain", "vid2act", "--datasets", ",".join(sources), "--steps", "2",
                             "--out", str(out), "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    assert (out / "teacher.pt").exists() and "cheetah_run" in ok.output
    missing = runner.invoke(cli, ["pretrain", "vid2act", "--datasets", str(tmp_path / "nope.zarr")])
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1
    bad = runner.invoke(cli, ["pretrain", "vid2act", "--datasets", sources[0], "--set", "no_such_field=1"])
    assert bad.exit_code == 2 and "no_such_field" in bad.output


def test_a_crafted_teacher_file_is_never_unpickled(tmp_path: Path) -> None:
    import os
    import pickle

    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    crafted = tmp_path / "teacher.pt"
    crafted.write_bytes(pickle.dumps({"wm_config": Payload()}))
    with pytest.raises(vid2act.OwbenchError, match="teacher.pt is not a plain tensor file"):
        vid2act.load_teacher(crafted)
    assert not marker.exists()
