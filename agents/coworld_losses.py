"""CoWorld's three losses (Wang et al., arXiv v1 Eq. 3-6; NeurIPS 2024 Eq. 12), kept apart from the
training loop so each can be tested on its own.

- `domain_kl`: the domain KL of Eq. 3, KL[sg(g(e_S(o))) || g(e_T(o))] with g a softmax over the
  encoder embedding (NeurIPS Eq. 12; the released code's `KLDivLoss(log_softmax(e_T), softmax(e_S))`).
- `reduce_domain_kl`: its reduction over a batch: the mean over observations, or the released code's
  `KLDivLoss(reduction="batchmean")` on (B, T, E) embeddings, a sum over T and a mean over B (T× larger).
- `select_source`: multi-source CoWorld's one-hot weight ω over candidate sources (NeurIPS Eq. 12).
- `relabel_source_reward`: the target-modulated source reward of Eq. 4.
- `reward_nll`, `reward_loss_weights`: the two reward terms of Eq. 5 and their weights (1 and 1 in the
  paper; η and 1 - η, η = max(1 - step / 2e5, 0.2), in the released code's models.py).
- `max_min_value_loss`: the max-min value regulariser of Eq. 6.
"""
from __future__ import annotations

import torch
from torch import Tensor


def domain_kl(source_embed: Tensor, target_embed: Tensor) -> Tensor:
    """KL[sg(softmax(e_S(o))) || softmax(e_T(o))] per observation (Eq. 3's domain term, no β₂).

    Both embeddings come from the same target observations, shape (..., E); returns (...). The
    source side is detached, so the gradient reaches only the target encoder."""
    assert source_embed.shape == target_embed.shape, \
        f"domain_kl: source {tuple(source_embed.shape)} vs target {tuple(target_embed.shape)}"
    log_p = source_embed.detach().float().log_softmax(-1)
    log_q = target_embed.float().log_softmax(-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1)


def reduce_domain_kl(kl: Tensor, reduction: str = "mean") -> Tensor:
    """Domain KLs per observation (B, T) -> one number: "mean" over all observations, or "batchmean",
    the released code's KLDivLoss(reduction="batchmean") on (B, T, E) inputs: the sum divided by B."""
    return kl.mean() if reduction == "mean" else kl.sum() / kl.shape[0]


def select_source(kls: Tensor) -> Tensor:
    """One-hot ω over candidate sources from their mean domain KLs (S,): the source whose
    encoder is closest to the target's on the current batch gets weight 1 (NeurIPS Eq. 12)."""
    return torch.nn.functional.one_hot(kls.detach().argmin(), kls.shape[0]).to(kls.dtype)


def relabel_source_reward(source_prediction: Tensor, target_reward: Tensor, k: float) -> Tensor:
    """arXiv Eq. 4: the label of the source reward head on target data, k·sg(r̂_S(h, z)) + (1 − k)·r_T.

    `k` weighs the source prediction. NeurIPS Table 8 and the released code name k the weight of r_T
    ("target-inclined reward factor": (1 − k)·r̂_S + k·r_T); pass 1 − that k."""
    return k * source_prediction.detach() + (1 - k) * target_reward


def reward_nll(prediction: Tensor, label: Tensor) -> Tensor:
    """−ln N(label; prediction, 1) up to its constant, averaged: one reward term of Eq. 5."""
    return 0.5 * (prediction - label).pow(2).mean()


def reward_loss_weights(step: int, anneal: int, floor: float) -> tuple[float, float]:
    """Weights of Eq. 5's (source-data, relabelled target-data) reward terms: (1, 1) as written when
    `anneal` is 0, else the released code's (η, 1 − η) with η = max(1 − step / anneal, floor)."""
    if not anneal:
        return 1.0, 1.0
    eta = max(1 - step / anneal, floor)
    return eta, 1 - eta


def max_min_value_loss(target_value: Tensor, source_value: Tensor, zeta: float = 1.0) -> Tensor:
    """Eq. 6's regulariser max(ζ·v_T(ẑ), sg(v_S(ẑ))) per imagined state (no α, no weights).

    Where the source critic is larger the term is the constant v_S and has no gradient; where the
    target critic is larger it pushes v_T down towards v_S."""
    return torch.maximum(zeta * target_value, source_value.detach())
