"""The recurrent state-space model (DreamerV2 §2.1), shared by every world-model method.

A state is a dict of tensors with a common leading shape: `deter` h_t (GRU state), `stoch` z_t
(flattened one-hot samples of `stoch` categoricals with `classes` classes, or a Gaussian sample)
and `stats` (the raw parameters of z_t's distribution: logits, or mean and pre-softplus std).

    prior      p(z_t | h_t),            h_t = f(h_{t-1}, z_{t-1}, a_{t-1})   -> img_step
    posterior  q(z_t | h_t, e_t),       e_t = encoder(o_t)                   -> obs_step / posterior

Speed: inside `observe` only the recurrent part runs per timestep; the embedding projection of
the posterior and the prior head run once over the whole sequence.
"""
from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from agents.world_model.config import WorldModelConfig

State = dict[str, Tensor]


class RSSM(nn.Module):
    def __init__(self, cfg: WorldModelConfig, action_dim: int, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        self.discrete = cfg.classes > 0
        self.action_dim = action_dim
        self.stoch_dim = cfg.stoch * cfg.classes if self.discrete else cfg.stoch
        stats_dim = self.stoch_dim if self.discrete else 2 * cfg.stoch
        self.feat_dim = self.stoch_dim + cfg.deter
        self.img_in = nn.Sequential(nn.Linear(self.stoch_dim + action_dim, cfg.hidden), nn.ELU())
        self.gru = nn.Linear(cfg.hidden + cfg.deter, 3 * cfg.deter)  # layer-norm GRU of DreamerV2
        self.gru_norm = nn.LayerNorm(3 * cfg.deter)
        prior_head = lambda: nn.Sequential(nn.Linear(cfg.deter, cfg.hidden), nn.ELU(),  # noqa: E731
                                           nn.Linear(cfg.hidden, stats_dim))
        self.img_out = prior_head()
        # LOMPO: K - 1 more prior heads; img_out is head 0 (no extra keys when K = 1)
        self.img_ensemble = nn.ModuleList(prior_head() for _ in range(cfg.prior_heads - 1))
        # obs_out(concat(h, e)) split as obs_deter(h) + obs_embed(e) so e is projected once per sequence
        self.obs_deter = nn.Linear(cfg.deter, cfg.hidden, bias=False)
        self.obs_embed = nn.Linear(embed_dim, cfg.hidden)
        self.obs_out = nn.Sequential(nn.ELU(), nn.Linear(cfg.hidden, stats_dim))

    # -- distributions ------------------------------------------------------------------
    def initial(self, batch: int, device: torch.device | str) -> State:
        zeros = lambda n: torch.zeros(batch, n, device=device)  # noqa: E731
        stats = self.stoch_dim if self.discrete else 2 * self.cfg.stoch
        return {"deter": zeros(self.cfg.deter), "stoch": zeros(self.stoch_dim), "stats": zeros(stats)}

    def sample(self, stats: Tensor, sample: bool = True) -> Tensor:
        """z from its raw parameters: a straight-through one-hot sample (or the mode), or a
        reparameterised Gaussian sample (or the mean)."""
        if self.discrete:
            logits = stats.unflatten(-1, (self.cfg.stoch, self.cfg.classes)).float()
            probs = logits.softmax(-1)
            if sample:  # inverse-CDF sampling: one uniform per latent (cheaper than Gumbel noise per class)
                u = torch.rand(*probs.shape[:-1], 1, device=probs.device)
                index = (probs.cumsum(-1) < u).sum(-1).clamp(max=self.cfg.classes - 1)
            else:
                index = logits.argmax(-1)
            onehot = F.one_hot(index, self.cfg.classes).to(logits.dtype)
            return (onehot + probs - probs.detach()).flatten(-2).to(stats.dtype)
        mean, std = self.gaussian(stats)
        return mean + std * torch.randn_like(std) if sample else mean

    def gaussian(self, stats: Tensor) -> tuple[Tensor, Tensor]:
        mean, std = stats.chunk(2, -1)
        return mean, F.softplus(std) + self.cfg.min_std

    def kl(self, lhs: Tensor, rhs: Tensor) -> Tensor:
        """KL[dist(lhs) || dist(rhs)] summed over latent dimensions (no reduction over batch)."""
        lhs, rhs = lhs.float(), rhs.float()
        if self.discrete:
            lp = lhs.unflatten(-1, (self.cfg.stoch, self.cfg.classes)).log_softmax(-1)
            lq = rhs.unflatten(-1, (self.cfg.stoch, self.cfg.classes)).log_softmax(-1)
            return (lp.exp() * (lp - lq)).sum((-2, -1))
        (m1, s1), (m2, s2) = self.gaussian(lhs), self.gaussian(rhs)
        return (torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5).sum(-1)

    def kl_loss(self, post: Tensor, prior: Tensor) -> tuple[Tensor, Tensor]:
        """KL balancing with free nats (DreamerV2 Eq. 2 and Algorithm 2): the prior is trained
        with weight `kl_balance`, the posterior with 1 - kl_balance. Returns (loss, mean KL)."""
        cfg = self.cfg
        value = self.kl(post, prior)
        train_prior = self.kl(post.detach(), prior).mean().clamp(min=cfg.free_nats)
        train_post = self.kl(post, prior.detach()).mean().clamp(min=cfg.free_nats)
        return cfg.kl_balance * train_prior + (1 - cfg.kl_balance) * train_post, value.mean()

    def feat(self, state: State) -> Tensor:
        """The model state s_t = concat(z_t, h_t) fed to every head."""
        return torch.cat([state["stoch"], state["deter"]], -1)

    # -- transitions --------------------------------------------------------------------
    def recurrent(self, stoch: Tensor, deter: Tensor, action: Tensor) -> Tensor:
        """h_t = GRU(h_{t-1}, MLP(z_{t-1}, a_{t-1})), the layer-norm GRU of DreamerV2."""
        x = self.img_in(torch.cat([stoch, action], -1))
        reset, cand, update = self.gru_norm(self.gru(torch.cat([x, deter], -1))).chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1)
        return update * cand + (1 - update) * deter

    def prior_cell(self, stoch: Tensor, deter: Tensor, action: Tensor, sample: bool) -> tuple[Tensor, Tensor, Tensor]:
        deter = self.recurrent(stoch, deter, action)
        stats = self.prior(deter)
        return deter, self.sample(stats, sample), stats

    def posterior_cell(self, stoch: Tensor, deter: Tensor, action: Tensor, embed_proj: Tensor,
                       sample: bool) -> tuple[Tensor, Tensor, Tensor]:
        deter = self.recurrent(stoch, deter, action)
        stats = self.obs_out(self.obs_deter(deter) + embed_proj)
        return deter, self.sample(stats, sample), stats

    def img_step(self, state: State, action: Tensor, sample: bool = True) -> State:
        """One prior transition from any state (imagination; Vid2Act's teacher rollouts)."""
        deter, stoch, stats = self.prior_cell(state["stoch"], state["deter"], action, sample)
        return {"deter": deter, "stoch": stoch, "stats": stats}

    def posterior(self, deter: Tensor, embed: Tensor) -> Tensor:
        """Raw parameters of q(z_t | h_t, e_t) for given embeddings (CoWorld's domain KL)."""
        return self.obs_out(self.obs_deter(deter) + self.obs_embed(embed))

    def prior(self, deter: Tensor) -> Tensor:
        """Raw parameters of p(z_t | h_t); with K > 1 prior heads, those of one head drawn at random
        for the whole call (LOMPO's `img_step`)."""
        if not self.img_ensemble:
            return self.img_out(deter)
        return self.priors(deter)[int(torch.randint(len(self.img_ensemble) + 1, ()))]

    def priors(self, deter: Tensor) -> Tensor:
        """Raw parameters of every prior head p_k(z_t | h_t): (K, ..., S)."""
        return torch.stack([self.img_out(deter), *(head(deter) for head in self.img_ensemble)])

    def sequence_prior(self, deter: Tensor) -> Tensor:
        """Raw parameters of p(z_t | h_t) for filtered states (B, T, D); with K > 1 prior heads one
        head drawn at random per timestep for the whole batch, as LOMPO's `observe` (each head
        fits about 1/K of the timesteps)."""
        if not self.img_ensemble:
            return self.img_out(deter)
        steps = deter.shape[1]
        pick = torch.randint(len(self.img_ensemble) + 1, (steps,), device=deter.device)
        return self.priors(deter)[pick, :, torch.arange(steps, device=deter.device)].transpose(0, 1)

    def obs_step(self, state: State, action: Tensor, embed: Tensor, sample: bool = True) -> State:
        """One posterior (filtering) step, used when acting."""
        deter, stoch, stats = self.posterior_cell(state["stoch"], state["deter"], action, self.obs_embed(embed), sample)
        return {"deter": deter, "stoch": stoch, "stats": stats}

    def observe(self, embed: Tensor, action: Tensor, is_first: Tensor, state: State | None = None,
                sample: bool = True) -> tuple[State, Tensor]:
        """Filter a batch of sequences (B, T, ...). Row t holds a_{t-1}; where `is_first` the
        state and action are reset to zeros. Returns posterior states (B, T, ...) and the prior
        parameters (B, T, stats) for the KL."""
        B, T = embed.shape[:2]
        assert action.shape[:2] == (B, T) and is_first.shape == (B, T), \
            f"observe: embed {tuple(embed.shape)}, action {tuple(action.shape)}, is_first {tuple(is_first.shape)}"
        state = self.initial(B, embed.device) if state is None else state
        stoch, deter = state["stoch"], state["deter"]
        keep = (~is_first.bool()).to(embed.dtype).unsqueeze(-1)  # (B, T, 1)
        embed_proj = self.obs_embed(embed)
        action = action * keep
        deters, stochs, stats = [], [], []
        for t in range(T):
            deter, stoch, stat = self.posterior_cell(stoch * keep[:, t], deter * keep[:, t], action[:, t],
                                                     embed_proj[:, t], sample)
            deters.append(deter)
            stochs.append(stoch)
            stats.append(stat)
        post = {"deter": torch.stack(deters, 1), "stoch": torch.stack(stochs, 1), "stats": torch.stack(stats, 1)}
        return post, self.sequence_prior(post["deter"])
