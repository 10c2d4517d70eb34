"""DrQ+BC: V-D4RL's model-free baseline (Lu, Ball, Rudner, Parker-Holder, Osborne, Teh, TMLR 2023):
TD3+BC's behaviour-regularised actor (Fujimoto & Gu 2021) on DrQ-v2's pixel actor-critic (Yarats et al. 2022),
on the core of baselines/modelfree.py with its deterministic actor.

Per update, on a batch of random-shifted frame stacks (pad 4):
1. critic: clipped double-Q regression to r + gamma^n min Q'(o', pi(o') + clip(eps, -c, c)), eps ~ N(0, sigma^2);
   the convs are trained by the critic loss only; the target critic reads the online convs (`encoder_tau` 1)
   through its own feature head, averaged at `critic_tau` (`target_head_tau`);
2. actor, on the detached conv features, with a = pi(o) + clipped noise:
   loss = -lambda Q(o, a) + (a - a_data)^2,  lambda = alpha / mean|Q| (detached)    (TD3+BC Eq. 5, alpha 2.5)
3. sigma anneals linearly 1.0 -> 0.1 (V-D4RL offline_dmc.yaml `linear(1.0,0.1,250000)` over loop steps, one
   update every 2 of them: 125k updates).

Presets (fields documented in `ModelFreeConfig` and below):
- `paper`: V-D4RL's command (README: `drqbc/train.py ... nstep=3`) on cfgs/config.yaml + algo/drqv2.yaml +
  task/offline_dmc.yaml: 84-px frames, frame stack 3, batch 256, lr 3e-4 (offline_dmc.yaml) for encoder, critic
  and actor, Adam betas (0.9, 0.999), 3-step returns, gamma 0.99, feature 50, hidden 1024, critic tau 0.01,
  every update trains the actor and the targets, stddev clip 0.3, bc_weight 2.5.
- `quick`: a CPU machine: 64-px frames, batch 128, hidden 256, sigma annealed over 10k updates.
- `smoke`: seconds in tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from agents.contract import Metrics
from baselines.modelfree import ModelFreeConfig, SACAgent, seed_torch
from collectors.envs.base import EnvSpec

# DrQ-v2's actor-critic as V-D4RL ran it offline (shared with BC, baselines/bc.py)
DRQV2 = dict(actor="deterministic", stddev_schedule=(1.0, 0.1, 125_000), stddev_clip=0.3, adam_beta=0.9,
             critic_tau=0.01, encoder_tau=1.0, target_head_tau=0.01, actor_update_freq=1,
             critic_target_update_freq=1)
VD4RL = dict(DRQV2, image_size=84, augmentation="shift", pad=4, frame_stack=3, batch_size=256, n_step=3,
             discount=0.99, feature_dim=50, hidden_dim=1024, critic_lr=3e-4, actor_lr=3e-4)
SMALL = dict(DRQV2, image_size=32, augmentation="shift", pad=4, batch_size=128, n_step=3, hidden_dim=256,
             critic_lr=3e-4, actor_lr=3e-4, stddev_schedule=(1.0, 0.1, 10_000))
# `owbench check drq+bc`'s setting: batch 32, sigma annealed over the first quarter of its 4,000 updates (as
# V-D4RL's 125k of 550k)
QUICK = dict(SMALL, batch_size=32, stddev_schedule=(1.0, 0.1, 1_000))
SMOKE = dict(DRQV2, image_size=64, batch_size=8, hidden_dim=32, feature_dim=16, num_filters=8,
             stddev_schedule=(1.0, 0.1, 10))


@dataclass(frozen=True)
class DrQBCConfig(ModelFreeConfig):
    """The model-free core with DrQ-v2's deterministic actor plus TD3+BC's regulariser."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"smoke": SMOKE, "quick": QUICK, "paper": VD4RL}

    bc_weight: float = 2.5  # alpha of TD3+BC Eq. 5: lambda = alpha / mean|Q| (V-D4RL config.yaml: 2.5)


Config = DrQBCConfig


class DrQBCAgent(SACAgent):
    """DrQ-v2 with TD3+BC's actor loss."""

    def actor_loss(self, q: torch.Tensor, pi: torch.Tensor, log_pi: torch.Tensor,
                   data_action: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        lam = self.config.bc_weight / q.detach().abs().mean()
        bc = F.mse_loss(pi, data_action)
        loss = -lam * q.mean() + bc  # TD3+BC Eq. 5 (Fujimoto & Gu 2021), V-D4RL drqv2.py update_actor
        return loss, {"actor_loss": -q.mean().detach(), "actor_bc_loss": bc.detach(), "bc_lambda": lam,
                      "actor_std": torch.tensor(self.actor.std)}


def make_agent(spec: EnvSpec, config: DrQBCConfig, device: str = "cpu", seed: int = 0) -> DrQBCAgent:
    seed_torch(seed)
    return DrQBCAgent(spec.action_dim, config, device)
