"""LOMPO on the shared world model, with synthetic sequence batches."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from baselines import lompo
from benchmark.methods import get_method
from collectors.envs.base import EnvSpec

SPEC = EnvSpec(id="synthetic", suite="dmc", action_dim=2, state_dim=4, action_repeat=2, time_limit=20, camera=0)


def sequence_batch(rng: np.random.Generator, batch: int = 4, length: int = 8) -> dict:
    is_first = np.zeros((batch, length), bool)
    is_first[:, 0] = True
    is_first[0, length // 2] = True  # one window crosses into a new episode
    return {"image": rng.integers(0, 256, (batch, length, 32, 32, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (batch, length, 2)).astype(np.float32),
            "reward": rng.normal(size=(batch, length)).astype(np.float32),
            "discount": np.ones((batch, length), np.float32), "is_first": is_first,
            "is_last": np.zeros((batch, length), bool), "is_terminal": np.zeros((batch, length), bool)}


def make(**overrides) -> lompo.LOMPOAgent:
    config = lompo.Config.preset("smoke", image_size=32, **overrides)
    return get_method("lompo").load().make_agent(SPEC, config, "cpu", seed=0)


@pytest.mark.parametrize("classes", [0, 4])  # Gaussian (LOMPO) and discrete (DreamerV2) latents
def test_model_then_agent_updates_act_and_checkpoint(classes: int) -> None:
    rng = np.random.default_rng(0)
    agent = make(classes=classes)
    model_metrics = agent.update(sequence_batch(rng))
    assert {"model_loss", "kl"} <= model_metrics.keys()
    agent.update(sequence_batch(rng))
    metrics = agent.update(sequence_batch(rng))  # past model_train_steps: the actor-critic phase
    assert {"critic_loss", "actor_loss", "imag_penalty", "real_reward"} <= metrics.keys()
    assert all(np.isfinite(v) for v in metrics.values()) and metrics["imag_penalty"] >= 0

    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    action, state = agent.act({"image": image})
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
    a1, _ = agent.act({"image": image}, state, eval_mode=True)
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    restored = make(classes=classes)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert restored.updates == agent.updates
    np.testing.assert_allclose(restored.act({"image": image}, state, eval_mode=True)[0], a1, rtol=1e-5, atol=1e-6)


def test_ensemble_disagrees_more_off_the_data() -> None:
    """The uncertainty penalty: heads fitted to the data's posterior agree there, not elsewhere."""
    agent = make(model_train_steps=10**6, prior_heads=5)
    batch = sequence_batch(np.random.default_rng(1))
    for _ in range(60):
        agent.update(batch)
    with torch.no_grad():
        post, _, _ = agent.wm.observe(lompo.to_torch(batch, "cpu"))
        deter = post["deter"].reshape(-1, post["deter"].shape[-1])
        far = deter + 3 * torch.randn_like(deter)  # states the data never visited

        def disagreement(d: torch.Tensor) -> float:
            stats = agent.wm.rssm.priors(d)
            stoch = agent.wm.rssm.sample(stats[0])
            return float(lompo.uncertainty_penalty(agent.wm, stats, stoch).mean())

        assert disagreement(far) > disagreement(deter)


def test_ensemble_heads_are_the_world_model_prior_one_per_timestep() -> None:
    """As the reference's RSSME: the prior in the world-model KL is one randomly drawn ensemble head
    per timestep (the same head for the whole batch), so the heads learn inside the world-model loss
    and the encoder / GRU are shaped by them (not fitted afterwards to a detached posterior)."""
    agent = make(model_train_steps=10**6)
    rssm, data = agent.wm.rssm, lompo.to_torch(sequence_batch(np.random.default_rng(3)), "cpu")
    torch.manual_seed(0)
    post, prior, _ = agent.wm.observe(data)
    heads = rssm.priors(post["deter"])  # (K, B, T, S)
    assert heads.shape[0] == agent.config.wm.prior_heads == 3
    drawn = []
    for t in range(prior.shape[1]):
        match = [k for k in range(len(heads)) if torch.allclose(prior[:, t], heads[k, :, t])]
        assert len(match) == 1, f"timestep {t}: the prior is not one head for the whole batch"
        drawn.append(match[0])
    assert len(set(drawn)) > 1, drawn  # drawn afresh per timestep (P(all equal) = 3 * 3^-8)
    heads_before = [[p.clone() for p in head.parameters()] for head in [rssm.img_out, *rssm.img_ensemble]]
    agent.update(sequence_batch(np.random.default_rng(3)))  # a world-model update, nothing else
    learnt = [any(not torch.equal(a, b) for a, b in zip(before, head.parameters()))
              for before, head in zip(heads_before, [rssm.img_out, *rssm.img_ensemble])]
    assert sum(learnt) >= 2, learnt  # the heads drawn in this batch learn from the world-model loss
    loss = lambda: float(agent.wm.loss(data)[0].detach())  # noqa: E731
    torch.manual_seed(1)
    reference = loss()
    with torch.no_grad():
        for head in rssm.img_ensemble:
            head[-1].bias.add_(1.0)
    torch.manual_seed(1)
    assert loss() != reference  # the heads are the prior inside the world-model objective


def test_imagined_buffer_warms_up_from_every_state_then_tops_up() -> None:
    """Imagined transitions go through the FIFO latent buffer: the first agent update imagines from every
    posterior state of the batch (below `imagined_warmup`), later ones from `rollout_batch` states."""
    agent = make(model_train_steps=0, imagined_warmup=10, rollout_batch=3)
    c, rng = agent.config, np.random.default_rng(2)
    first = agent.update(sequence_batch(rng))
    assert first["imagined_stored"] == 4 * 8 * c.horizon  # B x T starts, no discount head: all alive
    second = agent.update(sequence_batch(rng))
    assert second["imagined_stored"] == first["imagined_stored"] + 3 * c.horizon


def test_latent_buffer_keeps_the_newest_rows() -> None:
    buffer = lompo.LatentBuffer(5, feat_dim=2, action_dim=1, device=torch.device("cpu"))
    rows = lambda lo, hi: (torch.arange(lo, hi).float()[:, None].repeat(1, 2), torch.zeros(hi - lo, 1),  # noqa: E731
                           torch.zeros(hi - lo), torch.ones(hi - lo), torch.zeros(hi - lo, 2),
                           (torch.arange(lo, hi) != 4).float())  # valid: all but row 4 (after a termination)
    buffer.add(rows(0, 3))
    buffer.add(rows(3, 7))
    assert len(buffer) == 5 and sorted(buffer.columns[0][:, 0].tolist()) == [2, 3, 4, 5, 6]
    feat, action, reward, discount, next_feat = buffer.sample(64)
    assert feat.shape == (64, 2) and action.shape == (64, 1) and reward.shape == discount.shape == (64,)
    assert set(feat[:, 0].tolist()) == {2, 3, 5, 6}  # uniform among the valid rows, never the invalid one
    buffer.add(rows(10, 30))  # more than the capacity at once: the last five
    assert sorted(buffer.columns[0][:, 0].tolist()) == [25, 26, 27, 28, 29]


def test_conservative_term_values_the_data_actions_above_unseen_ones() -> None:
    """The released code's CQL term (`conservative_weight`, V-D4RL's `alpha`) pushes Q down at uniform random
    actions and up at the dataset's: with it, the critics rank the data's action above random ones."""
    rng = np.random.default_rng(4)
    batch = sequence_batch(rng)
    batch["action"][:] = 0.5  # one behaviour action, so "unseen" actions are all the others
    data = lompo.to_torch(batch, "cpu")

    grid = torch.cartesian_prod(torch.linspace(-1, 1, 5), torch.linspace(-1, 1, 5))  # 25 actions over the box

    def data_minus_grid(weight: float) -> float:
        agent = make(model_train_steps=0, conservative_weight=weight, critic_lr=1e-2)
        for _ in range(40):
            metrics = agent.update(batch)
        assert ("conservative_gap" in metrics) == (weight > 0)
        with torch.no_grad():
            post, _, _ = agent.wm.observe(data)
            feat = agent.wm.rssm.feat(post).flatten(0, 1)[:, None]
            q = lambda a: agent.q_values(agent.critics, feat.expand(-1, len(a), -1), a.expand(len(feat), -1, -1))  # noqa: E731
            return float(q(torch.tensor([[0.5, 0.5]])).mean() - q(grid).mean())

    without, with_term = data_minus_grid(0.0), data_minus_grid(10.0)
    assert with_term > without + 0.5, (without, with_term)  # measured over make() seeds 0-3: +0.95 to +1.3


def test_lompo_needs_an_ensemble() -> None:
    with pytest.raises(lompo.OwbenchError, match="prior_heads"):
        make(prior_heads=1)


def test_presets() -> None:
    paper = lompo.Config.preset("paper")
    assert (paper.wm.prior_heads, paper.penalty, paper.horizon, paper.wm.classes) == (7, 5.0, 5, 0)
    assert (paper.rollout_batch, paper.imagined_warmup, paper.actor_reg) == (16, 50_000, 0.0)  # the reference's
    assert (paper.conservative_weight, paper.conservative_samples) == (0.0, 16)  # V-D4RL alpha 0, cql_samples 16
    quick = lompo.Config.preset("quick")  # `owbench check lompo`'s: conservative term on, lambda 1 (fidelity/lompo.md)
    assert (quick.conservative_weight, quick.penalty, quick.model_train_steps) == (20.0, 1.0, 600)
    assert lompo.Config.preset("quick", deter=64).wm.deter == 64


def test_one_dimensional_actions() -> None:
    """cartpole has one action dimension, which the MLP head squeezes away; the policy keeps it."""
    spec = EnvSpec(id="synthetic", suite="dmc", action_dim=1, state_dim=4, action_repeat=2, time_limit=20, camera=0)
    agent = get_method("lompo").load().make_agent(spec, lompo.Config.preset("smoke", image_size=32), "cpu", seed=0)
    rng = np.random.default_rng(0)
    for _ in range(3):
        batch = sequence_batch(rng)
        metrics = agent.update({**batch, "action": batch["action"][..., :1]})
    assert np.isfinite(metrics["critic_loss"])
    assert agent.act({"image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)})[0].shape == (1,)
