"""State-based Soft Actor-Critic (Haarnoja et al., 2018), the behaviour agent for DMC datasets.

Small MLPs on the low-dimensional state, so it trains at a few hundred updates per second on CPU.
The replay buffer keeps the dataset's row convention (row t holds o_t and the action a_{t-1} that
led to it), so a medium-replay dataset *is* this agent's replay buffer and resuming a collection
rebuilds the buffer from the committed rows.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from collectors.errors import unknown


@dataclass(frozen=True)
class SACConfig:
    """SAC hyperparameters (defaults: the usual state-based DMC settings)."""

    hidden: int = 256  # units per hidden layer of actor and critics
    layers: int = 2  # hidden layers
    lr: float = 3e-4  # Adam learning rate of actor, critics and temperature
    batch_size: int = 256
    discount: float = 0.99
    tau: float = 0.005  # Polyak rate of the target critics
    init_temperature: float = 0.1
    random_steps: int = 5000  # uniform-random agent steps before the first update
    updates_per_step: int = 1
    eval_every: int = 10_000  # agent steps between evaluations while training
    eval_episodes: int = 5
    expert_fraction: float = 0.9  # "expert" training stops at this fraction of the expert reference ...
    max_train_steps: int = 1_000_000  # ... or after this many agent steps

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "SACConfig":
        presets = {
            "smoke": cls(hidden=64, batch_size=64, random_steps=100, eval_every=200, eval_episodes=1,
                         max_train_steps=400),
            # physics-only evaluation costs ~1/50 of the training steps it follows (which render their frames),
            # so evaluate often: medium-replay stops within 1,000 steps of first reaching its level
            "quick": cls(random_steps=2500, eval_every=1000, eval_episodes=5, max_train_steps=300_000),
            "paper": cls(),
        }
        if name not in presets:
            raise unknown("SAC preset", name, presets)
        return replace(presets[name], **overrides)


def mlp(inp: int, out: int, hidden: int, layers: int) -> nn.Sequential:
    dims = [inp] + [hidden] * layers
    mods: list[nn.Module] = []
    for a, b in zip(dims[:-1], dims[1:]):
        mods += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*mods, nn.Linear(dims[-1], out))


class Actor(nn.Module):
    """Tanh-squashed diagonal Gaussian policy."""

    def __init__(self, state_dim: int, action_dim: int, config: SACConfig):
        super().__init__()
        self.net = mlp(state_dim, 2 * action_dim, config.hidden, config.layers)

    def forward(self, state: torch.Tensor, deterministic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.net(state).chunk(2, dim=-1)
        log_std = torch.tanh(log_std)
        log_std = -5.0 + 3.5 * (log_std + 1.0)  # log std in [-5, 2]
        std = log_std.exp()
        pre = mean if deterministic else mean + std * torch.randn_like(mean)
        action = torch.tanh(pre)
        # log pi(a|s) with the tanh change of variables (SAC paper, Appendix C, Eq. 21)
        log_prob = (-0.5 * ((pre - mean) / std) ** 2 - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)
        log_prob = log_prob - (2 * (np.log(2.0) - pre - F.softplus(-2 * pre))).sum(-1)
        return action, log_prob


class Critic(nn.Module):
    """Twin Q-networks (clipped double-Q)."""

    def __init__(self, state_dim: int, action_dim: int, config: SACConfig):
        super().__init__()
        self.q1 = mlp(state_dim + action_dim, 1, config.hidden, config.layers)
        self.q2 = mlp(state_dim + action_dim, 1, config.hidden, config.layers)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([state, action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class ReplayBuffer:
    """Rows in the dataset convention; row i is a valid transition start when row i+1 continues its episode."""

    def __init__(self, state_dim: int, action_dim: int, capacity: int = 1 << 16):
        self.state = np.zeros((capacity, state_dim), np.float32)
        self.action = np.zeros((capacity, action_dim), np.float32)
        self.reward = np.zeros(capacity, np.float32)
        self.discount = np.zeros(capacity, np.float32)
        self.valid = np.zeros(capacity, bool)
        self.size = 0

    def add(self, state: np.ndarray, action: np.ndarray, reward: float, discount: float, is_first: bool) -> None:
        """Append one row (o_t, a_{t-1}, r_t, discount_t)."""
        if self.size == len(self.state):
            for name in ("state", "action", "reward", "discount", "valid"):
                old = getattr(self, name)
                setattr(self, name, np.concatenate([old, np.zeros_like(old)]))
        i = self.size
        self.state[i], self.action[i], self.reward[i], self.discount[i] = state, action, reward, discount
        if i > 0 and not is_first:
            self.valid[i - 1] = True
        self.size += 1

    def add_rows(self, rows: dict[str, np.ndarray]) -> None:
        """Append many rows at once (a committed dataset's state/action/reward/discount/is_first)."""
        for t in range(len(rows["reward"])):
            self.add(rows["state"][t], rows["action"][t], rows["reward"][t], rows["discount"][t], rows["is_first"][t])

    @property
    def transitions(self) -> int:
        return int(self.valid[:self.size].sum())

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        idx = rng.choice(np.flatnonzero(self.valid[:self.size]), batch_size)
        nxt = idx + 1
        return {"state": torch.as_tensor(self.state[idx]), "action": torch.as_tensor(self.action[nxt]),
                "reward": torch.as_tensor(self.reward[nxt]), "discount": torch.as_tensor(self.discount[nxt]),
                "next_state": torch.as_tensor(self.state[nxt])}


class SACAgent:
    """Actor, twin critics with targets and a learned temperature, on the low-dimensional state."""

    def __init__(self, state_dim: int, action_dim: int, config: SACConfig = SACConfig(), seed: int = 0):
        torch.manual_seed(seed)
        self.config = config
        self.actor = Actor(state_dim, action_dim, config)
        self.critic = Critic(state_dim, action_dim, config)
        self.critic_target = Critic(state_dim, action_dim, config)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.log_alpha = torch.tensor(np.log(config.init_temperature), requires_grad=True)
        self.target_entropy = -float(action_dim)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=config.lr)

    @torch.no_grad()
    def act(self, state: np.ndarray, deterministic: bool = False) -> np.ndarray:
        action, _ = self.actor(torch.as_tensor(state, dtype=torch.float32)[None], deterministic)
        return action[0].numpy()

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():  # soft Bellman target (SAC paper Eq. 3 with clipped double-Q)
            next_action, next_logp = self.actor(batch["next_state"])
            q1_t, q2_t = self.critic_target(batch["next_state"], next_action)
            target = batch["reward"] + self.config.discount * batch["discount"] * (
                torch.min(q1_t, q2_t) - alpha * next_logp)
        q1, q2 = self.critic(batch["state"], batch["action"])
        critic_loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)  # Eq. 5
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()

        action, logp = self.actor(batch["state"])
        q1_pi, q2_pi = self.critic(batch["state"], action)
        actor_loss = (alpha * logp - torch.min(q1_pi, q2_pi)).mean()  # Eq. 7
        self.actor_opt.zero_grad()
        actor_loss.backward(inputs=list(self.actor.parameters()))  # no critic weight gradients: not used
        self.actor_opt.step()

        alpha_loss = -(self.log_alpha * (logp.detach() + self.target_entropy)).mean()  # Eq. 18
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()

        with torch.no_grad():
            for p, p_t in zip(self.critic.parameters(), self.critic_target.parameters()):
                p_t.lerp_(p, self.config.tau)
        return {"critic_loss": critic_loss.item(), "actor_loss": actor_loss.item(), "alpha": alpha.item()}

    def state_dict(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "critic": self.critic.state_dict(),
                "critic_target": self.critic_target.state_dict(), "log_alpha": self.log_alpha.detach().clone(),
                "actor_opt": self.actor_opt.state_dict(), "critic_opt": self.critic_opt.state_dict(),
                "alpha_opt": self.alpha_opt.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])
        self.actor_opt.load_state_dict(state["actor_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])


class SACTrainer:
    """Online SAC: explore, store each row, update every step once past `random_steps`."""

    def __init__(self, state_dim: int, action_dim: int, config: SACConfig, seed: int = 0):
        self.config = config
        self.agent = SACAgent(state_dim, action_dim, config, seed)
        self.buffer = ReplayBuffer(state_dim, action_dim)
        self.rng = np.random.default_rng(seed)
        self.action_dim = action_dim
        self.steps = 0  # agent steps taken while training

    def explore(self, state: np.ndarray) -> np.ndarray:
        if self.steps < self.config.random_steps:
            return self.rng.uniform(-1.0, 1.0, self.action_dim).astype(np.float32)
        return self.agent.act(state)

    def observe(self, state: np.ndarray, action: np.ndarray, reward: float, discount: float, is_first: bool) -> None:
        """Store one row; after a non-first row, count a step and update."""
        self.buffer.add(state, action, reward, discount, is_first)
        if is_first:
            return
        self.steps += 1
        if self.steps >= self.config.random_steps and self.buffer.transitions >= self.config.batch_size:
            for _ in range(self.config.updates_per_step):
                self.agent.update(self.buffer.sample(self.config.batch_size, self.rng))

    def state_dict(self) -> dict[str, Any]:
        """Everything but the buffer (which is rebuilt from rows): networks, optimisers, RNGs, step count."""
        return {"agent": self.agent.state_dict(), "rng": self.rng.bit_generator.state, "steps": self.steps,
                "torch_rng": torch.get_rng_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_state_dict(state["agent"])
        self.rng.bit_generator.state = state["rng"]
        self.steps = state["steps"]
        torch.set_rng_state(state["torch_rng"])
