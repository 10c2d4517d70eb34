"""Actor-critic learning in imagination (DreamerV2 §2.3, Eqs. 4-6).

From every posterior state of a batch, the world model imagines H steps with actions from the
actor; λ-returns of the predicted rewards bootstrap from a slowly updated target critic; the actor
maximises them by backpropagating through the dynamics (ρ = 0), REINFORCE (ρ = 1) or a mix, plus
an entropy bonus η; the critic regresses the λ-returns.
"""
from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch
from torch import Tensor, nn

from agents.world_model.config import BehaviorConfig
from agents.world_model.nets import MLP, ActionDist, Optimizer
from agents.world_model.rssm import State
from agents.world_model.world_model import WorldModel


def lambda_return(reward: Tensor, value: Tensor, discount: Tensor, lambda_: float) -> Tensor:
    """λ-returns (DreamerV2 Eq. 4) for states 0..H-1 of an imagined trajectory.

    `reward`, `value`, `discount` (H, N) belong to states 1..H (reward and γ·continuation of
    arriving there, critic value there):
        R_t = r_{t+1} + d_{t+1} ((1 - λ) v_{t+1} + λ R_{t+1}),   R_H = v_H.
    """
    assert reward.shape == value.shape == discount.shape, \
        f"lambda_return: reward {tuple(reward.shape)}, value {tuple(value.shape)}, discount {tuple(discount.shape)}"
    returns, last = [], value[-1]
    for t in reversed(range(reward.shape[0])):
        last = reward[t] + discount[t] * ((1 - lambda_) * value[t] + lambda_ * last)
        returns.append(last)
    return torch.stack(returns[::-1])


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No parameter gradients for `modules` (gradients still flow through their activations)."""
    flags = [[p.requires_grad for p in m.parameters()] for m in modules]
    for m in modules:
        m.requires_grad_(False)
    try:
        yield
    finally:
        for m, fs in zip(modules, flags):
            for p, f in zip(m.parameters(), fs):
                p.requires_grad_(f)


class ActorCritic(nn.Module):
    def __init__(self, cfg: BehaviorConfig, feat_dim: int, action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.actor = MLP(feat_dim, 2 * action_dim, cfg.units, cfg.layers)
        self.critic = MLP(feat_dim, 1, cfg.units, cfg.layers, fp32_out=True)  # values of ~100s: float32
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self._updates: int | None = 0  # `updates` on the host (read from the buffer once after a load)
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "_updates", None))
        self.actor_opt = Optimizer([self.actor], cfg.actor_lr, cfg.eps, cfg.weight_decay, cfg.grad_clip)
        self.critic_opt = Optimizer([self.critic], cfg.critic_lr, cfg.eps, cfg.weight_decay, cfg.grad_clip)

    def policy(self, feat: Tensor) -> ActionDist:
        return ActionDist(self.actor(feat).float(), self.cfg.min_std, self.cfg.init_std)

    def loss(self, wm: WorldModel, start: State, start_cont: Tensor | None = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Imagine from `start` (any leading shape, detached) and return (actor loss, critic loss, metrics)."""
        cfg = self.cfg
        start = {k: v.detach().reshape(-1, v.shape[-1]) for k, v in start.items()}
        dists: list[ActionDist] = []

        def act(feat: Tensor) -> Tensor:
            dists.append(self.policy(feat))
            return dists[-1].rsample()

        with frozen(wm):
            feats, actions = wm.imagine(act, start, cfg.horizon)  # (H+1, N, F), (H, N, A)
            reward = wm.reward(feats[1:])
            discount = cfg.gamma * wm.continuation(feats[1:])
            value = self.target_critic(feats[1:]).float()
            returns = lambda_return(reward, value, discount, cfg.lambda_)  # (H, N), Eq. 4
        weight = torch.cumprod(torch.cat([torch.ones_like(discount[:1]), discount[:-1]]), 0).detach()
        if start_cont is not None:  # imagination from a terminal state carries no weight
            weight = weight * start_cont.detach().reshape(1, -1)
        entropy = torch.stack([d.entropy() for d in dists])
        value_pred = self.critic(feats[:-1].detach()).float()
        objective = returns  # dynamics backpropagation
        if cfg.actor_grad_mix > 0:  # REINFORCE with the critic as baseline
            log_prob = torch.stack([d.log_prob(a.detach()) for d, a in zip(dists, actions)])
            reinforce = log_prob * (returns - value_pred).detach()
            objective = cfg.actor_grad_mix * reinforce + (1 - cfg.actor_grad_mix) * returns
        actor_loss = -(weight * (objective + cfg.actor_entropy * entropy)).mean()  # Eq. 6
        critic_loss = (weight * 0.5 * (value_pred - returns.detach()).pow(2)).mean()  # Eq. 5
        metrics = {"actor_loss": actor_loss, "critic_loss": critic_loss, "actor_entropy": entropy.mean(),
                   "imag_return": returns.mean(), "imag_reward": reward.mean(), "value": value_pred.mean()}
        return actor_loss, critic_loss, {k: v.detach() for k, v in metrics.items()}

    def update(self, wm: WorldModel, start: State, start_cont: Tensor | None = None,
               precision: Callable[[], AbstractContextManager] = nullcontext) -> dict[str, Tensor]:
        """One actor and one critic step (losses computed under `precision`, e.g. autocast); the
        target critic is refreshed every `target_update` updates."""
        with precision():
            actor_loss, critic_loss, metrics = self.loss(wm, start, start_cont)
        metrics["actor_grad_norm"] = self.actor_opt.step(actor_loss)
        metrics["critic_grad_norm"] = self.critic_opt.step(critic_loss)
        if self._updates is None:
            self._updates = int(self.updates)
        if self._updates % self.cfg.target_update == 0:
            self.target_critic.load_state_dict(self.critic.state_dict())
        self._updates += 1
        self.updates += 1
        return metrics
