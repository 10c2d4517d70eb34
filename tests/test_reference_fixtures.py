"""owbench's losses reproduce the reference implementations' numbers (tests/fixtures/README.md says how
each fixture was made, from which repository and commit, and the convention mapping used here)."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agents.coworld_losses import (domain_kl, max_min_value_loss, reduce_domain_kl, relabel_source_reward,
                                   reward_loss_weights, reward_nll)
from agents.world_model import WorldModelConfig, lambda_return
from agents.world_model.rssm import RSSM
from baselines.cql import conservative_penalty
from baselines.curl import Bilinear
from baselines.lompo import uncertainty_penalty

FIXTURES = Path(__file__).parent / "fixtures"
NLL_CONSTANT = 0.5 * math.log(2 * math.pi)  # the references' Normal log-likelihoods keep it; owbench drops it


def load(name: str) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.asarray(v)) for k, v in np.load(FIXTURES / name).items()}


def test_lambda_return_matches_dreamer_torch():
    d = load("dreamer_torch_lambda_return.npz")
    reward, value, pcont = (d[k][..., 0] for k in ("reward", "value", "pcont"))
    # dreamer-torch indexes reward and discount by the state they are predicted in (0..H-1) and bootstraps
    # from value[1:]; owbench by the state arrived in: pass reward[:-1], value[1:], pcont[:-1]
    ours = lambda_return(reward[:-1], value[1:], pcont[:-1], float(d["lambda_"]))
    # dreamer-torch's static_scan_for_lambda_return concatenates from the last step, so its returns come out
    # in reverse time order (CoWorld's tools.py shares it); owbench keeps time order
    reference = d["returns"][..., 0]
    assert torch.allclose(ours, reference.flip(0), atol=1e-6)
    assert not torch.allclose(ours, reference, atol=1e-3)


def test_kl_balancing_matches_dreamer_torch():
    d = load("dreamer_torch_kl_balance.npz")
    b, t, stoch, classes = d["post_logit"].shape
    rssm = RSSM(WorldModelConfig(stoch=stoch, classes=classes, kl_balance=float(d["balance"]),
                                 free_nats=float(d["free"])), action_dim=2, embed_dim=8)
    post = d["post_logit"].flatten(-2).requires_grad_()  # owbench's stats: flattened logits
    prior = d["prior_logit"].flatten(-2).requires_grad_()
    loss, kl = rssm.kl_loss(post, prior)
    loss.backward()
    assert loss.item() == pytest.approx(d["loss"].item(), rel=1e-5)
    assert kl.item() == pytest.approx(d["kl"].mean().item(), rel=1e-5)
    # the balance shows only in the gradients: 0.8 of it trains the prior, 0.2 the posterior
    assert torch.allclose(post.grad.unflatten(-1, (stoch, classes)), d["grad_post"], atol=1e-7)
    assert torch.allclose(prior.grad.unflatten(-1, (stoch, classes)), d["grad_prior"], atol=1e-7)


def test_coworld_relabelled_reward_loss_matches_the_released_code():
    d = load("coworld_reward.npz")
    k_code, scale = float(d["reward_k"]), float(d["reward_scale"])
    source, target = d["pred_source"][..., 0], d["pred_target"][..., 0]
    # the code relabels (1 - k)·r̂_S + k·r_T: owbench's reward_k (weight of r̂_S) is 1 - k
    label = relabel_source_reward(target, d["reward_target"], 1 - k_code)
    w_source, w_target = reward_loss_weights(int(d["step"]), 200_000, 0.2)  # η = max(1 - step/2e5, 0.2)
    ours = scale * (w_source * reward_nll(source, d["reward_source"]) + w_target * reward_nll(target, label))
    assert ours.item() + scale * NLL_CONSTANT == pytest.approx(d["reward_loss"].item(), rel=1e-5)


def test_coworld_domain_kl_matches_the_released_code():
    d = load("coworld_domain_kl.npz")
    kl = domain_kl(d["embed_source"], d["embed_target"])  # (B, T)
    # the code's KLDivLoss(reduction="batchmean") on (B, T, E): owbench's "batchmean" reduction
    assert (float(d["beta2"]) * reduce_domain_kl(kl, "batchmean")).item() == pytest.approx(d["domain_kl"].item(),
                                                                                          rel=1e-5)
    per_step = d["domain_kl"].item() / float(d["beta2"]) / kl.shape[1]  # batchmean = T × the per-step mean
    assert reduce_domain_kl(kl, "mean").item() == pytest.approx(per_step, rel=1e-5)


def test_coworld_max_min_value_term_matches_the_released_code():
    d = load("coworld_value.npz")
    target_value, source_value = d["feat"][:-1, :, 0], d["feat"][:-1, :, 1]
    weight, returns = d["weights"][:-1, :, 0], d["returns"][..., 0]
    term = float(d["alpha"]) * (weight * max_min_value_loss(target_value, source_value)).mean()  # Eq. 6, ζ = 1
    assert term.item() == pytest.approx((d["value_loss"] - d["value_loss_no_term"]).item(), rel=1e-5)
    regression = (weight * 0.5 * (target_value - returns).pow(2)).mean()  # DreamerV2 Eq. 5, as owbench's critic
    assert (regression + NLL_CONSTANT * weight.mean()).item() == pytest.approx(d["value_loss_no_term"].item(),
                                                                              rel=1e-5)


@pytest.mark.parametrize("name, importance", [("vd4rl_cql.npz", False), ("vd4rl_cql_importance.npz", True)])
def test_cql_conservative_term_matches_vd4rl(name, importance):
    d = load(name)
    random_density = torch.full_like(d["q1_rand"][..., 0], float(d["random_log_density"]))
    for i in (1, 2):
        sampled = [(d[f"q{i}_rand"][..., 0], random_density), (d[f"q{i}_curr"][..., 0], d["log_pi_curr"][..., 0]),
                   (d[f"q{i}_next"][..., 0], d["log_pi_next"][..., 0])]
        penalty = conservative_penalty(d[f"q{i}_data"][:, 0], sampled, float(d["min_q_weight"]), float(d["temp"]),
                                       importance)
        assert penalty.item() == pytest.approx(d[f"penalty{i}"].item(), rel=1e-5)


def test_curl_infonce_matches_the_curl_code():
    d = load("curl_infonce.npz")
    bilinear = Bilinear(d["W"].shape[0])
    bilinear.W.data.copy_(d["W"])
    logits = bilinear(d["z_anchor"], d["z_positive"])
    loss = F.cross_entropy(logits, torch.arange(logits.shape[0]))
    loss.backward()
    assert loss.item() == pytest.approx(d["loss"].item(), rel=1e-5)
    assert torch.allclose(bilinear.W.grad, d["grad_W"], atol=1e-6)


def test_lompo_uncertainty_penalty_matches_vd4rl():
    """V-D4RL's `log_prob` penalty: r - lmbd * std_k log p_k(z'), population std, the log-density of the
    diagonal Gaussian summed over latent dimensions, at the z' sampled from the head drawn at random."""
    d = load("vd4rl_lompo_penalty.npz")
    horizon, heads, starts, z_dim = d["mean"].shape
    rssm = RSSM(WorldModelConfig(stoch=z_dim, classes=0), action_dim=2, embed_dim=8)
    wm = SimpleNamespace(rssm=rssm)
    raw_std = torch.log(torch.expm1(d["std"].double() - rssm.cfg.min_std)).float()  # owbench's stats: softplus^-1
    for t in range(horizon):
        stats = torch.cat([d["mean"][t], raw_std[t]], -1)  # (K, N, 2Z)
        penalised = d["reward"][t] - float(d["lmbd"]) * uncertainty_penalty(wm, stats, d["stoch"][t])
        assert torch.allclose(penalised, d["penalised_reward"][t], rtol=1e-5, atol=1e-5)
