"""BC: V-D4RL's behaviour-cloning baseline (Lu et al., TMLR 2023, drqbc/bcagent.py) on the model-free core.

The encoder (conv trunk of baselines/modelfree.py) and DrQ-v2's deterministic actor (its own feature head,
MLP, tanh) are trained end to end by one loss on random-shifted frame stacks (pad 4):

    loss = (a - a_data)^2,   a = pi(o) + clip(eps, -c, c),  eps ~ N(0, sigma^2)

with sigma annealed as in DrQ+BC (baselines/drq_bc.py). No critic, no reward. Evaluation acts with tanh(mu).

Presets (fields documented in `ModelFreeConfig`):
- `paper`: V-D4RL's `algo=bc` on cfgs/config.yaml + task/offline_dmc.yaml: 84-px frames, frame stack 3, batch 256,
  lr 3e-4 (encoder and actor), feature 50, hidden 1024, stddev clip 0.3, sigma 1.0 -> 0.1 over 125k updates.
- `quick`: a CPU machine: 64-px frames, batch 128, hidden 256.
- `smoke`: seconds in tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from agents.contract import Batch, Metrics
from baselines import drq_bc
from baselines.modelfree import ConvTrunk, ModelFreeConfig, PixelAgent, adam, seed_torch
from collectors.envs.base import EnvSpec


@dataclass(frozen=True)
class BCConfig(ModelFreeConfig):
    """The model-free core's encoder and deterministic actor; critic fields are unused."""

    # V-D4RL's BC command keeps offline_dmc.yaml's nstep 1 (returns are unused by BC); `quick` is `owbench check
    # bc`'s setting: actor lr 1e-3 (4,000 updates at 3e-4 underfit)
    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {"smoke": drq_bc.SMOKE, "quick": dict(drq_bc.SMALL, actor_lr=1e-3),
                                                    "paper": dict(drq_bc.VD4RL, n_step=1)}


Config = BCConfig


class BCAgent(PixelAgent):
    """Encoder + deterministic actor regressed onto the dataset's actions."""

    def __init__(self, action_dim: int, config: BCConfig, device: str = "cpu"):
        super().__init__(action_dim, config, device)
        self.encoder = ConvTrunk(self.channels, config.input_size, config.num_filters, config.num_layers,
                                 config.amp).to(self.device)
        self.actor = self.make_actor(self.encoder.out_dim)
        # V-D4RL: one Adam for the encoder, one for the actor, both at lr and stepped on the same loss
        self.optimizers = {"encoder": adam(self.encoder, config.actor_lr, config.adam_beta),
                           "actor": adam(self.actor, config.actor_lr, config.adam_beta)}

    def modules(self) -> dict[str, nn.Module]:
        return {"encoder": self.encoder, "actor": self.actor}

    def actor_input(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(obs)

    def update(self, batch: Batch) -> Metrics:
        obs = self.augment(self.frames(batch["obs"]))
        self.anneal()
        _, pi, _ = self.actor(self.actor_input(obs))
        loss = F.mse_loss(pi, self.tensor(batch["action"]))  # V-D4RL bcagent.py update_actor
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt in self.optimizers.values():
            opt.step()
        self.updates += 1
        return {"actor_bc_loss": loss.detach(), "actor_std": torch.tensor(self.actor.std)}


def make_agent(spec: EnvSpec, config: BCConfig, device: str = "cpu", seed: int = 0) -> BCAgent:
    seed_torch(seed)
    return BCAgent(spec.action_dim, config, device)
