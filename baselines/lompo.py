"""LOMPO: Offline RL from images with latent space models (Rafailov, Yu, Rajeswaran, Finn, L4DC 2021).

On the shared world model (agents/world_model), as the V-D4RL reference code runs it:
1. world model: encoder + RSSM + decoder + reward head on sequence batches (the shared ELBO), whose
   prior is an ensemble of K heads p_k(z_t | h_t) on the shared GRU (`wm.prior_heads`): at every
   timestep one head drawn at random serves as the prior in KL[q(z_t | h_t, o_t) || p_k(z_t | h_t)]
   (the reference's `RSSME`: `obs_step` calls `img_step` with a random k), so each head is fitted
   jointly with the model on about 1/K of the data; `model_train_steps` such updates come first;
2. latent data: real transitions (s_t, a_t, r_{t+1}, s_{t+1}) from the posterior of the batch, and
   imagined ones: H-step rollouts from posterior states with the actor (+ Gaussian exploration
   noise), each step sampled from a random ensemble head, kept in a FIFO latent replay buffer (the
   reference's `LatentReplayBuffer`): filled from every posterior state of the first batches up to
   `imagined_warmup`, then topped up with `rollout_batch` rollouts per update, so the critic sees
   imagined actions of many past policies, not only the current actor's;
3. uncertainty penalty: r~ = r^ - lambda * std_k log p_k(z_{t+1}) (the disagreement of the heads on
   the sampled next latent, V-D4RL's `log_prob` penalty; LOMPO Eq. 5's u(s, a));
4. off-policy actor-critic on equal numbers of real and imagined latent transitions: twin Q
   regression to r + gamma (1 - done) min Q'(s', pi(s')), deterministic actor maximising min Q,
   Polyak targets. `actor_reg` adds an L2 term on the actor's pre-tanh output (as the original SAC
   code's `mean_reg`): without it an early, nearly flat critic (dQ/da ~ 0.02, one sign at every state)
   drives the tanh actor through Adam to one bound within ~50 updates (pre-tanh ~7, later ~27), where
   tanh' ~ 0 and the actor stops following the critic for good (measured on cartpole_swingup: a
   constant action, return ~0-75, while the critic already preferred the other bound).
After `model_train_steps`, updates train the actor-critic only (the model is kept fixed, as in the
reference code). Acting filters observations with the posterior and applies the actor's mean.

Presets: `paper` = V-D4RL's LOMPO (`baselines/lompo/run.py`): Gaussian latents stoch 64, deter 256,
hidden/units 256, cnn depth 32, model lr 6e-4, plain KL (balance 0.5 x scale 2, no free nats),
model batch 64 x 50, 25k model steps, 7 prior heads, lambda 5, horizon 5, agent batch 256 real + 256
imagined, Q / actor lr 3e-4 with 3 / 4 ELU layers of 256, tau 5e-3, gamma 0.99, exploration 0.2,
imagined buffer filled to 50k before training (`start_training`) and 16,000 new transitions (a 64 x 50
batch of starts x H 5) every 200 updates, i.e. 16 starts per update; the reference sizes the buffer
to the dataset (100k here). The buffer is not checkpointed (as in the reference): a restored agent
refills it from the next batches. The reference has no actor regulariser (`actor_reg` 0 in `paper`).
V-D4RL's code carries a CQL term on the latent critics at weight 0 (`alpha`); here it is
`conservative_weight` (`conservative_penalty`), 0 in `paper` as there. `quick` (`owbench check lompo`'s setting,
walker_downhill medium at 32 px) turns it on at 20: at a CPU budget the uncertainty penalty alone left the latent
critics nearly blind to the action and the policy below random on every task and lambda tried
(docs/learning_checks.md, LOMPO). With the conservative term on, `quick` lowers lambda from 5 to 1: at 5 the
penalty on top of it held the policy below random on seeds 5 and 7; `smoke`: tests.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.contract import Batch, Metrics, Obs
from agents.world_model import State, WorldModel, WorldModelConfig, autocast, to_torch, with_overrides
from agents.world_model.nets import MLP, Optimizer
from baselines.modelfree import soft_update
from collectors.envs.base import EnvSpec
from collectors.errors import OwbenchError, unknown

PAPER_WM = WorldModelConfig(depth=32, deter=256, hidden=256, stoch=64, classes=0, units=256, layers=2,
                            discount_head=False, prior_heads=7, kl_balance=0.5, kl_scale=2.0, free_nats=0.0,
                            lr=6e-4, weight_decay=0.0)  # prior_heads: V-D4RL num_models 7


@dataclass(frozen=True)
class LOMPOConfig:
    """World model, ensemble and latent actor-critic settings (V-D4RL's LOMPO defaults)."""

    wm: WorldModelConfig = PAPER_WM
    batch_size: int = 64  # model batch: sequences (V-D4RL model_batch_size 64)
    seq_len: int = 50  # model batch: timesteps per sequence (V-D4RL 50)
    model_train_steps: int = 25_000  # world-model updates before the actor-critic starts (V-D4RL 25k)
    penalty: float = 5.0  # lambda of the uncertainty penalty (V-D4RL lmbd 5)
    horizon: int = 5  # imagined rollout length H (V-D4RL 5)
    agent_batch_size: int = 256  # real transitions per update, and as many imagined (V-D4RL 256 + 256)
    units: int = 256  # actor / critic width
    critic_layers: int = 3  # hidden layers of each Q network (V-D4RL 3)
    actor_layers: int = 4  # hidden layers of the actor (V-D4RL 4)
    critic_lr: float = 3e-4  # V-D4RL q_lr
    actor_lr: float = 3e-4
    actor_reg: float = 0.0  # weight of the L2 term on the actor's pre-tanh output; 0 in the reference
    grad_clip: float = 100.0
    tau: float = 5e-3  # Polyak rate of the target critics, every update
    gamma: float = 0.99
    exploration: float = 0.2  # std of the Gaussian noise on imagined actions (V-D4RL expl_amount)
    conservative_weight: float = 0.0  # weight of the released code's CQL term on the latent critics (V-D4RL alpha 0)
    conservative_samples: int = 16  # uniform random actions per state in that term (V-D4RL cql_samples)
    done_threshold: float = 0.5  # imagined continuation below this ends the rollout (with a discount head)
    rollout_batch: int = 16  # posterior states imagined from per agent update (V-D4RL: 64 x 50 every 200 updates)
    imagined_capacity: int = 100_000  # FIFO latent replay buffer of imagined transitions (V-D4RL: dataset size)
    imagined_warmup: int = 50_000  # imagine from every posterior state of a batch until this many (V-D4RL start_training)
    amp: bool = True  # the world model in bfloat16 autocast on GPUs with native bfloat16 (float32 elsewhere)

    @property
    def image_size(self) -> int:
        return self.wm.image_size

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "LOMPOConfig":
        """`smoke` (tests), `quick` (a CPU machine), `paper` (V-D4RL). Overrides name any field,
        world-model ones by their own name (`deter=64`) or dotted (`wm.deter=64`)."""
        presets = {
            "smoke": cls(replace(PAPER_WM, depth=8, deter=32, hidden=32, stoch=8, units=32, layers=1, prior_heads=3),
                         batch_size=4, seq_len=8, model_train_steps=2, horizon=3, agent_batch_size=16,
                         units=32, critic_layers=1, actor_layers=1, actor_reg=1e-3, rollout_batch=4,
                         imagined_capacity=256, imagined_warmup=64),
            # `owbench check lompo`'s setting: few updates, so larger steps, and the released code's conservative
            # term on (module docstring)
            "quick": cls(replace(PAPER_WM, deter=200, hidden=200, stoch=32), batch_size=16, seq_len=32,
                         model_train_steps=600, agent_batch_size=64, critic_lr=1e-3, actor_lr=1e-3, tau=0.02,
                         actor_reg=1e-3, conservative_weight=20.0, penalty=1.0, imagined_capacity=20_000,
                         imagined_warmup=5_000),
            "paper": cls(),
        }
        if name not in presets:
            raise unknown("preset", name, presets)
        return with_overrides(presets[name], overrides)


Config = LOMPOConfig


def latent_log_prob(wm: WorldModel, stats: Tensor, stoch: Tensor) -> Tensor:
    """log p(z) of latent samples `stoch` (N, Z) under distributions `stats` (..., N, S)."""
    rssm = wm.rssm
    if rssm.discrete:
        logits = stats.unflatten(-1, (rssm.cfg.stoch, rssm.cfg.classes)).float().log_softmax(-1)
        return (logits * stoch.unflatten(-1, (rssm.cfg.stoch, rssm.cfg.classes))).sum((-2, -1))
    mean, std = rssm.gaussian(stats.float())
    return torch.distributions.Normal(mean, std, validate_args=False).log_prob(stoch).sum(-1)  # no host sync


def conservative_penalty(q: Tensor, q_sampled: Tensor, real: int) -> Tensor:
    """The released code's CQL term per critic, summed over the twin critics: the mean over all states (real and
    imagined) of log-sum-exp over sampled actions of Q(s, a), less the mean Q(s, a) of the first `real` (dataset)
    transitions. `q`: (2, N); `q_sampled`: (2, M, N) at M sampled actions per state (V-D4RL: 16 uniform + the actor's)."""
    return (torch.logsumexp(q_sampled, 1).mean(1) - q[:, :real].mean(1)).sum()


def uncertainty_penalty(wm: WorldModel, stats: Tensor, stoch: Tensor) -> Tensor:
    """u(s, a) of LOMPO Eq. 5 as V-D4RL's `log_prob` penalty: the population std over the K prior heads
    (`stats`: (K, N, S)) of log p_k(z_{t+1}) at the sampled next latent `stoch` (N, Z)."""
    return latent_log_prob(wm, stats, stoch).std(0, unbiased=False)


class LatentBuffer:
    """FIFO replay of imagined latent transitions (s, a, r~, discount, s', valid), kept on the agent's device.
    Rollouts are stored whole, with `valid` 0 for the steps after a predicted termination (a mask the
    device never has to count); `sample` draws among the valid ones."""

    def __init__(self, capacity: int, feat_dim: int, action_dim: int, device: torch.device):
        shapes = ((feat_dim,), (action_dim,), (), (), (feat_dim,), ())
        self.columns = tuple(torch.zeros(capacity, *shape, device=device) for shape in shapes)
        self.capacity, self.size, self.position = capacity, 0, 0

    def __len__(self) -> int:
        return self.size

    def add(self, transitions: tuple[Tensor, ...]) -> None:
        transitions = tuple(t[-self.capacity:] for t in transitions)
        rows = (self.position + torch.arange(len(transitions[0]), device=self.columns[0].device)) % self.capacity
        for column, values in zip(self.columns, transitions):
            column[rows] = values
        self.position = (self.position + len(rows)) % self.capacity
        self.size = min(self.size + len(rows), self.capacity)

    def sample(self, n: int) -> tuple[Tensor, ...]:
        """`n` stored transitions, uniformly among the valid ones (on the device: no host read)."""
        pick = torch.multinomial(self.columns[5][:self.size], n, replacement=True)
        return tuple(column[pick] for column in self.columns[:5])


class LOMPOAgent:
    def __init__(self, action_dim: int, config: LOMPOConfig, device: str = "cpu"):
        self.config, self.device, self.action_dim = config, torch.device(device), action_dim
        c = config
        if c.wm.prior_heads < 2:
            raise OwbenchError(f"LOMPO's uncertainty penalty needs an ensemble; set wm.prior_heads >= 2 "
                               f"(it is {c.wm.prior_heads})")
        self.wm = WorldModel(c.wm, action_dim, channels_last=False).to(self.device)
        feat = self.wm.feat_dim
        self.actor = MLP(feat, action_dim, c.units, c.actor_layers).to(self.device)
        self.critics = nn.ModuleList(MLP(feat + action_dim, 1, c.units, c.critic_layers) for _ in range(2)).to(self.device)
        self.target_critics = nn.ModuleList(MLP(feat + action_dim, 1, c.units, c.critic_layers)
                                            for _ in range(2)).to(self.device)
        self.target_critics.load_state_dict(self.critics.state_dict())
        self.target_critics.requires_grad_(False)
        self.critic_opt = Optimizer([self.critics], c.critic_lr, 1e-7, 0.0, c.grad_clip)
        self.actor_opt = Optimizer([self.actor], c.actor_lr, 1e-7, 0.0, c.grad_clip)
        self.imagined = LatentBuffer(c.imagined_capacity, feat, action_dim, self.device)
        self.updates = 0

    # -- the policy and critics on model features ------------------------------------------------
    def actor_mean(self, feat: Tensor) -> Tensor:
        """The actor's pre-tanh output (..., A)."""
        return self.actor(feat).reshape(*feat.shape[:-1], self.action_dim)  # MLP squeezes out_dim 1

    def policy(self, feat: Tensor, noise: float = 0.0) -> Tensor:
        action = torch.tanh(self.actor_mean(feat))
        if noise:
            action = (action + noise * torch.randn_like(action)).clamp(-1, 1)
        return action

    def q_values(self, critics: nn.ModuleList, feat: Tensor, action: Tensor) -> Tensor:
        x = torch.cat([feat, action], -1)
        return torch.stack([q(x) for q in critics])  # (2, N)

    def sampled_action_values(self, feat: Tensor) -> Tensor:
        """Q of both critics (2, M + 1, N) at `conservative_samples` uniform random actions and the actor's
        (without its gradient) at every state of `feat` (N, F), as the released code's CQL term samples them."""
        n = self.config.conservative_samples
        with torch.no_grad():
            actions = torch.cat([torch.rand(n, len(feat), self.action_dim, device=self.device) * 2 - 1,
                                 self.policy(feat)[None]])
        return self.q_values(self.critics, feat.expand(n + 1, *feat.shape), actions)

    # -- learning ----------------------------------------------------------------------------------
    def update(self, batch: Batch) -> Metrics:
        data = to_torch(batch, self.device)
        if self.updates < self.config.model_train_steps:
            metrics = self.update_model(data)
        else:
            metrics = self.update_agent(data)
        self.updates += 1
        return metrics

    def update_model(self, data: dict[str, Tensor]) -> dict[str, Tensor]:
        """Step 1: the shared world-model loss, its prior one random ensemble head per timestep."""
        with autocast(self.device, self.config.amp):
            model_loss, metrics, _ = self.wm.loss(data)
        metrics["model_grad_norm"] = self.wm.opt.step(model_loss)
        return metrics

    @torch.no_grad()
    def real_transitions(self, data: dict[str, Tensor], post: State) -> tuple[Tensor, ...]:
        """(s_t, a_t, r_{t+1}, discount_{t+1}, s_{t+1}) inside episodes, `agent_batch_size` at random."""
        feat = self.wm.rssm.feat(post)
        valid = ~data["is_first"][:, 1:].bool()  # a window may cross into the next episode
        parts = (feat[:, :-1], data["action"][:, 1:], data["reward"][:, 1:],
                 self.config.gamma * data["discount"][:, 1:], feat[:, 1:])
        # uniform among the valid transitions, drawn on the device (a boolean mask would wait for it)
        pick = torch.multinomial(valid.flatten().float(), self.config.agent_batch_size, replacement=True)
        return tuple(p.flatten(0, 1)[pick] for p in parts)

    @torch.no_grad()
    def imagined_transitions(self, post: State, starts: int | None) -> tuple[tuple[Tensor, ...], dict[str, Tensor]]:
        """Steps 2-3: H-step rollouts from `starts` random posterior states (all of them when None)
        through random ensemble heads, with rewards penalised by the heads' disagreement on the
        sampled next latent."""
        c, rssm = self.config, self.wm.rssm
        state = {k: v.reshape(-1, v.shape[-1]) for k, v in post.items()}
        if starts is not None:
            pick = torch.randint(0, len(state["deter"]), (starts,), device=self.device)
            state = {k: v[pick] for k, v in state.items()}
        alive = torch.ones(len(state["deter"]), device=self.device)  # 0 after a predicted termination
        steps = []
        for _ in range(c.horizon):
            feat = rssm.feat(state)
            action = self.policy(feat, c.exploration)
            deter = rssm.recurrent(state["stoch"], state["deter"], self.wm.pad_action(action))
            stats = rssm.priors(deter)  # (K, N, S)
            k = torch.randint(0, len(stats), (1,), device=self.device)  # a random head per step, no host read
            head = stats.index_select(0, k)[0]
            state = {"deter": deter, "stoch": rssm.sample(head), "stats": head}
            next_feat = rssm.feat(state)
            disagreement = uncertainty_penalty(self.wm, stats, state["stoch"])
            reward = self.wm.reward(next_feat) - c.penalty * disagreement  # LOMPO Eq. 5
            cont = (self.wm.continuation(next_feat) >= c.done_threshold).float()
            steps.append((feat, action, reward, c.gamma * cont, next_feat, alive, disagreement))
            alive = alive * cont
        *transitions, penalty = (torch.cat(parts) for parts in zip(*steps))
        valid = transitions[5]
        mean = lambda x: (x * valid).sum() / valid.sum()  # noqa: E731 - over the valid steps only
        return tuple(transitions), {"imag_penalty": mean(penalty), "imag_reward": mean(transitions[2])}

    def update_agent(self, data: dict[str, Tensor]) -> dict[str, Tensor]:
        """Step 4: twin-Q and actor updates on real transitions and imagined ones from the buffer."""
        c = self.config
        with torch.no_grad(), autocast(self.device, c.amp):
            post, _, _ = self.wm.observe(data)
        post = {k: v.float() for k, v in post.items()}  # latent imagination and the critics run in float32
        real = self.real_transitions(data, post)
        fresh, metrics = self.imagined_transitions(post, None if len(self.imagined) < c.imagined_warmup
                                                   else c.rollout_batch)
        self.imagined.add(fresh)
        imagined = self.imagined.sample(c.agent_batch_size)
        feat, action, reward, discount, next_feat = (torch.cat(pair) for pair in zip(real, imagined))
        with torch.no_grad():
            target_q = self.q_values(self.target_critics, next_feat, self.policy(next_feat)).min(0).values
            target = reward + discount * target_q
        q = self.q_values(self.critics, feat, action)
        critic_loss = (q - target).pow(2).mean(1).sum()
        if c.conservative_weight:
            gap = conservative_penalty(q, self.sampled_action_values(feat), len(real[0]))
            critic_loss = critic_loss + c.conservative_weight * gap
            metrics["conservative_gap"] = gap.detach()
        self.critic_opt.step(critic_loss)
        mean = self.actor_mean(feat)
        actor_q = self.q_values(self.critics, feat, torch.tanh(mean)).min(0).values
        actor_loss = -actor_q.mean() + c.actor_reg * mean.pow(2).mean()
        self.actor_opt.step(actor_loss)  # the critics' stray gradients are cleared by their next step
        soft_update(self.critics, self.target_critics, c.tau)
        metrics.update(critic_loss=critic_loss.detach(), actor_loss=actor_loss.detach(), q=q.mean().detach(),
                       real_reward=real[2].mean(), imagined_stored=torch.tensor(float(len(self.imagined))))
        return metrics

    # -- acting ------------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        """Filter the observation with the posterior (state = latent, previous action); the actor's
        mean in eval mode, plus exploration noise otherwise."""
        image = torch.as_tensor(np.asarray(obs["image"]), device=self.device)[None]
        if state is None:
            state = (self.wm.rssm.initial(1, self.device), torch.zeros(1, self.action_dim, device=self.device))
        latent, prev_action = state
        embed = self.wm.encode(image)
        latent = self.wm.rssm.obs_step(latent, self.wm.pad_action(prev_action), embed, sample=not eval_mode)
        action = self.policy(self.wm.rssm.feat(latent), 0.0 if eval_mode else self.config.exploration)
        return action[0].cpu().numpy().astype(np.float32), (latent, action)

    # -- checkpoints -------------------------------------------------------------------------------
    def modules(self) -> dict[str, nn.Module]:
        return {"wm": self.wm, "actor": self.actor, "critics": self.critics,
                "target_critics": self.target_critics}

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"wm": self.wm.opt.opt, "critic": self.critic_opt.opt,
                "actor": self.actor_opt.opt}

    def state_dict(self) -> dict[str, Any]:
        return {"modules": {k: m.state_dict() for k, m in self.modules().items()},
                "optimizers": {k: o.state_dict() for k, o in self.optimizers().items()}, "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, m in self.modules().items():
            m.load_state_dict(state["modules"][k])
        for k, o in self.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        self.updates = int(state["updates"])


def make_agent(spec: EnvSpec, config: LOMPOConfig, device: str = "cpu", seed: int = 0) -> LOMPOAgent:
    torch.manual_seed(seed)
    return LOMPOAgent(spec.action_dim, config, device)
