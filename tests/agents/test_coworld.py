"""CoWorld: its three losses, multi-source selection, the target/source updates, the schedule of
Algorithm 1, the online source buffer, and (slow) train() end to end with resume."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from agents import coworld
from agents.coworld import Config, Progress, ValueConstrainedActorCritic, candidate_sources, make_agent
from agents.coworld_losses import (domain_kl, max_min_value_loss, reduce_domain_kl, relabel_source_reward,
                                   reward_loss_weights, select_source)
from agents.online import Replay
from agents.world_model import WorldModel, to_torch
from agents.training import TrainContext, to_floats
from collectors import envs
from collectors.errors import OwbenchError

SPEC = envs.spec("walker_downhill")


def batch(cfg: Config, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    B, T, S, A = cfg.batch_size, cfg.seq_len, cfg.image_size, SPEC.action_dim
    is_first = np.zeros((B, T), bool)
    is_first[:, 0] = True
    return {"image": rng.integers(0, 255, (B, T, S, S, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (B, T, A)).astype(np.float32),
            "reward": rng.uniform(0, 1, (B, T)).astype(np.float32), "discount": np.ones((B, T), np.float32),
            "is_first": is_first, "is_last": np.zeros((B, T), bool), "is_terminal": np.zeros((B, T), bool)}


# -- the losses ---------------------------------------------------------------------------------------

def test_domain_kl_is_zero_when_encoders_agree_and_positive_otherwise():
    e = torch.randn(3, 5, 16)
    assert torch.allclose(domain_kl(e, e.clone()), torch.zeros(3, 5), atol=1e-6)
    assert (domain_kl(e, torch.randn(3, 5, 16)) > 0).all()


def test_domain_kl_gradient_reaches_only_the_target_encoder():
    torch.manual_seed(0)
    cfg = Config.preset("smoke")
    source, target = WorldModel(cfg.wm, SPEC.action_dim), WorldModel(cfg.wm, SPEC.action_dim)
    image = torch.randint(0, 255, (2, 3, cfg.image_size, cfg.image_size, 3), dtype=torch.uint8)
    domain_kl(source.encode(image), target.encode(image)).mean().backward()
    assert all(p.grad is None for p in source.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in target.encoder.parameters())


def test_max_min_term_has_zero_gradient_where_the_source_value_is_larger():
    target = torch.tensor([1.0, 5.0, -2.0], requires_grad=True)
    source = torch.tensor([3.0, 1.0, 0.0], requires_grad=True)
    zeta = 2.0
    loss = max_min_value_loss(target, source, zeta)
    assert torch.allclose(loss, torch.tensor([3.0, 10.0, 0.0]))
    loss.sum().backward()
    assert torch.allclose(target.grad, torch.tensor([0.0, zeta, 0.0]))  # only where ζ·v_T > v_S
    assert source.grad is None


def test_relabelled_rewards_mix_as_specified():
    predicted = torch.tensor([1.0, 2.0, 0.0], requires_grad=True)
    reward = torch.tensor([0.0, 1.0, 4.0])
    k = 0.3
    label = relabel_source_reward(predicted, reward, k)
    assert torch.allclose(label, k * predicted.detach() + (1 - k) * reward)
    assert not label.requires_grad  # a label: sg(r̂_S)
    assert torch.allclose(relabel_source_reward(predicted, reward, 1.0), predicted.detach())
    assert torch.allclose(relabel_source_reward(predicted, reward, 0.0), reward)


def test_select_source_is_one_hot_on_the_smallest_kl():
    omega = select_source(torch.tensor([0.7, 0.2, 0.5]))
    assert omega.tolist() == [0.0, 1.0, 0.0]


# -- the agent ----------------------------------------------------------------------------------------

def test_target_update_trains_the_target_and_leaves_the_source_untouched():
    cfg = Config.preset("smoke")
    agent = make_agent(SPEC, cfg, "cpu", seed=0)
    source_before = {k: v.clone() for k, v in agent.sources[0].state_dict()["wm"].items()}
    target_before = agent.target.wm.encoder.convs[0].weight.clone()
    metrics = agent.update(batch(cfg))
    for key in ("model_loss", "domain_kl", "critic_loss", "actor_loss", "value_constraint", "source_value"):
        assert np.isfinite(metrics[key]), key
    assert metrics["domain_kl"] > 0
    assert all(torch.equal(v, agent.sources[0].state_dict()["wm"][k]) for k, v in source_before.items())
    assert not torch.equal(target_before, agent.target.wm.encoder.convs[0].weight)


def test_ablation_switches_remove_their_terms():
    cfg = Config.preset("smoke", domain_alignment=False, value_constraint=False, reward_modulation=False)
    agent = make_agent(SPEC, cfg, "cpu", seed=0)
    metrics = agent.update(batch(cfg))
    assert "value_constraint" not in metrics
    source_metrics = agent.update_source(0, batch(cfg, 1), batch(cfg, 2))
    assert "target_reward_loss" not in source_metrics


def _critic_grads(agent, data, source_value: float | None) -> list[torch.Tensor]:
    behavior: ValueConstrainedActorCritic = agent.target.behavior
    behavior.source_value = None if source_value is None else (lambda f: torch.full(f.shape[:-1], source_value))
    torch.manual_seed(1)
    post, _, _ = agent.target.wm.observe(data)
    _, critic_loss, _ = behavior.loss(agent.target.wm, post, data["discount"])
    return list(torch.autograd.grad(critic_loss, list(behavior.critic.parameters())))


def test_value_constraint_is_inactive_below_the_source_value_and_pulls_down_above_it():
    cfg = Config.preset("smoke")
    agent = make_agent(SPEC, cfg, "cpu", seed=0)
    data = to_torch(batch(cfg), "cpu")
    plain = _critic_grads(agent, data, None)
    above = _critic_grads(agent, data, 1e6)  # source value larger everywhere: no gradient from Eq. 6
    below = _critic_grads(agent, data, -1e6)  # target value larger everywhere: Eq. 6 pushes v_T down
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, above))
    assert any(not torch.allclose(a, b, atol=1e-6) for a, b in zip(plain, below))


def test_source_update_fits_relabelled_target_rewards():
    cfg = Config.preset("smoke")
    agent = make_agent(SPEC, cfg, "cpu", seed=0)
    metrics = agent.update_source(0, batch(cfg, 1), batch(cfg, 2))
    assert np.isfinite(metrics["target_reward_loss"]) and np.isfinite(metrics["model_loss"])
    assert "target_reward_loss" not in agent.update_source(0, batch(cfg, 1))  # pretraining: source data only


def test_multi_source_selects_the_source_whose_encoder_matches_the_target():
    cfg = Config.preset("smoke", source_mode="multi-source", sources=("cheetah_run", "walker_run"))
    assert candidate_sources(cfg, "walker_walk") == ["walker_walk", "cheetah_run", "walker_run"]
    assert candidate_sources(cfg, "walker_walk", "walker_run") == ["walker_walk", "cheetah_run"]
    mw = Config.preset("smoke", domain="metaworld", source_mode="multi-source")
    assert candidate_sources(mw, "mw_button-press", "mw_door-close") == [
        "mw_button-press", "mw_window-close", "mw_button-press-topdown", "mw_drawer-close"]
    agent = make_agent(SPEC, cfg, "cpu", seed=0)
    assert len(agent.sources) == 3
    agent.sources[1].wm.encoder.load_state_dict(agent.target.wm.encoder.state_dict())
    metrics = agent.update(batch(cfg))
    assert agent.selected == 1
    assert metrics["domain_kl_1"] < 1e-5 < min(metrics["domain_kl_0"], metrics["domain_kl_2"])
    feat = torch.randn(5, agent.target.wm.feat_dim)  # v_S is the selected source's critic (chosen on the device)
    with torch.no_grad():
        assert torch.equal(agent.target.behavior.source_value(feat), agent.sources[1].behavior.critic(feat))


def test_state_dict_round_trip_and_act():
    cfg = Config.preset("smoke")
    agent, other = make_agent(SPEC, cfg, "cpu", seed=0), make_agent(SPEC, cfg, "cpu", seed=1)
    agent.update(batch(cfg))
    other.load_state_dict(agent.state_dict())
    obs = {"image": np.zeros((cfg.image_size, cfg.image_size, 3), np.uint8), "state": np.zeros(SPEC.state_dim)}
    a1, _ = agent.act(obs, eval_mode=True)
    a2, _ = other.act(obs, eval_mode=True)
    assert a1.shape == (SPEC.action_dim,) and np.allclose(a1, a2)
    with pytest.raises(OwbenchError, match="source agents"):
        make_agent(SPEC, cfg, "cpu", n_sources=2).load_state_dict(agent.state_dict())


# -- config and schedule ---------------------------------------------------------------------------------

def test_presets_follow_the_papers_and_the_code():
    dmc, mw = Config.preset("paper", domain="dmc"), Config.preset("paper", domain="metaworld")
    # NeurIPS Table 8's k (0.9 DMC, 0.3 Meta-World) weighs r_T: the source prediction gets 1 - k
    assert (dmc.beta2, dmc.reward_k, dmc.alpha) == (1.5, 0.1, 1.0)
    assert (mw.beta2, mw.reward_k, mw.alpha) == (1.0, 0.7, 2.0)
    assert relabel_source_reward(torch.tensor([1.0]), torch.tensor([0.0]), dmc.reward_k).item() == pytest.approx(0.1)
    v1 = Config.preset("arxiv-v1")
    assert (v1.beta2, v1.reward_k, v1.alpha, v1.batch_size, v1.behavior.gamma) == (1.5, 0.2, 0.2, 50, 0.995)
    code = Config.preset("code")
    assert code.wm.classes == 0 and code.wm.stoch == 50 and code.batch_size == 150 and code.reward_k == 0.7
    assert Config.preset("smoke", beta2=0.0, deter=16).wm.deter == 16
    with pytest.raises(OwbenchError, match="preset"):
        Config.preset("huge")
    with pytest.raises(OwbenchError, match="source_mode"):
        Config.preset("smoke", source_mode="all")
    with pytest.raises(OwbenchError, match="source task"):
        candidate_sources(Config.preset("smoke"), None)


@pytest.mark.parametrize("name", ["smoke", "quick", "paper", "arxiv-v1", "code"])
@pytest.mark.parametrize("domain", ["dmc", "metaworld"])
def test_no_preset_trains_a_discount_head(name, domain):
    # released code: pred_discount False for every domain; episodes end only at the time limit
    assert not Config.preset(name, domain=domain).wm.discount_head
    assert Config.preset(name, domain=domain, discount_head=True).wm.discount_head  # still an override


def test_code_preset_reproduces_the_released_schedule():
    dmc, mw = Config.preset("code", domain="dmc"), Config.preset("code", domain="metaworld")
    # eval_every 1e4 / action repeat (2 DMC, 1 MW) agent steps per loop, one update per train_every = 5 steps
    assert (dmc.target_steps, dmc.source_steps, dmc.pretrain_steps) == (2_000, 2_000, 3_100)
    assert (mw.target_steps, mw.source_steps, mw.pretrain_steps) == (10_000, 4_000, 6_100)
    assert (dmc.warmup_rounds, dmc.warmup_steps, dmc.warmup_source_steps) == (2, 5_000, 1_000)
    assert (mw.warmup_rounds, mw.warmup_steps, mw.warmup_source_steps) == (2, 10_000, 2_000)
    assert dmc.domain_kl_reduction == "batchmean" and (dmc.reward_anneal, dmc.reward_anneal_min) == (200_000, 0.2)
    assert dmc.wm.layers == 2 and dmc.wm.weight_decay == dmc.behavior.weight_decay == 0.0  # reward_layers 2, wd 0
    paper = Config.preset("paper")
    assert paper.warmup_rounds == 0 and paper.reward_anneal == 0 and paper.domain_kl_reduction == "mean"


def test_reward_loss_weights_anneal_as_the_released_code():
    assert reward_loss_weights(123_456, 0, 0.2) == (1.0, 1.0)  # Eq. 5 as written
    assert reward_loss_weights(2_500, 200_000, 0.2) == pytest.approx((0.9875, 0.0125))  # code, DMC: frozen at prefill
    assert reward_loss_weights(190_000, 200_000, 0.2) == pytest.approx((0.2, 0.8))


def test_batchmean_domain_kl_is_the_per_step_mean_times_the_sequence_length():
    kl = torch.rand(4, 7)
    assert reduce_domain_kl(kl, "batchmean") == pytest.approx(7 * reduce_domain_kl(kl, "mean").item())
    with pytest.raises(OwbenchError, match="domain_kl_reduction"):
        Config.preset("smoke", domain_kl_reduction="sum")


def test_warmup_updates_only_the_target_world_model():
    cfg = Config.preset("smoke")
    agent = make_agent(SPEC, cfg, "cpu", seed=0)
    behavior = {k: v.clone() for k, v in agent.target.behavior.state_dict().items()}
    model = {k: v.clone() for k, v in agent.target.wm.state_dict().items()}
    metrics = agent.update(batch(cfg), behavior=False)
    assert "domain_kl" in metrics and "critic_loss" not in metrics
    assert all(torch.equal(v, agent.target.behavior.state_dict()[k]) for k, v in behavior.items())
    assert any(not torch.equal(v, agent.target.wm.state_dict()[k]) for k, v in model.items())


def test_source_update_weights_the_reward_terms_by_eta():
    runs = {}
    for anneal in (0, 200_000):  # same seed, parameters and data: the losses differ only by the reward weights
        cfg = Config.preset("smoke", reward_anneal=anneal)
        agent = make_agent(SPEC, cfg, "cpu", seed=0)
        stepped = []
        agent.sources[0].wm.opt.step = lambda loss: stepped.append(loss.item()) or 0.0
        metrics = agent.update_source(0, batch(cfg, 1), batch(cfg, 2), step=190_000)
        runs[anneal] = (stepped[0], to_floats(metrics))
    (paper, m), (code, _) = runs[0], runs[200_000]
    assert m["reward_eta"] == 1.0 and runs[200_000][1]["reward_eta"] == pytest.approx(0.2)
    rs = Config.preset("smoke").wm.reward_scale
    # Eq. 5 as written: S + T; the code at η = 0.2: 0.2·S + 0.8·T
    assert code - paper == pytest.approx(rs * (-0.8 * m["reward_loss"] - 0.2 * m["target_reward_loss"]), rel=1e-4)


def test_progress_with_the_code_warmup():
    cfg = Config.preset("smoke", pretrain_steps=1, warmup_rounds=2, warmup_steps=2, warmup_source_steps=1,
                        target_steps=3, source_steps=2)
    progress, phases = Progress(), []
    while (phase := progress.phase(cfg, steps=5)) != "done":
        phases.append(phase[0])
        setattr(progress, phase, getattr(progress, phase) + 1)
    assert "".join(phases) == "p" + "ww" + "s" + "ww" + "s" + "ttt" + "ss" + "tt"
    assert coworld.updates_per_run(cfg, 5) == {"pretrain": 1, "warmup": 4, "target": 5, "source": 4}


def test_progress_follows_algorithm_1():
    cfg = Config.preset("smoke", pretrain_steps=2, target_steps=3, source_steps=2)
    progress, phases = Progress(), []
    while (phase := progress.phase(cfg, steps=7)) != "done":
        phases.append(phase[0])
        setattr(progress, phase, getattr(progress, phase) + 1)
    assert "".join(phases) == "pp" + "ttt" + "ss" + "ttt" + "ss" + "t"


# -- the online source domain and train() ---------------------------------------------------------------

def test_source_domain_collects_into_a_replay_that_reloads(tmp_path):
    cfg = Config.preset("smoke")
    agent = make_agent(SPEC, cfg, "cpu")
    path, rng = tmp_path / "buffer.zarr", np.random.default_rng(0)
    domain = coworld.SourceDomain(envs.make("walker_walk", image_size=cfg.image_size), agent.sources[0],
                                  Replay(path, "walker_walk"), seed=0)
    domain.interact(6, rng, random_actions=True)
    domain.interact(4, rng)  # the source policy acts
    assert domain.replay.steps == 11  # reset row + 10 steps, episode still running
    sample = domain.replay.sample(rng, 3, cfg.seq_len)
    assert sample["image"].shape == (3, cfg.seq_len, cfg.image_size, cfg.image_size, 3)
    assert not sample["is_first"][:, 1:].any()  # one episode: is_first only where a window starts at its reset
    domain.replay.finish({"return": 0.0, "success": False, "seed": 0})  # an episode end is committed
    domain.close()
    assert len(Replay(path, "walker_walk").episodes) == 1


def _ctx(tmp_path: Path, dataset: str, steps: int) -> TrainContext:
    return TrainContext(method="coworld", env_id="walker_downhill", source_env_id="walker_walk", datasets=[dataset],
                        run_dir=tmp_path / "run", preset="smoke", steps=steps, eval_every=4, eval_episodes=1,
                        checkpoint_every=5, log_every=2, seed=0, image_size=32, overrides={"prefill": 10},
                        progress=False)


@pytest.mark.slow
def test_train_runs_algorithm_1_and_resumes(tmp_path):
    from collectors.collect import ensure_dataset

    dataset = ensure_dataset("walker_downhill", "random", episodes=2, image_size=32, variant="smoke",
                             max_episode_steps=20)
    ctx = _ctx(tmp_path, dataset, steps=4)
    result = coworld.train(ctx)
    assert len(result.returns) == 1 and result.frames is not None
    run = Path(ctx.run_dir)
    checkpoint = lambda: torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["progress"]  # noqa: E731
    assert checkpoint() == {"pretrain": 3, "warmup": 0, "target": 4, "source": 0}
    columns = next(csv.reader(open(run / "metrics.csv")))
    assert {"source0/model_loss", "domain_kl", "value_constraint", "selected_0", "source_env_steps"} <= set(columns)
    coworld.train(_ctx(tmp_path, dataset, steps=9))  # resume: a source phase, then 5 more target updates
    assert checkpoint() == {"pretrain": 3, "warmup": 0, "target": 9, "source": 6}
    columns = next(csv.reader(open(run / "metrics.csv")))
    assert "source0/target_reward_loss" in columns
    steps = [int(r["step"]) for r in csv.DictReader(open(run / "eval.csv"))]
    assert steps == [4, 8, 9]


# -- learning check: CoWorld vs offline DreamerV2 at the same budget and seeds ---------------------------

def learning_check(out: Path, updates: int, dataset_episodes: int, eval_episodes: int, seeds: tuple[int, ...] = (0,),
                   coworld_overrides: dict | None = None, model: dict | None = None, variant: str = "smoke",
                   dataset: str | None = None) -> dict[str, list[float]]:
    """walker_walk (online source) -> walker_downhill (offline medium-replay target, 32 px): CoWorld and
    offline DreamerV2 with the same model size, target update budget, data and seeds, and the random policy
    on the same evaluation seeds. Returns the final evaluation returns of each method over all seeds and
    writes `out/table.md`. `dataset` overrides the collected one (e.g. `owbench collect`'s default location)."""
    from baselines import dreamerv2, random_policy
    from agents.protocol import evaluate, normalized_score
    from agents.training import train_offline
    from collectors.collect import ensure_dataset
    from collectors.reference import reference_returns

    dataset = dataset or ensure_dataset("walker_downhill", "medium-replay", episodes=dataset_episodes, image_size=32,
                                        variant=variant)
    model = {"discount_head": False, **(model or {})}  # both without: CoWorld's presets and DreamerV2's DMC config
    returns: dict[str, list[float]] = {"dreamerv2": [], "coworld": [], "random": []}
    for seed in seeds:
        run = dict(env_id="walker_downhill", datasets=[dataset], preset="smoke", steps=updates, eval_every=0,
                   eval_episodes=eval_episodes, checkpoint_every=0, log_every=50, seed=seed, device="cpu",
                   image_size=32, progress=False)
        dv2 = train_offline(TrainContext(method="dreamerv2", run_dir=out / f"dreamerv2/seed{seed}", overrides=model,
                                         **run), dreamerv2)
        cw = coworld.train(TrainContext(method="coworld", source_env_id="walker_walk", run_dir=out / f"coworld/seed{seed}",
                                        overrides={**model, **(coworld_overrides or {})}, **run))
        randomly = evaluate(random_policy.make_agent(SPEC, random_policy.Config(), "cpu", seed),
                            lambda: envs.make("walker_downhill", image_size=32), eval_episodes, training_seed=seed)
        for method, result in (("dreamerv2", dv2), ("coworld", cw), ("random", randomly)):
            returns[method] += result.returns.tolist()
    ref = reference_returns("walker_downhill")
    lines = ["| method | target return (walker_downhill) | normalised score | episodes x seeds |", "|---|---|---|---|"]
    lines += [f"| {m} | {np.mean(r):.1f} ± {np.std(r):.1f} | {np.mean(normalized_score(r, ref.random, ref.expert)):.1f} "
              f"| {eval_episodes} x {len(seeds)} |" for m, r in returns.items()]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    return returns


@pytest.mark.slow
def test_learning_check_against_offline_dreamerv2(tmp_path):
    returns = learning_check(tmp_path, updates=4, dataset_episodes=1, eval_episodes=1,
                             coworld_overrides={"prefill": 10})
    assert set(returns) == {"dreamerv2", "coworld", "random"}
    assert all(len(r) == 1 and np.isfinite(r).all() for r in returns.values())
    assert (tmp_path / "table.md").read_text().count("\n") == 5
