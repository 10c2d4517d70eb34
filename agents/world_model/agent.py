"""The Dreamer agent (DreamerV2, Hafner et al. 2021) on the shared world model: the world model and the
imagination actor-critic behind one `update` / `act` surface. Offline DreamerV2 (baselines/dreamerv2.py)
registers it as a method; CoWorld, Vid2Act and WPT compose or extend it.

Per update (one batch of B sequences of length T):
    1. world model: encode o_{1:T}, filter with the RSSM, reconstruct images, rewards and
       discounts, balanced KL                                   (Eq. 2)
    2. behaviour: from every posterior state imagine H steps, λ-returns with the target
       critic, actor by dynamics backpropagation + entropy, critic regression (Eqs. 4-6)
Acting filters the observation with the posterior (state = latent + previous action); eval mode
uses the posterior mode and the actor's mode. Frames of another size than `image_size` are resized.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from agents.contract import Batch, Metrics, Obs
from agents.world_model.behavior import ActorCritic
from agents.world_model.config import DreamerConfig
from agents.world_model.world_model import WorldModel, autocast, to_torch


class DreamerV2Agent:
    def __init__(self, action_dim: int, config: DreamerConfig, device: str = "cpu"):
        self.config, self.device, self.action_dim = config, torch.device(device), action_dim
        self.wm = WorldModel(config.wm, action_dim, config.channels_last).to(self.device)
        self.behavior = ActorCritic(config.behavior, self.wm.feat_dim, action_dim).to(self.device)
        self.precision = partial(autocast, self.device, config.amp, config.cpu_amp)

    def update(self, batch: Batch) -> Metrics:
        data = to_torch(batch, self.device)
        with self.precision():
            model_loss, metrics, post = self.wm.loss(data)
        metrics["model_grad_norm"] = self.wm.opt.step(model_loss)
        metrics.update(self.behavior.update(self.wm, post, data["discount"], self.precision))
        return metrics

    @torch.no_grad()
    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        image = torch.as_tensor(obs["image"], device=self.device)[None]  # resized by the encoder if needed
        if state is None:
            state = (self.wm.rssm.initial(1, self.device), torch.zeros(1, self.action_dim, device=self.device))
        latent, prev_action = state
        with self.precision():
            embed = self.wm.encode(image)
            latent = self.wm.rssm.obs_step(latent, self.wm.pad_action(prev_action), embed, sample=not eval_mode)
            dist = self.behavior.policy(self.wm.rssm.feat(latent))
            action = (dist.mode() if eval_mode else dist.rsample()).float().clamp(-1, 1)
        return action[0].cpu().numpy(), (latent, action)

    def state_dict(self) -> dict[str, Any]:
        return {"wm": self.wm.state_dict(), "behavior": self.behavior.state_dict(),
                "wm_opt": self.wm.opt.opt.state_dict(), "actor_opt": self.behavior.actor_opt.opt.state_dict(),
                "critic_opt": self.behavior.critic_opt.opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.wm.load_state_dict(state["wm"])
        self.behavior.load_state_dict(state["behavior"])
        self.wm.opt.opt.load_state_dict(state["wm_opt"])
        self.behavior.actor_opt.opt.load_state_dict(state["actor_opt"])
        self.behavior.critic_opt.opt.load_state_dict(state["critic_opt"])
