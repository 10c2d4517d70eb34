"""The world model: encoder + RSSM + decoder + reward/discount (and extra) heads (DreamerV2 §2.1).

Hooks for the methods built on it:
- `encode(image)` / `decode(feat)`: the encoder output e_t (CoWorld compares source and target encoders) and
  the decoded mean image (open-loop predictions);
- `rssm.posterior(deter, embed)` / `rssm.img_step(state, action)`: representation from any embed and
  prior transitions from any state (CoWorld's domain KL, Vid2Act's teacher);
- `WorldModelConfig.action_dim`: actions zero-padded to a larger input (WPT's multi-embodiment model);
- `reward_head=False` / `discount_head=False`: reward-free training; `extra_heads`: named MLPs on s_t.
"""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from agents.devices import autocast  # noqa: F401 - re-exported (agents.world_model)
from agents.world_model.config import WorldModelConfig
from agents.world_model.nets import MLP, Decoder, Encoder, Optimizer, bernoulli_nll, normalize_image
from agents.world_model.rssm import RSSM, State


def to_torch(batch: dict[str, Any], device: str | torch.device) -> dict[str, Tensor]:
    """numpy/torch batch -> tensors on `device`; uint8 images stay uint8 (normalised in the model)."""
    out = {}
    for key, value in batch.items():
        tensor = torch.as_tensor(np.asarray(value) if not isinstance(value, Tensor) else value)
        if tensor.is_floating_point():
            tensor = tensor.float()
        if str(device).startswith("cuda") and tensor.device.type == "cpu":
            tensor = tensor.pin_memory()
        out[key] = tensor.to(device, non_blocking=True)
    return out


class WorldModel(nn.Module):
    def __init__(self, cfg: WorldModelConfig, action_dim: int, channels_last: bool = True):
        super().__init__()
        if cfg.action_dim and cfg.action_dim < action_dim:
            raise ValueError(f"padded action_dim {cfg.action_dim} is smaller than the task's {action_dim}")
        self.cfg = cfg
        self.action_dim = action_dim  # the task's true action dimension
        self.input_action_dim = cfg.action_dim or action_dim  # what the RSSM consumes (zero-padded)
        self.encoder = Encoder(cfg.image_size, cfg.depth, channels_last)
        self.rssm = RSSM(cfg, self.input_action_dim, self.encoder.embed_dim)
        feat = self.rssm.feat_dim
        self.decoder = Decoder(feat, cfg.image_size, cfg.depth, channels_last)
        heads = {name: MLP(feat, dim, cfg.units, cfg.layers) for name, dim in cfg.extra_heads}
        if cfg.reward_head:  # rewards near 200 are 1.0 apart in bfloat16: the output layer runs in float32
            heads["reward"] = MLP(feat, 1, cfg.units, cfg.layers, fp32_out=True)
        if cfg.discount_head:
            heads["discount"] = MLP(feat, 1, cfg.units, cfg.layers)  # logits of the continuation flag
        self.heads = nn.ModuleDict(heads)
        self.opt = Optimizer([self], cfg.lr, cfg.eps, cfg.weight_decay, cfg.grad_clip)

    @property
    def feat_dim(self) -> int:
        return self.rssm.feat_dim

    def pad_action(self, action: Tensor) -> Tensor:
        """Zero-pad actions (..., A) to the model's input dimension; wider actions are an error (a
        negative pad would silently crop action dimensions)."""
        pad = self.input_action_dim - action.shape[-1]
        if pad < 0:
            raise ValueError(f"actions have {action.shape[-1]} dims but the model takes {self.input_action_dim}")
        return F.pad(action, (0, pad)) if pad else action

    def resize(self, image: Tensor) -> Tensor:
        """uint8 frames (..., H, W, 3) of another size -> the model's size (area down, bilinear up)."""
        size = self.cfg.image_size
        if image.shape[-3:-1] == (size, size):
            return image
        x = image.reshape(-1, *image.shape[-3:]).permute(0, 3, 1, 2).float()
        if image.shape[-3] > size:
            x = F.interpolate(x, size=(size, size), mode="area")
        else:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        x = x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
        return x.reshape(*image.shape[:-3], size, size, 3)

    def _convs(self, device: torch.device) -> AbstractContextManager:
        """The conv stacks' precision: bfloat16 autocast with `conv_amp` where bfloat16 is native (CPUs with
        AVX512-BF16 / AMX, CUDA >= 8.0)."""
        return autocast(device, self.cfg.conv_amp, cpu=self.cfg.conv_amp)

    def encode(self, image: Tensor) -> Tensor:
        """uint8 images (..., H, W, 3), resized to the model's size -> embeddings e_t (..., E), float32."""
        with self._convs(image.device):
            return self.encoder(self.resize(image)).float()

    def decode(self, feat: Tensor) -> Tensor:
        """Features (..., F) -> mean images (..., 3, H, W) in the normalised space, float32."""
        with self._convs(feat.device):
            return self.decoder(feat).float()

    def observe(self, batch: dict[str, Tensor], sample: bool = True) -> tuple[State, Tensor, Tensor]:
        """Posterior states (B, T, ...), prior parameters and embeddings of a sequence batch."""
        embed = self.encode(batch["image"])
        post, prior = self.rssm.observe(embed, self.pad_action(batch["action"]), batch["is_first"], sample=sample)
        return post, prior, embed

    def loss(self, batch: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor], State]:
        """The world-model objective (DreamerV2 Eq. 2): image, reward and discount log-likelihoods
        plus the balanced KL. Returns (loss, detached metrics, posterior states)."""
        cfg = self.cfg
        batch = {**batch, "image": self.resize(batch["image"])}
        post, prior, _ = self.observe(batch)
        feat = self.rssm.feat(post)
        kl_loss, kl_value = self.rssm.kl_loss(post["stats"], prior)
        recon = self.decode(feat)
        image_nll = 0.5 * (recon - normalize_image(batch["image"])).pow(2).sum((-3, -2, -1)).mean()  # N(x; mu, 1)
        loss = cfg.kl_scale * kl_loss + cfg.image_scale * image_nll
        metrics = {"kl": kl_value, "image_loss": image_nll}
        if "reward" in self.heads:
            reward_nll = 0.5 * (self.heads["reward"](feat).float() - batch["reward"]).pow(2).mean()
            loss = loss + cfg.reward_scale * reward_nll
            metrics["reward_loss"] = reward_nll
        if "discount" in self.heads:
            discount_nll = bernoulli_nll(self.heads["discount"](feat).float(), batch["discount"]).mean()
            loss = loss + cfg.discount_scale * discount_nll
            metrics["discount_loss"] = discount_nll
        metrics["model_loss"] = loss
        return loss, {k: v.detach() for k, v in metrics.items()}, post

    def imagine(self, policy: Callable[[Tensor], Tensor], start: State, horizon: int) -> tuple[Tensor, Tensor]:
        """Roll the prior forward `horizon` steps from `start` (N, ...) with actions from
        `policy(feat)`. Returns features (H+1, N, F) and actions (H, N, A); action t is taken in
        state t. Gradients flow through the dynamics into the actions (dynamics backpropagation)."""
        state = start
        feats, actions = [self.rssm.feat(state)], []
        for _ in range(horizon):
            action = policy(feats[-1].detach())
            state = self.rssm.img_step(state, self.pad_action(action))
            feats.append(self.rssm.feat(state))
            actions.append(action)
        return torch.stack(feats), torch.stack(actions)

    def reward(self, feat: Tensor) -> Tensor:
        """Predicted reward r_t of arriving in s_t (zeros without a reward head)."""
        if "reward" not in self.heads:
            return torch.zeros(feat.shape[:-1], device=feat.device)
        return self.heads["reward"](feat).float()

    def continuation(self, feat: Tensor) -> Tensor:
        """Predicted probability that the episode continues after s_t (ones without a discount head)."""
        if "discount" not in self.heads:
            return torch.ones(feat.shape[:-1], device=feat.device)
        return torch.sigmoid(self.heads["discount"](feat).float())
