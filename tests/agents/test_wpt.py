"""WPT: padded multi-embodiment pool, reward-free pretraining artefact, rehearsal batches, reward model on
online rows only, execution guidance schedule, retrieval by the pretrained encoder, online run + resume, CLI."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from agents import retrieval, wpt
from collectors import envs, store
from datasets_cli.main import cli
from short_env import ShortContext

SIZE = 32


def make_dataset(path: Path, env_id: str, action_dim: int, episodes: int = 2, length: int = 12,
                 brightness: int | None = None) -> str:
    """A tiny dataset of random frames (or flat frames of one `brightness`) and random actions."""
    rng = np.random.default_rng(len(env_id) + action_dim)
    writer = store.create_dataset(path, {"env_id": env_id, "quality": "random", "image_size": SIZE,
                                         "action_dim": action_dim},
                                  {"image": (SIZE, SIZE, 3), "state": (action_dim,), "action": (action_dim,),
                                   "physics": (4,)})
    for e in range(episodes):
        flags = np.zeros(length, bool)
        action = rng.uniform(-1, 1, (length, action_dim)).astype(np.float32)
        action[0] = 0
        image = (np.full((length, SIZE, SIZE, 3), brightness, np.uint8) if brightness is not None
                 else rng.integers(0, 256, (length, SIZE, SIZE, 3), dtype=np.uint8))
        writer.append_episode({"image": image, "state": rng.normal(size=(length, action_dim)), "action": action,
                               "reward": rng.normal(size=length), "discount": np.ones(length),
                               "is_first": np.r_[True, flags[1:]], "is_last": np.r_[flags[1:], True],
                               "is_terminal": flags, "physics": np.zeros((length, 4))}, {"return": 0.0, "seed": e})
    return str(path)


@pytest.fixture
def pool(tmp_path: Path) -> list[str]:
    return [make_dataset(tmp_path / "cheetah.zarr", "cheetah_run", 6), make_dataset(tmp_path / "hopper.zarr", "hopper_hop", 4)]


def smoke(**overrides) -> wpt.Config:
    return wpt.Config.preset("smoke", pretrain_steps=2, **overrides)


def test_pool_pads_actions_and_keeps_the_true_dimension(pool: list[str]) -> None:
    data = wpt.Pool(pool, action_pad=8)
    assert data.action_pad == 8 and data.action_dims.tolist() == [6, 4]
    batches = data.sampler(batch_size=16, length=5, seed=0)
    batch = next(batches)
    batches.close()
    assert batch["action"].shape == (16, 5, 8) and "reward" not in batch  # reward-free
    assert set(batch["action_dim"].tolist()) <= {6, 4}
    for action, dim in zip(batch["action"], batch["action_dim"]):
        assert np.all(action[:, dim:] == 0) and np.any(action[:, :dim] != 0)


def test_pretrain_writes_a_reward_free_reusable_world_model(pool: list[str], tmp_path: Path) -> None:
    path = wpt.pretrain(pool, smoke(), seed=0, action_pad=7, out=tmp_path / "wm")
    saved = torch.load(path, weights_only=False)
    assert not any(k.startswith("heads.") for k in saved["state"])  # Eq. 1: no reward / continue heads
    model = wpt.load_pretrained(path)
    assert model.action_pad == 7 and model.pool_env_ids == ["cheetah_run", "hopper_hop"]
    assert (tmp_path / "wm" / "pretrain_metrics.csv").exists()
    mtime = path.stat().st_mtime_ns
    assert wpt.pretrain(pool, smoke(), seed=0, action_pad=7, out=tmp_path / "wm") == path
    assert path.stat().st_mtime_ns == mtime  # reused, not retrained
    agent = wpt.make_agent(envs.spec("walker_walk"), smoke(pretrained=str(path)))
    torch.testing.assert_close(agent.wm.encoder.state_dict(), model.wm.encoder.state_dict())
    assert agent.wm.input_action_dim == 7 and agent.wm.action_dim == 6
    scratch = wpt.make_agent(envs.spec("walker_walk"), smoke(pretrained=str(path), pretrain=False))  # ablation "no P"
    assert not torch.equal(scratch.wm.encoder.convs[0].weight, model.wm.encoder.convs[0].weight)


def online_batch(action_dim: int, batch: int = 4, length: int = 8) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    is_first = np.zeros((batch, length), bool)
    is_first[:, 0] = True
    return {"image": rng.integers(0, 256, (batch, length, SIZE, SIZE, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (batch, length, action_dim)).astype(np.float32),
            "reward": rng.normal(size=(batch, length)).astype(np.float32), "discount": np.ones((batch, length), np.float32),
            "is_first": is_first, "is_last": np.zeros((batch, length), bool), "is_terminal": np.zeros((batch, length), bool),
            "state": np.zeros((batch, length, 24), np.float32)}


def test_rehearsal_mixes_retrieved_windows_and_padding_never_leaks(pool: list[str], tmp_path: Path) -> None:
    hits = [retrieval.Hit(pool[1], 0, 0, 0.0), retrieval.Hit(pool[1], 1, 0, 0.0)]  # hopper: 4 of 8 dims
    retrieved = wpt.write_retrieved(hits, tmp_path / "retrieved.zarr", action_pad=8)
    stored = store.open_dataset(retrieved)
    assert stored.n_episodes == 2 and np.all(stored.read("action")[:, 4:] == 0) and np.all(stored.read("reward") == 0)
    spec = envs.spec("walker_walk")
    agent = wpt.WPTAgent(spec, smoke(action_pad=8), retrieved=retrieved)
    data, online = agent.mix(online_batch(6))
    assert agent.offline_batch == 1 and online == 3  # mix ratio 0.25 of 4: the online windows come first
    is_online = torch.arange(4) < online
    assert data["action"].shape == (4, 8, 8)
    assert torch.all(data["action"][is_online][..., 6:] == 0)  # walker's padding stays zero
    assert torch.all(data["action"][~is_online][..., 4:] == 0)  # hopper's padding stays zero
    metrics = agent.update(online_batch(6))
    assert np.isfinite(list(metrics.values())).all() and "reward_loss" in metrics
    action, _ = agent.act({"image": online_batch(6)["image"][0, 0]}, eval_mode=True)
    assert action.shape == (6,) and np.all(np.abs(action) <= 1)
    agent.retrieved.close()


def test_reward_model_learns_from_online_rows_only(pool: list[str], tmp_path: Path) -> None:
    retrieved = wpt.write_retrieved([retrieval.Hit(pool[0], 0, 0, 0.0)], tmp_path / "r.zarr", action_pad=6)
    agent = wpt.WPTAgent(envs.spec("walker_walk"), smoke(mix_ratio=0.5), retrieved=retrieved)
    seen = []
    original = agent.wm.reward_model.forward
    agent.wm.reward_model.forward = lambda feat: seen.append(tuple(feat.shape[:-1])) or original(feat)
    agent.update(online_batch(6))
    assert seen[0] == (2, 8)  # the reward model's loss sees the 2 online windows of 4, not the retrieved ones
    assert len(agent.wm.heads) == 0  # no reward / continue head inside Eq. 1's world model
    agent.retrieved.close()


@pytest.mark.parametrize("env_id", ["walker_walk", "cartpole_swingup"])  # 6 and 1 action dims
def test_execution_guidance_follows_the_linear_schedule(env_id: str) -> None:
    spec = envs.spec(env_id)
    config = smoke(guidance_steps=100)
    bc = wpt.BCPolicy(SIZE, spec.action_dim, config.bc_depth, config.bc_units, config.bc_layers, config.bc_lr,
                      config.bc_frames, config.bc_feature)
    agent = wpt.WPTAgent(spec, config, bc=bc)
    assert agent.guidance_probability() == 1.0
    windows = [agent.plan_guidance() for _ in range(20)]
    assert all(w is not None and 0 <= w[0] < w[1] <= spec.episode_length for w in windows)
    assert len({w[0] for w in windows}) > 1 and len({w[1] - w[0] for w in windows}) > 1  # random start and duration
    obs = {"image": np.full((SIZE, SIZE, 3), 128, np.uint8)}
    with torch.no_grad():  # π_bc sees 3 stacked frames, the first repeated at an episode's start
        bc_action = bc(torch.as_tensor(np.concatenate([obs["image"]] * 3, -1))[None])[0].numpy()
    action, state = agent.act(obs, (None, 3, (3, 5), None))  # inside the window: π_bc acts
    assert action.shape == bc_action.shape == (spec.action_dim,)
    np.testing.assert_allclose(action, bc_action, atol=1e-6)
    agent.act(obs, state)  # the RSSM steps on from π_bc's action
    assert torch.equal(state[0][1][0], torch.as_tensor(bc_action))  # the RSSM sees the action taken
    action, _ = agent.act(obs, (None, 5, (3, 5), None))  # after it: the RL actor
    assert not np.allclose(action, bc_action)
    agent.env_steps = 50
    assert agent.guidance_probability() == pytest.approx(0.5)
    agent.env_steps = 100
    assert agent.plan_guidance() is None and agent.guidance_probability() == 0.0
    assert agent.act(obs, eval_mode=True)[1][2] is None  # evaluation is never guided
    assert wpt.WPTAgent(spec, smoke()).plan_guidance() is None  # no π_bc ("no G"): never guided
    assert wpt.WPTAgent(envs.spec("mw_assembly"), wpt.Config.preset("smoke")).guidance_steps == 200
    assert wpt.WPTAgent(envs.spec("mw_assembly"), wpt.Config.preset("smoke", guidance_steps=0)).guidance_steps == 150_000


def test_bc_clones_retrieved_actions(tmp_path: Path) -> None:
    location = make_dataset(tmp_path / "bc.zarr", "walker_walk", 6, episodes=2, length=20)
    bc = wpt.BCPolicy(SIZE, 6, depth=8, units=32, layers=1, lr=1e-3)
    first = wpt.train_bc(bc, location, steps=1, batch=16, seed=0, device="cpu")
    last = wpt.train_bc(bc, location, steps=60, batch=16, seed=1, device="cpu")
    assert last < first
    one = wpt.BCPolicy(SIZE, 1, depth=8, units=32, layers=1, lr=1e-3)  # a 1-D action space (cartpole)
    image, action = torch.zeros(4, SIZE, SIZE, 3, dtype=torch.uint8), torch.full((4, 1), 0.5)
    with torch.no_grad():
        expected = 0.5 * (one(image) - action).pow(2).sum(-1).mean().item()  # per-sample squared error, no broadcast
    assert one(image).shape == (4, 1) and one.update(image, action) == pytest.approx(expected, rel=1e-5)


def test_bc_policy_is_app_a1s(tmp_path: Path) -> None:
    """App. A.1: 3 stacked frames (9 input channels), conv [32, 64, 128, 256], a LayerNorm + tanh trunk of 50,
    then LayerNorm MLP layers of 1024; acting stacks the last 3 frames, oldest first."""
    paper = wpt.Config.preset("paper")
    assert (paper.bc_frames, paper.bc_depth, paper.bc_feature, paper.bc_units, paper.bc_layers) == (3, 32, 50, 1024, 2)
    bc = wpt.BCPolicy(64, 6, paper.bc_depth, paper.bc_units, paper.bc_layers, paper.bc_lr, paper.bc_frames,
                      paper.bc_feature)
    convs = [m for m in bc.encoder.convs if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(9, 32), (32, 64), (64, 128), (128, 256)]
    linears = [m for m in [*bc.trunk, *bc.head] if isinstance(m, torch.nn.Linear)]
    assert [lin.out_features for lin in linears] == [50, 1024, 1024, 6]
    norms = [m.normalized_shape for m in [*bc.trunk, *bc.head] if isinstance(m, torch.nn.LayerNorm)]
    assert norms == [(50,), (1024,), (1024,)]
    spec, config = envs.spec("walker_walk"), smoke(guidance_steps=100)
    small = wpt.BCPolicy(SIZE, 6, config.bc_depth, config.bc_units, config.bc_layers, config.bc_lr, 3,
                         config.bc_feature)
    agent = wpt.WPTAgent(spec, config, bc=small)
    frames = [np.full((SIZE, SIZE, 3), v, np.uint8) for v in (10, 120, 250, 60)]
    state = (None, 0, (0, 10), None)
    for frame in frames:
        action, state = agent.act({"image": frame}, state)
    with torch.no_grad():
        expected = small(torch.as_tensor(np.concatenate(frames[1:], -1))[None])[0].numpy()
    np.testing.assert_allclose(action, expected, atol=1e-6)
    location = make_dataset(tmp_path / "bc.zarr", "walker_walk", 6, episodes=1, length=10)
    assert np.isfinite(wpt.train_bc(small, location, steps=2, batch=4, seed=0, device="cpu"))


def test_no_pretraining_keeps_the_pools_action_size(pool: list[str], tmp_path: Path) -> None:
    """wpt-no-p: retrieved windows carry the pool's padded actions (hopper 4, cheetah 6 -> 6 here, 12 with a
    quadruped); the model takes that size, and a model narrower than the data is an error, never a crop."""
    hits = [retrieval.Hit(pool[0], 0, 0, 0.0), retrieval.Hit(pool[1], 0, 0, 0.0)]
    retrieved = wpt.write_retrieved(hits, tmp_path / "retrieved.zarr", action_pad=12)
    spec = envs.spec("walker_walk")  # 6 action dims, a pool padded to 12
    agent = wpt.WPTAgent(spec, smoke(mix_ratio=0.5), retrieved=retrieved, action_pad=12)
    assert store.open_dataset(retrieved).episode(0)["action"].shape[1] == agent.wm.input_action_dim == 12
    data, _ = agent.mix(online_batch(6))
    assert data["action"].shape[-1] == 12 and np.isfinite(list(agent.update(online_batch(6)).values())).all()
    narrow = wpt.WPTAgent(spec, smoke(mix_ratio=0.5), retrieved=retrieved)  # the old no-P model: the target's 6
    with pytest.raises(ValueError, match="12 dims but the model takes 6"):
        narrow.mix(online_batch(6))
    agent.retrieved.close()
    narrow.retrieved.close()


def test_metaworld_repeats_actions_twice_in_training_and_evaluation(tmp_path: Path) -> None:
    """Table 5: action repeat 2 for the fine-tuning, Meta-World included (its tasks repeat 1)."""
    from agents.online import OnlineConfig

    assert wpt.Config.preset("paper").online.action_repeat == 2
    online = OnlineConfig(action_repeat=2)
    assert online.spec(envs.spec("mw_assembly")).action_repeat == 2 and online.repeat(envs.spec("walker_walk")) == 1
    assert online.spec(envs.spec("mw_assembly")).episode_length == envs.spec("mw_assembly").episode_length // 2
    env = online.make_env(lambda: envs.make("mw_reach", image_size=SIZE))()
    plain = envs.make("mw_reach", image_size=SIZE)
    try:
        env.reset(seed=3)
        plain.reset(seed=3)
        action = np.full(4, 0.5, np.float32)
        _, reward, *_ = env.step(action)
        expected = sum(plain.step(action)[1] for _ in range(2))
        assert reward == pytest.approx(expected) and env.spec.action_repeat == 2
        np.testing.assert_allclose(env.physics_state(), plain.physics_state())
    finally:
        env.close()
        plain.close()


def context(run_dir: Path, datasets: list[str], steps: int, **overrides) -> ShortContext:
    return ShortContext(method="wpt", env_id="walker_walk", datasets=datasets, run_dir=run_dir, preset="smoke",
                        steps=steps, eval_every=4, eval_episodes=1, checkpoint_every=4, log_every=2, seed=0,
                        device="cpu", image_size=SIZE, progress=False, overrides={"pretrain_steps": 2, **overrides})


def test_finetuning_retrieves_guides_checkpoints_and_resumes(pool: list[str], tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    result = wpt.train(context(run_dir, pool, steps=8))
    assert len(result.returns) == 1 and result.frames is not None
    for name in ("eval.csv", "metrics.csv", "retrieval.index", "retrieved.csv", "retrieved.zarr", "checkpoints/latest.pt"):
        assert (run_dir / name).exists(), name
    index = retrieval.RetrievalIndex.load(run_dir / "retrieval.index")
    assert index.ntotal == 4 and index.meta["encoder"].startswith("wpt:")  # the pretrained encoder keys the pool
    assert len(pd.read_csv(run_dir / "retrieved.csv")) == 2
    assert torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)["step"] == 8
    wpt.train(context(run_dir, pool, steps=10))  # resumes from update 8
    steps = pd.read_csv(run_dir / "metrics.csv")["step"]
    assert steps.is_unique and steps.max() == 10


def test_ablation_without_pretraining_rehearsal_or_guidance(pool: list[str], tmp_path: Path, owbench_home: Path) -> None:
    run_dir = tmp_path / "bare"
    wpt.train(context(run_dir, pool, steps=2, pretrain=False, rehearsal=False, guidance=False))
    assert not (run_dir / "retrieved.zarr").exists() and not (owbench_home / "pretrained").exists()
    wpt.train(context(tmp_path / "g", pool, steps=2, pretrain=False, rehearsal=False))  # G alone retrieves with pixels
    assert retrieval.RetrievalIndex.load(tmp_path / "g" / "retrieval.index").meta["encoder"] == "pixels"


def test_no_p_finetuning_with_a_wider_embodiment_in_the_pool(pool: list[str], tmp_path: Path) -> None:
    """wpt-no-p on a walker target (6 dims) with a quadruped (12 dims) in the pool: the retrieved data and the
    model both take 12-dim actions (before issue 16 the model took 6 and F.pad cropped the quadruped's)."""
    quadruped = make_dataset(tmp_path / "quadruped.zarr", "quadruped_walk", 12)
    run_dir = tmp_path / "no-p"
    wpt.train(context(run_dir, [*pool, quadruped], steps=2, pretrain=False, guidance=False, retrieve=6))
    assert "quadruped_walk" in set(pd.read_csv(run_dir / "retrieved.csv")["env_id"])
    assert store.open_dataset(run_dir / "retrieved.zarr").arrays["action"].shape[1] == 12
    state = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=False)["agent"]["wm"]
    stoch = wpt.Config.preset("smoke").dreamer.wm
    assert state["rssm.img_in.0.weight"].shape[1] == stoch.stoch * stoch.classes + 12  # z_{t-1} and a padded a_{t-1}


def test_pretrained_encoder_retrieves_the_query_task(tmp_path: Path) -> None:
    dark = make_dataset(tmp_path / "dark.zarr", "walker_walk", 6, brightness=20)
    light = make_dataset(tmp_path / "light.zarr", "cheetah_run", 6, brightness=230)
    path = wpt.pretrain([dark, light], smoke(), out=tmp_path / "wm")
    extractor = retrieval.make_extractor(f"wpt:{path}")
    frames = np.full((2, SIZE, SIZE, 3), 30, np.uint8)
    np.testing.assert_array_equal(retrieval.make_extractor(f"wpt:{tmp_path / 'wm'}")(frames), extractor(frames))  # --out dir
    index = retrieval.build_retrieval_index([dark, light], extractor)
    hits = index.query(np.full((SIZE, SIZE, 3), 30, np.uint8), extractor, k=2)[0]
    assert [h.dataset for h in hits] == [dark, dark]


def test_cli_pretrain_wpt(pool: list[str], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "wm"
    ok = runner.invoke(cli, ["pretrain", "wpt", "--pool", ",".join(pool), "--steps", "2", "--image-size", str(SIZE),
                             "--out", str(out), "--device", "cpu"])
    assert ok.exit_code == 0, ok.output
    assert (out / "world_model.pt").exists() and "hopper_hop" in ok.output
    missing = runner.invoke(cli, ["pretrain", "wpt", "--pool", str(tmp_path / "nope.zarr")])
    assert missing.exit_code == 2 and len(missing.output.strip().splitlines()) == 1
    wrong_size = runner.invoke(cli, ["pretrain", "wpt", "--pool", pool[0], "--image-size", "64"])
    assert wrong_size.exit_code == 2 and "--image-size 32" in wrong_size.output
