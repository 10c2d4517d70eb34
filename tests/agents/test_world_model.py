"""The shared world model: shapes, resets, hooks, KL balancing, λ-returns, learning signal."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from agents.devices import cpu_bf16_supported
from agents.world_model import (ActorCritic, DreamerConfig, WorldModel, WorldModelConfig, autocast, lambda_return,
                                to_torch, with_overrides)
from agents.world_model.nets import ActionDist, Decoder, Encoder
from collectors.errors import OwbenchError

SMOKE = DreamerConfig.preset("smoke")


def batch(cfg: WorldModelConfig, B: int = 3, T: int = 6, A: int = 2, seed: int = 0, size: int | None = None):
    rng = np.random.default_rng(seed)
    S = size or cfg.image_size
    is_first = np.zeros((B, T), bool)
    is_first[:, 0] = True
    return to_torch({"image": rng.integers(0, 256, (B, T, S, S, 3), dtype=np.uint8),
                     "action": rng.uniform(-1, 1, (B, T, A)).astype(np.float32),
                     "reward": rng.random((B, T), dtype=np.float32), "discount": np.ones((B, T), np.float32),
                     "is_first": is_first}, "cpu")


@pytest.fixture(autouse=True)
def _seeded():
    """Seeded (tests/conftest.py sets one intra-op thread)."""
    torch.manual_seed(0)


@pytest.mark.parametrize("size", [32, 64])
def test_encoder_decoder_shapes(size):
    enc = Encoder(size, depth=4)
    embed = enc(torch.zeros(2, 3, size, size, 3, dtype=torch.uint8))
    assert embed.shape == (2, 3, enc.embed_dim) == (2, 3, 4 * 2 ** (enc.embed_dim.bit_length() - 3))
    dec = Decoder(10, size, depth=4)
    assert dec(torch.zeros(2, 3, 10)).shape == (2, 3, 3, size, size)


@pytest.mark.parametrize("classes", [4, 0])  # discrete and Gaussian latents
def test_loss_and_observe_shapes(classes):
    cfg = dataclasses.replace(SMOKE.wm, classes=classes)
    wm = WorldModel(cfg, action_dim=2)
    data = batch(cfg)
    loss, metrics, post = wm.loss(data)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert set(metrics) == {"kl", "image_loss", "reward_loss", "discount_loss", "model_loss"}
    assert post["deter"].shape == (3, 6, cfg.deter)
    assert post["stoch"].shape == (3, 6, wm.rssm.stoch_dim)
    assert wm.rssm.feat(post).shape == (3, 6, wm.feat_dim)


def test_discrete_latents_are_one_hot_samples_and_mode_is_deterministic():
    wm = WorldModel(SMOKE.wm, action_dim=2)
    stats = torch.randn(5, wm.rssm.stoch_dim)
    z = wm.rssm.sample(stats).unflatten(-1, (SMOKE.wm.stoch, SMOKE.wm.classes))
    assert torch.allclose(z.sum(-1), torch.ones(5, SMOKE.wm.stoch))
    assert torch.allclose(z.detach(), z.detach().round(), atol=1e-6)  # one-hot up to straight-through rounding
    assert torch.equal(wm.rssm.sample(stats, sample=False), wm.rssm.sample(stats, sample=False))


def test_is_first_resets_the_state():
    wm = WorldModel(SMOKE.wm, action_dim=2)
    data = batch(SMOKE.wm, B=1, T=6)
    data["is_first"][0, 3] = True
    other = {k: v.clone() for k, v in data.items()}
    other["image"][:, :3] = 255 - other["image"][:, :3]  # change everything before the reset
    other["action"][:, :3] = -other["action"][:, :3]
    with torch.no_grad():
        post_a, _, _ = wm.observe(data, sample=False)
        post_b, _, _ = wm.observe(other, sample=False)
    assert not torch.allclose(post_a["deter"][:, 2], post_b["deter"][:, 2])
    assert torch.allclose(post_a["deter"][:, 3:], post_b["deter"][:, 3:])
    assert torch.allclose(post_a["stats"][:, 3:], post_b["stats"][:, 3:])


def test_kl_balancing_and_free_nats():
    wm = WorldModel(dataclasses.replace(SMOKE.wm, free_nats=0.0, kl_balance=0.8), action_dim=2)
    post = torch.randn(4, wm.rssm.stoch_dim, requires_grad=True)
    prior = torch.randn(4, wm.rssm.stoch_dim, requires_grad=True)
    loss, value = wm.rssm.kl_loss(post, prior)
    assert torch.isclose(loss, value)  # both sides weigh the same KL value
    g_post, g_prior = torch.autograd.grad(loss, [post, prior])
    ref_post, ref_prior = torch.autograd.grad(wm.rssm.kl(post, prior).mean(), [post, prior])
    assert torch.allclose(g_post, 0.2 * ref_post, atol=1e-6) and torch.allclose(g_prior, 0.8 * ref_prior, atol=1e-6)
    free = WorldModel(dataclasses.replace(SMOKE.wm, free_nats=1e3), action_dim=2)
    loss, _ = free.rssm.kl_loss(post, prior)
    assert all(g is None or torch.all(g == 0) for g in torch.autograd.grad(loss, [post, prior], allow_unused=True))


def test_gaussian_kl_is_zero_for_equal_distributions_and_positive_otherwise():
    wm = WorldModel(dataclasses.replace(SMOKE.wm, classes=0), action_dim=2)
    stats = torch.randn(3, 2 * SMOKE.wm.stoch)
    assert torch.allclose(wm.rssm.kl(stats, stats), torch.zeros(3), atol=1e-6)
    assert torch.all(wm.rssm.kl(stats, stats + 1) > 0)


def test_lambda_return_limits():
    H, N = 5, 3
    reward, value = torch.rand(H, N), torch.rand(H, N)
    discount = torch.full((H, N), 0.9)
    td = lambda_return(reward, value, discount, lambda_=0.0)
    assert torch.allclose(td, reward + discount * value)  # λ = 0: one-step TD targets
    mc = lambda_return(reward, value, discount, lambda_=1.0)
    expected = sum(0.9**k * reward[k] for k in range(H)) + 0.9**H * value[-1]  # λ = 1: discounted sum + bootstrap
    assert torch.allclose(mc[0], expected)


def test_imagination_from_any_state_and_padded_actions():
    cfg = dataclasses.replace(SMOKE.wm, action_dim=6)  # WPT: task actions (2) zero-padded to 6
    wm = WorldModel(cfg, action_dim=2)
    assert wm.rssm.img_in[0].in_features == wm.rssm.stoch_dim + 6
    _, _, post = wm.loss(batch(cfg, A=2))
    start = {k: v[:, -1] for k, v in post.items()}
    feats, actions = wm.imagine(lambda f: torch.tanh(f[:, :2]), start, horizon=4)
    assert feats.shape == (5, 3, wm.feat_dim) and actions.shape == (4, 3, 2)
    prior = wm.rssm.img_step(wm.rssm.initial(7, "cpu"), wm.pad_action(torch.zeros(7, 2)))  # Vid2Act teacher
    assert prior["deter"].shape == (7, cfg.deter)
    embed = wm.encode(batch(cfg)["image"])
    assert wm.rssm.posterior(post["deter"], embed).shape == post["stats"].shape  # CoWorld's domain KL hook
    with pytest.raises(ValueError):
        WorldModel(dataclasses.replace(SMOKE.wm, action_dim=1), action_dim=2)


def test_reward_free_and_extra_heads():
    cfg = dataclasses.replace(SMOKE.wm, reward_head=False, discount_head=False, extra_heads=(("task", 5),))
    wm = WorldModel(cfg, action_dim=2)
    loss, metrics, post = wm.loss(batch(cfg))
    assert "reward_loss" not in metrics and "discount_loss" not in metrics
    feat = wm.rssm.feat(post)
    assert wm.heads["task"](feat).shape == (3, 6, 5)
    assert torch.equal(wm.reward(feat), torch.zeros(3, 6)) and torch.equal(wm.continuation(feat), torch.ones(3, 6))
    behavior = ActorCritic(SMOKE.behavior, wm.feat_dim, 2)
    metrics = behavior.update(wm, post)
    assert all(torch.isfinite(v) for v in metrics.values())


def test_frames_of_another_size_are_resized():
    wm = WorldModel(SMOKE.wm, action_dim=2)  # 32 px
    loss, _, _ = wm.loss(batch(SMOKE.wm, size=64))
    assert torch.isfinite(loss)


@pytest.mark.parametrize("precision", ["float32", "conv_amp", "cpu_amp"])  # bfloat16 where the CPU has it natively
def test_world_model_learns_a_fixed_batch(precision):
    wm = WorldModel(dataclasses.replace(SMOKE.wm, lr=1e-3, conv_amp=precision == "conv_amp"), action_dim=2)
    data = batch(SMOKE.wm, B=2, T=4)
    data["image"][:] = torch.linspace(0, 255, SMOKE.wm.image_size).to(torch.uint8)[:, None, None]  # a learnable scene
    first = wm.loss(data)[1]
    for _ in range(15):
        with autocast("cpu", enabled=precision == "cpu_amp", cpu=True):
            loss, _, _ = wm.loss(data)
        wm.opt.step(loss)
    last = wm.loss(data)[1]
    assert last["image_loss"] < 0.5 * first["image_loss"] and last["reward_loss"] < first["reward_loss"]


@pytest.mark.skipif(not cpu_bf16_supported(), reason="this CPU has no native bfloat16")
def test_conv_amp_runs_the_conv_stacks_alone_in_bfloat16():
    wm = WorldModel(dataclasses.replace(SMOKE.wm, conv_amp=True), action_dim=2)
    dtypes: dict[str, torch.dtype] = {}
    hooks = [module.register_forward_hook(lambda m, args, out, name=name: dtypes.setdefault(name, out.dtype) and None)
             for name, module in (("encoder conv", wm.encoder.convs[0]), ("decoder", wm.decoder),
                                  ("reward head", wm.heads["reward"].net[0]))]
    loss, _, post = wm.loss(batch(SMOKE.wm))
    for hook in hooks:
        hook.remove()
    assert dtypes["encoder conv"] == torch.bfloat16 and dtypes["decoder"] == torch.bfloat16
    assert wm.encode(batch(SMOKE.wm)["image"]).dtype == torch.float32  # the RSSM sees float32 embeddings
    assert post["deter"].dtype == torch.float32 and dtypes["reward head"] == torch.float32
    assert loss.dtype == torch.float32 and torch.isfinite(loss)


def test_behavior_update_changes_actor_and_refreshes_target():
    wm = WorldModel(SMOKE.wm, action_dim=2)
    _, _, post = wm.loss(batch(SMOKE.wm))
    behavior = ActorCritic(SMOKE.behavior, wm.feat_dim, 2)
    actor_before = [p.clone() for p in behavior.actor.parameters()]
    wm_before = [p.clone() for p in wm.parameters()]
    for _ in range(SMOKE.behavior.target_update + 1):
        behavior.update(wm, post)
    assert any(not torch.equal(a, b) for a, b in zip(actor_before, behavior.actor.parameters()))
    assert all(torch.equal(a, b) for a, b in zip(wm_before, wm.parameters()))  # behaviour never trains the model
    assert all(p.grad is None for p in wm.parameters())
    assert int(behavior.updates) == SMOKE.behavior.target_update + 1


def test_config_overrides_route_to_nested_fields():
    cfg = DreamerConfig.preset("smoke", deter=64, **{"behavior.units": 16}, batch_size=2)
    assert (cfg.wm.deter, cfg.behavior.units, cfg.batch_size) == (64, 16, 2)
    assert with_overrides(cfg, {"wm.image_size": 64}).image_size == 64
    with pytest.raises(OwbenchError, match="ambiguous"):
        DreamerConfig.preset("smoke", units=8)  # both wm.units and behavior.units
    with pytest.raises(OwbenchError, match="unknown config field"):
        DreamerConfig.preset("smoke", detr=8)
    with pytest.raises(OwbenchError, match="unknown config field"):  # torch.compile was removed (issue 21, item 7)
        DreamerConfig.preset("smoke", compile=True)
    with pytest.raises(OwbenchError, match="unknown preset"):
        DreamerConfig.preset("huge")


def test_reinforce_mix_trains_the_actor():
    wm = WorldModel(SMOKE.wm, action_dim=2)
    _, _, post = wm.loss(batch(SMOKE.wm))
    behavior = ActorCritic(dataclasses.replace(SMOKE.behavior, actor_grad_mix=0.5), wm.feat_dim, 2)
    metrics = behavior.update(wm, post, start_cont=torch.ones(3, 6))
    assert all(torch.isfinite(v) for v in metrics.values()) and metrics["actor_grad_norm"] > 0


@pytest.mark.parametrize("name", ["smoke", "quick", "paper", "code"])
def test_presets_build_a_world_model(name):
    cfg = DreamerConfig.preset(name)
    wm = WorldModel(cfg.wm, action_dim=6)
    expected = cfg.wm.stoch * cfg.wm.classes if cfg.wm.classes else cfg.wm.stoch
    assert wm.rssm.stoch_dim == expected and wm.feat_dim == expected + cfg.wm.deter
    assert wm.encoder.embed_dim == 4 * cfg.wm.depth * 2 ** (int(np.log2(cfg.image_size)) - 3)


def test_paper_preset_has_no_discount_head_as_dreamerv2_dmc_vision():
    # danijar/dreamerv2 configs.yaml, dmc_vision: pred_discount False, grad_heads [decoder, reward]
    paper = DreamerConfig.preset("paper")
    assert not paper.wm.discount_head
    assert "discount" not in WorldModel(paper.wm, action_dim=2).heads


@pytest.mark.parametrize("preset, init_std, expected", [("paper", 0.0, 1.1), ("code", 1.0, 2 / (1 + np.exp(-0.5)) + 0.1)])
def test_actor_starts_at_the_reference_std(preset, init_std, expected):
    # DreamerV2's DistLayer (init_std 0): std = 2 sigmoid((s + init_std) / 2) + min_std, 1.1 at s = 0;
    # dreamer-torch's dmc config sets actor_init_std 1.0
    cfg = DreamerConfig.preset(preset).behavior
    assert cfg.init_std == init_std
    dist = ActionDist(torch.zeros(3, 4), cfg.min_std, cfg.init_std)
    assert torch.allclose(dist.std, torch.full((3, 2), expected))
    assert torch.equal(dist.mode(), torch.zeros(3, 2))
