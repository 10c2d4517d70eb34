"""CURL: Contrastive Unsupervised Representations for RL (Laskin, Srinivas, Abbeel, ICML 2020), offline.

Per update, on a batch of frame stacks o (Algorithm: CURL + SAC):
1. anchor q = f_theta(aug(o)), positive k = f_theta_k(aug'(o)) with two independent augmentations;
   the key encoder f_theta_k is the momentum (EMA, tau 0.05) copy of the critic's encoder;
2. bilinear similarity logits = q W k^T (B x B), the other samples of the batch are negatives;
   InfoNCE loss = cross-entropy(logits, diagonal) (CURL Eq. 1-2) trains f_theta and W;
3. SAC critic / actor / temperature losses on the anchor features (baselines/modelfree.py).
Offline: the batch comes from the dataset's TransitionSampler instead of a replay buffer.

Presets (fields documented in `ModelFreeConfig`):
- `paper`: CURL Table 3: batch 512, lr 1e-3 (critic, actor, encoder; 2e-4 for cheetah), alpha lr 1e-4,
  init temperature 0.1, critic tau 0.01, encoder tau 0.05, actor / target update every 2 steps,
  feature 50, hidden 1024, 1-step returns, gamma 0.99, random crop 84 from 100-px renders.
- `quick`: a CPU machine: 64-px frames with random shift (pad 4), batch 128, hidden 256.
- `smoke`: seconds in tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from agents.contract import Metrics
from baselines.modelfree import ModelFreeConfig, SACAgent, adam, seed_torch
from collectors.envs.base import EnvSpec

CURL_PAPER = dict(image_size=100, augmentation="crop", crop_size=84, batch_size=512, n_step=1, hidden_dim=1024)
SMOKE = dict(image_size=64, batch_size=8, hidden_dim=32, feature_dim=16, num_filters=8)
# `quick` is `owbench check`'s setting: the small core at batch 32 (SMALL, shared with CURL+CQL) plus, for plain SAC's
# critic at 4,000 updates, 3-step returns and target critics at CURL's encoder rate 0.05 (docs/learning_checks.md)
SMALL = dict(image_size=32, augmentation="shift", pad=4, batch_size=32, hidden_dim=256)
QUICK = dict(SMALL, n_step=3, critic_tau=0.05)


@dataclass(frozen=True)
class CURLConfig(ModelFreeConfig):
    """CURL's SAC core plus the contrastive update schedule."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"smoke": SMOKE, "quick": QUICK, "paper": CURL_PAPER}

    curl_update_freq: int = 1  # contrastive update every N steps (CURL code: cpc_update_freq 1)


Config = CURLConfig


class Bilinear(nn.Module):
    """CURL's bilinear similarity W (z_dim x z_dim), initialised uniform in [0, 1) as in the paper's code."""

    def __init__(self, z_dim: int):
        super().__init__()
        self.W = nn.Parameter(torch.rand(z_dim, z_dim))

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
        logits = anchor @ self.W @ positive.T
        return logits - logits.max(dim=1, keepdim=True).values  # numerical stability (CURL code)


class ContrastiveRepresentation:
    """Mixin: CURL's InfoNCE update of the critic encoder against its momentum copy."""

    def __init__(self, action_dim: int, config: CURLConfig, device: str = "cpu"):
        super().__init__(action_dim, config, device)
        self.bilinear = Bilinear(config.feature_dim).to(self.device)
        self.optimizers["encoder"] = adam(self.critic.encoder, config.encoder_lr, config.adam_beta)
        self.optimizers["bilinear"] = adam(self.bilinear, config.encoder_lr, config.adam_beta)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "bilinear": self.bilinear}

    def contrastive_logits(self, obs: torch.Tensor, positive_obs: torch.Tensor) -> torch.Tensor:
        anchor = self.critic.encoder(obs)  # query encoder f_theta
        with torch.no_grad():
            positive = self.critic_target.encoder(positive_obs)  # momentum key encoder f_theta_k
        return self.bilinear(anchor, positive)

    def update_representation(self, raw_obs: torch.Tensor, obs: torch.Tensor) -> Metrics:
        if self.updates % self.config.curl_update_freq != 0:
            return {}
        logits = self.contrastive_logits(obs, self.augment(raw_obs))
        labels = torch.arange(logits.shape[0], device=self.device)
        loss = F.cross_entropy(logits, labels)  # InfoNCE, CURL Eq. 1 with sim(q, k) = q^T W k (Eq. 2)
        self.optimizers["encoder"].zero_grad(set_to_none=True)
        self.optimizers["bilinear"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["encoder"].step()
        self.optimizers["bilinear"].step()
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"curl_loss": loss.detach(), "curl_accuracy": accuracy}


class CURLAgent(ContrastiveRepresentation, SACAgent):
    """SAC on pixels with CURL's contrastive auxiliary loss."""


def make_agent(spec: EnvSpec, config: CURLConfig, device: str = "cpu", seed: int = 0) -> CURLAgent:
    seed_torch(seed)
    return CURLAgent(spec.action_dim, config, device)
