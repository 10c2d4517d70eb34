"""CQL: Conservative Q-Learning (Kumar, Zhou, Tucker, Levine, NeurIPS 2020) on the pixel encoder.

As V-D4RL runs it (DrQ encoder + CQL critic, Lu et al. 2022), on the SAC core of baselines/modelfree.py.
Per update, for each of the twin critics Q_i (CQL(H), Eq. 4):
1. sample N random actions ~ U[-1, 1]^A and N policy actions at o_t and at o_{t+1} (evaluated at o_t);
2. penalty_i = w * ( T * logsumexp_a Q_i(o, a) / T  -  E_data Q_i(o, a) ), the log-sum-exp over the
   sampled actions plus the dataset action (V-D4RL), or with importance weights (CQL code, min_q_version 3):
   [Q(rand) - log U(a), Q(pi(o)) - log pi, Q(pi(o')) - log pi];
3. with the Lagrange variant, w is alpha' >= 0 learned to keep the penalty near `cql_target_gap` (Eq. 30);
4. critic loss = TD loss + penalty_1 + penalty_2; actor / temperature as in SAC.

Presets (fields documented in `ModelFreeConfig` and below):
- `paper`: V-D4RL's DrQ+CQL run (drqbc/cfgs: `task/offline_dmc.yaml` overrides `config.yaml`; the
  README's command adds `min_q_weight=10`): 84-px frames, random shift pad 4, batch 256, lr 3e-4
  (all networks), 1-step returns, gamma 0.99, feature 50, hidden 1024, critic tau 0.01,
  CQL weight 10, temperature 1, 10 sampled actions, no importance sampling, no Lagrange
  (docs/fidelity/cql.md).
  Differences, stated: V-D4RL's actor is DrQ-v2's deterministic actor with a noise schedule and its
  targets use the online encoder; here the actor is SAC's (as in CQL) and the target encoder is an
  EMA copy at tau 0.01.
- `quick`: a CPU machine: 64-px frames, batch 128, hidden 256.
- `smoke`: seconds in tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from agents.contract import Metrics
from baselines.modelfree import LogScalar, ModelFreeConfig, SACAgent, adam, seed_torch
from collectors.envs.base import EnvSpec

VD4RL = dict(image_size=84, augmentation="shift", pad=4, batch_size=256, n_step=1, hidden_dim=1024,
             critic_lr=3e-4, actor_lr=3e-4, encoder_lr=3e-4, actor_update_freq=1, critic_target_update_freq=1,
             encoder_tau=0.01, cql_weight=10.0, cql_alpha_lr=3e-4)
SMOKE = dict(image_size=64, batch_size=8, hidden_dim=32, feature_dim=16, num_filters=8, cql_num_actions=3)
# `owbench check cql`'s setting: the small core at batch 32 with a conservative, behaviour-cloning-like weight 5
QUICK = dict(image_size=32, augmentation="shift", pad=4, batch_size=32, n_step=3, hidden_dim=256,
             critic_lr=3e-4, actor_lr=3e-4, encoder_lr=3e-4, cql_weight=5.0)


@dataclass(frozen=True)
class CQLConfig(ModelFreeConfig):
    """SAC core + CQL's conservative penalty (V-D4RL defaults)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"smoke": SMOKE, "quick": QUICK, "paper": VD4RL}

    cql_weight: float = 1.0  # alpha in Eq. 4 (V-D4RL config.yaml min_q_weight 1, its README's CQL run 10)
    cql_temperature: float = 1.0  # T of the log-sum-exp (V-D4RL temp 1)
    cql_num_actions: int = 10  # N random and N policy actions per state (CQL, V-D4RL: 10)
    cql_importance_sample: bool = False  # CQL code's min_q_version 3; V-D4RL: False
    cql_lagrange: bool = False  # learn alpha' (CQL-Lagrange); V-D4RL: False
    cql_target_gap: float = 0.0  # tau of the Lagrange variant (CQL: 5 or 10; V-D4RL lagrange_thresh 0)
    cql_alpha_lr: float = 1e-4  # learning rate of alpha' (V-D4RL: lr)


Config = CQLConfig


def conservative_penalty(q_data: torch.Tensor, sampled: list[tuple[torch.Tensor, torch.Tensor]], weight: float,
                         temperature: float = 1.0, importance_sample: bool = False) -> torch.Tensor:
    """CQL(H), Eq. 4, for one critic: weight · (mean T·logsumexp(Q(o, a) / T) − mean Q(o, a_data)).

    `q_data` (B,) are the dataset actions' values, `sampled` (Q (B, N), log-density (B, N)) per group of
    sampled actions. The log-sum-exp runs over the sampled actions and the dataset action (V-D4RL), or
    over the sampled ones less their log-densities (importance sampling, CQL code's min_q_version 3)."""
    if importance_sample:
        cat = torch.cat([q - log_density for q, log_density in sampled], 1)
    else:
        cat = torch.cat([q_data[:, None]] + [q for q, _ in sampled], 1)
    # push down a soft maximum over actions, push up the dataset action
    logsumexp = temperature * torch.logsumexp(cat / temperature, 1)
    return weight * (logsumexp.mean() - q_data.mean())


class ConservativeCritic:
    """Mixin: CQL(H)'s log-sum-exp penalty on the critic (Kumar et al. 2020, Eq. 4)."""

    def __init__(self, action_dim: int, config: CQLConfig, device: str = "cpu"):
        super().__init__(action_dim, config, device)
        self.cql_alpha = LogScalar(1.0).to(self.device)
        if config.cql_lagrange:
            self.optimizers["cql_alpha"] = adam(self.cql_alpha, config.cql_alpha_lr, 0.9)

    def modules(self) -> dict[str, nn.Module]:
        return {**super().modules(), "cql_alpha": self.cql_alpha}

    def sampled_action_values(self, feature: torch.Tensor, conv: torch.Tensor, next_conv: torch.Tensor
                              ) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """(Q1, Q2, log-density) of random, current-policy and next-policy actions, each (B, N), at o_t."""
        n, b = self.config.cql_num_actions, feature.shape[0]
        feature_n = feature.repeat_interleave(n, 0)
        random_action = torch.empty(b * n, self.action_dim, device=self.device).uniform_(-1, 1)
        random_log_density = torch.full((b * n,), self.action_dim * math.log(0.5), device=self.device)
        with torch.no_grad():
            _, policy_action, policy_log_pi = self.actor(conv.repeat_interleave(n, 0))
            _, next_action, next_log_pi = self.actor(next_conv.repeat_interleave(n, 0))
        out = []
        for a, log_density in ((random_action, random_log_density), (policy_action, policy_log_pi),
                               (next_action, next_log_pi)):
            q1, q2 = self.critic.q(feature_n, a)
            out.append((q1.view(b, n), q2.view(b, n), log_density.view(b, n)))
        return out

    def critic_penalty(self, feature: torch.Tensor, conv: torch.Tensor, next_conv: torch.Tensor,
                       action: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        c = self.config
        sampled = self.sampled_action_values(feature, conv, next_conv)
        gap = torch.stack([conservative_penalty(q_data, [(s[i], s[2]) for s in sampled], c.cql_weight,
                                                c.cql_temperature, c.cql_importance_sample)
                           for i, q_data in enumerate((q1, q2))])
        metrics = {"cql_penalty": gap.mean().detach(), "cql_q_random": sampled[0][0].mean().detach(),
                   "cql_q_policy": sampled[1][0].mean().detach()}
        if not c.cql_lagrange:
            return gap.sum(), metrics
        # CQL-Lagrange (Eq. 30): alpha' grows while the gap exceeds tau, shrinks otherwise
        alpha_prime = self.cql_alpha.value.clamp(0.0, 1e6)
        alpha_loss = -(alpha_prime * (gap.detach() - c.cql_target_gap)).mean()
        self.optimizers["cql_alpha"].zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.optimizers["cql_alpha"].step()
        metrics["cql_alpha"] = alpha_prime.detach()
        return (alpha_prime.detach() * (gap - c.cql_target_gap)).sum(), metrics


class CQLAgent(ConservativeCritic, SACAgent):
    """Pixel SAC with CQL's conservative critic."""


def make_agent(spec: EnvSpec, config: CQLConfig, device: str = "cpu", seed: int = 0) -> CQLAgent:
    seed_torch(seed)
    return CQLAgent(spec.action_dim, config, device)
