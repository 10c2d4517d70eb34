"""The model-free core shared by CURL, CQL, CURL+CQL, DrQ+BC and BC: a pixel encoder, SAC with twin critics.

Pieces (CURL / SAC-AE reference code, Laskin et al. 2020; Yarats et al. 2021):
- `ConvTrunk`: 4 conv layers, 3x3, 32 channels, stride 2 first then 1, ReLU, on frames / 255;
  `FeatureHead`: fc -> LayerNorm -> tanh to `feature_dim` (50). The critic owns trunk + head;
  the actor has its own head on the critic's *detached* conv features (CURL's tied convs).
- `Actor`: tanh-squashed Gaussian, log-std squashed into [log_std_min, log_std_max] (`actor="gaussian"`);
  `DeterministicActor`: DrQ-v2's tanh(mu) plus N(0, sigma^2) noise clipped to +-`stddev_clip`, sigma annealed
  linearly by `stddev_schedule` over updates, no entropy term (`actor="deterministic"`).
- `Critic`: twin Q MLPs on (feature, action); a target copy updated by Polyak averaging
  (Q heads at `critic_tau`, the conv trunk at `encoder_tau`, the feature head at `target_head_tau`, by
  default `encoder_tau`; DrQ-v2 reads the online convs, `encoder_tau` 1, and averages its head at `critic_tau`).
- Augmentation: `random_shift` (DrQ: replicate-pad 4 and crop back) or `random_crop` (CURL: crop
  `crop_size` from a larger frame; centre crop at act time).
- `SACAgent.update(batch)` on transition batches (TransitionSampler): obs / next_obs uint8
  (B, H, W, 3*frame_stack), action (B, A), reward (B,) n-step sum, discount (B,) gamma^n * not-terminal.
  Subclasses add `critic_penalty` (CQL), `update_representation` (CURL) and `actor_loss` (DrQ+BC).
- `PixelAgent`: frames, augmentation, acting and checkpoints of any policy on the conv trunk (BC uses it alone).
`act(obs, state)` keeps the last `frame_stack` frames in `state` (the first frame repeated at
episode start), so acting sees what the sampler builds from consecutive dataset rows.
Frames whose size differs from `image_size` (64-px datasets under the 84-px `paper` presets) are
resized bicubically, as V-D4RL turned its 64-px frames into 84-px ones; re-rendering the dataset
at the preset's size from its `physics` rows avoids the interpolation.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from agents.contract import Batch, Metrics, Obs
from agents.devices import autocast
from collectors.errors import OwbenchError, unknown

FrameStack = tuple[np.ndarray, ...]


@dataclass(frozen=True)
class ModelFreeConfig:
    """Encoder + SAC hyperparameters. Defaults are CURL's (Laskin et al. 2020, Table 3 / reference code)."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {}

    # data and augmentation
    image_size: int = 64  # side of the frames the agent works at; frames of another size are resized (bicubic)
    frame_stack: int = 3  # consecutive frames stacked on channels (CURL, DrQ, V-D4RL: 3)
    augmentation: str = "shift"  # "shift": DrQ pad + random crop back to size; "crop": CURL random crop
    pad: int = 4  # shift: replicate padding in pixels (DrQ, V-D4RL: 4)
    crop_size: int = 0  # crop: side after cropping (CURL: 84 from 100 px renders); 0 = image_size - 2*pad
    # networks
    num_filters: int = 32  # conv channels (CURL, DrQ: 32)
    num_layers: int = 4  # conv layers (CURL, DrQ: 4)
    feature_dim: int = 50  # encoder output (CURL, V-D4RL: 50)
    hidden_dim: int = 1024  # actor / critic MLP width (CURL, V-D4RL: 1024)
    actor_log_std_min: float = -10.0  # CURL: [-10, 2]
    actor_log_std_max: float = 2.0
    amp: bool = True  # the conv trunk in bfloat16 autocast on GPUs with native bfloat16 (heads stay float32)
    actor: str = "gaussian"  # "gaussian": SAC's tanh-Gaussian (CURL, CQL); "deterministic": DrQ-v2's
    stddev_schedule: tuple[float, float, int] = (1.0, 0.1, 125_000)  # deterministic: sigma from, to, over updates
    stddev_clip: float = 0.3  # deterministic: the noise is clipped to +-this (DrQ-v2: 0.3)
    # sampler (read by the harness when it builds the TransitionSampler)
    batch_size: int = 512  # CURL paper: 512
    n_step: int = 1  # n-step return (CURL: 1; DrQ-v2 / V-D4RL: 3)
    discount: float = 0.99  # gamma (CURL, V-D4RL: 0.99)
    # optimisation
    critic_lr: float = 1e-3  # CURL: 1e-3 (2e-4 for cheetah)
    actor_lr: float = 1e-3  # CURL: 1e-3
    encoder_lr: float = 1e-3  # CURL: 1e-3 (representation updates)
    alpha_lr: float = 1e-4  # CURL: 1e-4, Adam betas (0.5, 0.999)
    adam_beta: float = 0.9  # Adam beta1 for critic / actor / encoder (CURL: 0.9)
    alpha_beta: float = 0.5
    init_temperature: float = 0.1  # initial SAC entropy temperature (CURL: 0.1)
    critic_tau: float = 0.01  # Polyak rate of the target Q heads (CURL, V-D4RL: 0.01)
    encoder_tau: float = 0.05  # Polyak rate of the target encoder = CURL's momentum key encoder (0.05)
    target_head_tau: float | None = None  # Polyak rate of the target encoder's feature head; None: encoder_tau
    actor_update_freq: int = 2  # actor + temperature every N updates (CURL: 2)
    critic_target_update_freq: int = 2  # target networks every N updates (CURL: 2)

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "ModelFreeConfig":
        """Config for a named preset (`smoke`, `quick`, `paper`, ...) with field overrides."""
        if name not in cls.PRESETS:
            raise unknown("preset", name, cls.PRESETS, f"presets of {cls.__name__}: {', '.join(cls.PRESETS)}")
        fields = {f.name for f in dataclasses.fields(cls)}
        for key in overrides:
            if key not in fields:
                raise unknown("config field", key, fields, f"fields of {cls.__name__}")
        return cls(**{**cls.PRESETS[name], **overrides})

    @property
    def input_size(self) -> int:
        """Side of the frames the encoder sees after augmentation."""
        if self.augmentation == "crop":
            return self.crop_size or self.image_size - 2 * self.pad
        return self.image_size


# -- augmentation ------------------------------------------------------------------------------
def random_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    """An independent random `size` x `size` crop of every image in (B, C, H, W)."""
    b, c, h, w = images.shape
    top = torch.randint(0, h - size + 1, (b, 1, 1, 1), device=images.device)
    left = torch.randint(0, w - size + 1, (b, 1, 1, 1), device=images.device)
    span = torch.arange(size, device=images.device)
    rows = (top + span.view(1, 1, size, 1)).expand(b, c, size, size)
    cols = (left + span.view(1, 1, 1, size)).expand(b, c, size, size)
    flat = images.reshape(b, c, h * w)
    return flat.gather(2, (rows * w + cols).reshape(b, c, size * size)).reshape(b, c, size, size)


def random_shift(images: torch.Tensor, pad: int) -> torch.Tensor:
    """DrQ's random shift: replicate-pad by `pad` and crop back to the original size."""
    return random_crop(F.pad(images, (pad, pad, pad, pad), mode="replicate"), images.shape[-1])


def center_crop(images: torch.Tensor, size: int) -> torch.Tensor:
    top = (images.shape[-2] - size) // 2
    left = (images.shape[-1] - size) // 2
    return images[..., top:top + size, left:left + size]


# -- networks ----------------------------------------------------------------------------------
def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, out_dim))


class ConvTrunk(nn.Module):
    """4 convs, 3x3, 32 channels, stride 2 first (CURL / DrQ), on pixels scaled to [0, 1]; with `amp` in
    bfloat16 where the device computes it natively (agents/devices.py), its output always float32."""

    def __init__(self, channels: int, size: int, num_filters: int, num_layers: int, amp: bool = False):
        super().__init__()
        self.amp = amp
        layers = [nn.Conv2d(channels, num_filters, 3, stride=2)]
        layers += [nn.Conv2d(num_filters, num_filters, 3, stride=1) for _ in range(num_layers - 1)]
        self.convs = nn.ModuleList(layers)
        side = (size - 3) // 2 + 1 - 2 * (num_layers - 1)
        if side < 1:
            raise OwbenchError(f"{size}-px frames are too small for {num_layers} conv layers; use image_size >= 32")
        self.out_dim = num_filters * side * side

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        with autocast(obs.device, self.amp):
            h = obs / 255.0
            for conv in self.convs:
                h = torch.relu(conv(h))
        return h.flatten(1).float()


class FeatureHead(nn.Module):
    """fc -> LayerNorm -> tanh, the CURL encoder's output layer."""

    def __init__(self, in_dim: int, feature_dim: int):
        super().__init__()
        self.fc, self.ln = nn.Linear(in_dim, feature_dim), nn.LayerNorm(feature_dim)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.ln(self.fc(h)))


class Encoder(nn.Module):
    def __init__(self, channels: int, config: ModelFreeConfig):
        super().__init__()
        self.trunk = ConvTrunk(channels, config.input_size, config.num_filters, config.num_layers, config.amp)
        self.head = FeatureHead(self.trunk.out_dim, config.feature_dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.head(self.trunk(obs))


class Actor(nn.Module):
    """Tanh-squashed Gaussian policy on conv features (its own head, CURL's detached tied convs)."""

    def __init__(self, conv_dim: int, action_dim: int, config: ModelFreeConfig):
        super().__init__()
        self.head = FeatureHead(conv_dim, config.feature_dim)
        self.trunk = mlp(config.feature_dim, config.hidden_dim, 2 * action_dim)
        self.log_std_min, self.log_std_max = config.actor_log_std_min, config.actor_log_std_max

    def forward(self, conv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tanh(mean), tanh-squashed sample, log-prob of the sample)."""
        mu, log_std = self.trunk(self.head(conv)).chunk(2, dim=-1)
        log_std = self.log_std_min + 0.5 * (self.log_std_max - self.log_std_min) * (torch.tanh(log_std) + 1)
        noise = torch.randn_like(mu)
        pi = mu + noise * log_std.exp()
        log_pi = (-0.5 * noise.pow(2) - log_std).sum(-1) - 0.5 * math.log(2 * math.pi) * mu.shape[-1]
        mu, pi = torch.tanh(mu), torch.tanh(pi)
        log_pi = log_pi - torch.log(F.relu(1 - pi.pow(2)) + 1e-6).sum(-1)  # tanh change of variables
        return mu, pi, log_pi


class DeterministicActor(nn.Module):
    """DrQ-v2's actor (Yarats et al. 2022): its own head on the detached conv features, an MLP, tanh(mu).
    The sample adds N(0, std^2) noise clipped to +-clip and clamps into (-1, 1) with a straight-through
    gradient (DrQ-v2's TruncatedNormal); `std` is set by the agent from its schedule."""

    def __init__(self, conv_dim: int, action_dim: int, config: ModelFreeConfig):
        super().__init__()
        self.head = FeatureHead(conv_dim, config.feature_dim)
        self.trunk = mlp(config.feature_dim, config.hidden_dim, action_dim)
        self.std, self.clip = config.stddev_schedule[0], config.stddev_clip

    def forward(self, conv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(tanh(mu), clipped-noise sample, zero log-prob: no entropy term)."""
        mu = torch.tanh(self.trunk(self.head(conv)))
        x = mu + (torch.randn_like(mu) * self.std).clamp(-self.clip, self.clip)
        pi = x + (x.clamp(-1 + 1e-6, 1 - 1e-6) - x).detach()
        return mu, pi, torch.zeros(mu.shape[0], device=mu.device)


ACTORS = {"gaussian": Actor, "deterministic": DeterministicActor}


def linear_schedule(schedule: tuple[float, float, int], step: int) -> float:
    """DrQ-v2's `linear(init, final, duration)`: init -> final linearly over `duration` steps, then final."""
    init, final, duration = schedule
    mix = min(max(step / duration, 0.0), 1.0)
    return (1.0 - mix) * init + mix * final


class Critic(nn.Module):
    """Encoder + twin Q functions (clipped double Q)."""

    def __init__(self, channels: int, action_dim: int, config: ModelFreeConfig):
        super().__init__()
        self.encoder = Encoder(channels, config)
        self.q1 = mlp(config.feature_dim + action_dim, config.hidden_dim, 1)
        self.q2 = mlp(config.feature_dim + action_dim, config.hidden_dim, 1)

    def q(self, feature: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([feature, action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


class LogScalar(nn.Module):
    """A positive scalar learned in log space (SAC temperature, CQL's Lagrange multiplier)."""

    def __init__(self, init: float):
        super().__init__()
        self.log_value = nn.Parameter(torch.tensor(math.log(init), dtype=torch.float32))

    @property
    def value(self) -> torch.Tensor:
        return self.log_value.exp()


def soft_update(net: nn.Module, target: nn.Module, tau: float) -> None:
    with torch.no_grad():
        for p, tp in zip(net.parameters(), target.parameters()):
            tp.lerp_(p, tau)


def adam(module: nn.Module, lr: float, beta: float) -> torch.optim.Adam:
    return torch.optim.Adam(module.parameters(), lr=lr, betas=(beta, 0.999))


# -- the agents --------------------------------------------------------------------------------
class PixelAgent:
    """What every model-free pixel agent shares: frames at `image_size`, augmentation, acting with a
    frame stack, checkpoints of `modules()` and `optimizers`. Subclasses set `actor` and `actor_input`."""

    actor: nn.Module

    def __init__(self, action_dim: int, config: ModelFreeConfig, device: str = "cpu"):
        if config.augmentation not in ("shift", "crop"):
            raise OwbenchError(f"augmentation={config.augmentation!r} is not known; use 'shift' or 'crop'")
        if config.actor not in ACTORS:
            raise unknown("actor", config.actor, ACTORS)
        self.config, self.device, self.action_dim = config, torch.device(device), action_dim
        self.channels = 3 * config.frame_stack
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.updates = 0

    def make_actor(self, conv_dim: int) -> nn.Module:
        return ACTORS[self.config.actor](conv_dim, self.action_dim, self.config).to(self.device)

    def actor_input(self, obs: torch.Tensor) -> torch.Tensor:
        """The conv features the actor reads."""
        raise NotImplementedError

    def anneal(self) -> None:
        """Exploration noise of a deterministic actor from its schedule at the current update."""
        if self.config.actor == "deterministic":
            self.actor.std = linear_schedule(self.config.stddev_schedule, self.updates)

    # modules saved in checkpoints; subclasses extend
    def modules(self) -> dict[str, nn.Module]:
        return {"actor": self.actor}

    # -- data ----------------------------------------------------------------------------------
    def frames(self, images: Any) -> torch.Tensor:
        """uint8 (B, H, W, 3*stack) -> float (B, 3*stack, H, W) on the device, at `image_size`."""
        x = torch.as_tensor(images, device=self.device)
        c = self.config
        if x.ndim != 4 or x.shape[-1] != 3 * c.frame_stack:
            raise OwbenchError(f"obs has shape {tuple(x.shape)}, expected (B, H, W, {3 * c.frame_stack}) "
                               f"(frame_stack={c.frame_stack}); build the sampler with frame_stack={c.frame_stack}")
        x = x.permute(0, 3, 1, 2).float()
        if x.shape[-2:] != (c.image_size, c.image_size):  # V-D4RL resizes 64-px frames to 84 the same way
            x = F.interpolate(x, size=(c.image_size, c.image_size), mode="bicubic", align_corners=False)
            x = x.clamp(0, 255)
        return x

    def augment(self, obs: torch.Tensor) -> torch.Tensor:
        if self.config.augmentation == "crop":
            return random_crop(obs, self.config.input_size)
        return random_shift(obs, self.config.pad)

    def tensor(self, value: Any) -> torch.Tensor:
        return torch.as_tensor(value, dtype=torch.float32, device=self.device)

    # -- acting --------------------------------------------------------------------------------
    def act(self, obs: Obs, state: FrameStack | None = None, eval_mode: bool = False) -> tuple[np.ndarray, FrameStack]:
        """Action for one env observation; `state` holds the last `frame_stack` frames."""
        frame = np.array(obs["image"], np.uint8)  # a copy: renderers may reuse their buffer
        stack = (frame,) * self.config.frame_stack if state is None else (*state[1:], frame)
        x = self.frames(np.concatenate(stack, axis=-1)[None])
        if self.config.augmentation == "crop":
            x = center_crop(x, self.config.input_size)
        self.anneal()
        with torch.no_grad():
            mu, pi, _ = self.actor(self.actor_input(x))
        action = (mu if eval_mode else pi)[0].cpu().numpy().astype(np.float32)
        return action, stack

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.updates = int(state["updates"])


class SACAgent(PixelAgent):
    """Pixel SAC (CURL's variant) trained offline on transition batches; with `actor="deterministic"`,
    DrQ-v2's actor-critic (clipped-noise target actions, no temperature)."""

    def __init__(self, action_dim: int, config: ModelFreeConfig, device: str = "cpu"):
        super().__init__(action_dim, config, device)
        self.critic = Critic(self.channels, action_dim, config).to(self.device)
        self.critic_target = Critic(self.channels, action_dim, config).to(self.device)
        self.critic_target.load_state_dict(self.critic.state_dict())
        self.critic_target.requires_grad_(False)
        self.actor = self.make_actor(self.critic.encoder.trunk.out_dim)
        self.alpha = LogScalar(config.init_temperature).to(self.device)
        self.target_entropy = -float(action_dim)
        self.optimizers = {
            "critic": adam(self.critic, config.critic_lr, config.adam_beta),
            "actor": adam(self.actor, config.actor_lr, config.adam_beta),
        }
        if config.actor == "gaussian":  # a deterministic actor has no entropy term to weigh
            self.optimizers["alpha"] = adam(self.alpha, config.alpha_lr, config.alpha_beta)
        self._actor_metrics: Metrics = {}

    def modules(self) -> dict[str, nn.Module]:
        return {"critic": self.critic, "critic_target": self.critic_target, "actor": self.actor, "alpha": self.alpha}

    def actor_input(self, obs: torch.Tensor) -> torch.Tensor:
        return self.critic.encoder.trunk(obs)

    # -- learning ------------------------------------------------------------------------------
    def update(self, batch: Batch) -> Metrics:
        """One SAC step (+ the subclass's representation / conservative terms) on a transition batch."""
        raw_obs, raw_next = self.frames(batch["obs"]), self.frames(batch["next_obs"])
        action, reward, discount = (self.tensor(batch[k]) for k in ("action", "reward", "discount"))
        obs, next_obs = self.augment(raw_obs), self.augment(raw_next)
        self.anneal()
        metrics = self.update_critic(obs, action, reward, discount, next_obs)
        if self.updates % self.config.actor_update_freq == 0:
            self._actor_metrics = self.update_actor_and_alpha(obs, action)
        metrics.update(self._actor_metrics)
        if self.updates % self.config.critic_target_update_freq == 0:
            self.update_targets()
        metrics.update(self.update_representation(raw_obs, obs))
        self.updates += 1
        return metrics

    def update_targets(self) -> None:
        c = self.config
        head_tau = c.encoder_tau if c.target_head_tau is None else c.target_head_tau
        soft_update(self.critic.q1, self.critic_target.q1, c.critic_tau)
        soft_update(self.critic.q2, self.critic_target.q2, c.critic_tau)
        soft_update(self.critic.encoder.trunk, self.critic_target.encoder.trunk, c.encoder_tau)
        soft_update(self.critic.encoder.head, self.critic_target.encoder.head, head_tau)

    def update_critic(self, obs: torch.Tensor, action: torch.Tensor, reward: torch.Tensor,
                      discount: torch.Tensor, next_obs: torch.Tensor) -> Metrics:
        with torch.no_grad():
            next_conv = self.critic.encoder.trunk(next_obs)
            _, next_action, next_log_pi = self.actor(next_conv)
            target_q1, target_q2 = self.critic_target.q(self.critic_target.encoder(next_obs), next_action)
            # soft Bellman target with n-step reward: r + gamma^n (min Q' - alpha log pi); a deterministic
            # actor's log pi is 0: DrQ-v2's clipped double-Q target at a noisy next action
            target_v = torch.min(target_q1, target_q2) - self.alpha.value * next_log_pi
            target_q = reward + discount * target_v
        conv = self.critic.encoder.trunk(obs)
        feature = self.critic.encoder.head(conv)
        q1, q2 = self.critic.q(feature, action)
        td_loss = F.mse_loss(q1, target_q) + F.mse_loss(q2, target_q)
        penalty, metrics = self.critic_penalty(feature, conv.detach(), next_conv, action, q1, q2)
        loss = td_loss + penalty
        self.optimizers["critic"].zero_grad(set_to_none=True)
        loss.backward()
        self.optimizers["critic"].step()
        metrics.update(critic_loss=td_loss.detach(), q=q1.mean().detach(), target_q=target_q.mean(),
                       batch_reward=reward.mean())
        return metrics

    def critic_penalty(self, feature: torch.Tensor, conv: torch.Tensor, next_conv: torch.Tensor,
                       action: torch.Tensor, q1: torch.Tensor, q2: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        """Extra critic loss term (none for plain SAC; CQL's conservative penalty)."""
        return torch.zeros((), device=self.device), {}

    def update_actor_and_alpha(self, obs: torch.Tensor, data_action: torch.Tensor) -> Metrics:
        with torch.no_grad():  # the actor sees the critic's conv features, detached (CURL, DrQ-v2)
            conv = self.critic.encoder.trunk(obs)
            feature = self.critic.encoder.head(conv)
        _, pi, log_pi = self.actor(conv)
        q1, q2 = self.critic.q(feature, pi)
        actor_loss, metrics = self.actor_loss(torch.min(q1, q2), pi, log_pi, data_action)
        self.optimizers["actor"].zero_grad(set_to_none=True)
        actor_loss.backward()
        self.optimizers["actor"].step()
        if "alpha" not in self.optimizers:
            return metrics
        alpha_loss = (self.alpha.value * (-log_pi - self.target_entropy).detach()).mean()
        self.optimizers["alpha"].zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.optimizers["alpha"].step()
        return {**metrics, "alpha": self.alpha.value.detach(), "entropy": -log_pi.mean().detach()}

    def actor_loss(self, q: torch.Tensor, pi: torch.Tensor, log_pi: torch.Tensor,
                   data_action: torch.Tensor) -> tuple[torch.Tensor, Metrics]:
        """SAC's policy loss E[alpha log pi(a|s) - min Q(s, a)], a ~ pi (-Q alone for a deterministic actor)."""
        loss = (self.alpha.value.detach() * log_pi - q).mean()
        return loss, {"actor_loss": loss.detach()}

    def update_representation(self, raw_obs: torch.Tensor, obs: torch.Tensor) -> Metrics:
        """Auxiliary representation update (none for plain SAC; CURL's contrastive loss)."""
        return {}


def seed_torch(seed: int) -> None:
    """Seed torch's global generator (network init, augmentation, policy noise) for one agent."""
    torch.manual_seed(seed)
