"""Vid2Act's action-replay model G_θ (Pan et al., §4.2, Eqs. 3-4): a state-conditioned VAE as in BCQ.

    encoder   μ, σ = E_θ1(s, a, k)
    decoder   â = D_θ2(s, z, k),   z ~ N(μ, σ)
    loss      Σ (a - â)² + c · KL(N(μ, σ) ‖ N(0, 1))                                  (Eq. 4)

s is a world-model state (the teacher's posterior on source data; the student's state when
replaying), a an action zero-padded to a common size, k the source-task label (one-hot).
Replaying uses the decoder alone: `decode(s, k)` with z = 0 (deterministic) or BCQ's clipped
prior sample z ~ N(0, 1) clipped to [-0.5, 0.5].
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F


def _mlp(in_dim: int, out_dim: int, hidden: int) -> nn.Sequential:
    """BCQ's VAE body: two hidden ReLU layers."""
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, out_dim))


class ActionReplay(nn.Module):
    def __init__(self, state_dim: int, action_dim: int, num_tasks: int, latent: int = 8, hidden: int = 750):
        super().__init__()
        self.state_dim, self.action_dim, self.num_tasks, self.latent = state_dim, action_dim, num_tasks, latent
        self.encoder = _mlp(state_dim + action_dim + num_tasks, 2 * latent, hidden)  # E_θ1
        self.decoder = _mlp(state_dim + latent + num_tasks, action_dim, hidden)  # D_θ2

    def _label(self, task: Tensor, like: Tensor) -> Tensor:
        assert task.shape == like.shape[:-1], f"task {tuple(task.shape)} vs state {tuple(like.shape)}"
        return F.one_hot(task.long(), self.num_tasks).to(like.dtype)

    def encode(self, state: Tensor, action: Tensor, task: Tensor) -> tuple[Tensor, Tensor]:
        """μ, σ of q(z | s, a, k) (Eq. 3); log σ clipped to [-4, 15] as in BCQ."""
        mean, log_std = self.encoder(torch.cat([state, action, self._label(task, state)], -1)).chunk(2, -1)
        return mean, log_std.clamp(-4, 15).exp()

    def decode(self, state: Tensor, task: Tensor, z: Tensor | None = None, sample: bool = False) -> Tensor:
        """â = D_θ2(s, z, k) in [-1, 1]; z = 0 unless given or `sample` (BCQ's clipped prior sample)."""
        if z is None:
            shape = (*state.shape[:-1], self.latent)
            z = torch.randn(shape, device=state.device).clamp(-0.5, 0.5) if sample else state.new_zeros(shape)
        return torch.tanh(self.decoder(torch.cat([state, z, self._label(task, state)], -1)))

    def loss(self, state: Tensor, action: Tensor, task: Tensor, kl_scale: float = 0.5,
             mask: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """L_replay (Eq. 4) averaged over the (masked) pairs; returns (loss, detached metrics)."""
        mean, std = self.encode(state, action, task)
        z = mean + std * torch.randn_like(std)
        recon = self.decode(state, task, z)
        recon_loss = (recon - action).pow(2).sum(-1)
        kl = 0.5 * (mean.pow(2) + std.pow(2) - 1 - 2 * std.log()).sum(-1)  # KL(N(μ, σ) ‖ N(0, 1))
        weight = torch.ones_like(recon_loss) if mask is None else mask.to(recon_loss.dtype)
        norm = weight.sum().clamp(min=1)
        recon_loss, kl = (recon_loss * weight).sum() / norm, (kl * weight).sum() / norm
        loss = recon_loss + kl_scale * kl
        return loss, {"replay_loss": loss.detach(), "replay_recon": recon_loss.detach(), "replay_kl": kl.detach()}
