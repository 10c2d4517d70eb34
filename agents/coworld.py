"""CoWorld: collaborative world models for offline visual RL (Wang et al., arXiv v1 Algorithm 1;
NeurIPS 2024 "Making Offline RL Online"). A target agent learns from an offline dataset while a
source agent, trained online in a related simulator, regularises it:

    3   pretrain the source agent (DreamerV2) online in the source environment
    4   repeat until the target update budget is spent:
    6-13  K₁ target updates on offline batches:
            world model + β₂·domain KL to the (selected) source encoder            (Eq. 3)
            actor-critic in imagination; critic + α·max(ζ·v_T(ẑ), sg(v_S(ẑ)))      (Eq. 6)
    16-23 K₂ source updates, each after `train_every` source environment steps:
            world model; reward head also fitted on target batches relabelled
            k·r̂_S(h, z) + (1 − k)·r_T                                              (Eq. 4-5)
            actor-critic in imagination

Multi-source CoWorld (NeurIPS App. C, Eq. 12): one source agent per candidate task; on every target
batch the source whose encoder distribution is closest to the target's (smallest domain KL) is
selected by a one-hot weight and used for both the domain KL and the value constraint. The source
selected most often in a target phase is the one trained online in the following source phase.

Everything of both agents (world model, RSSM, actor-critic) is the shared `agents.world_model`,
composed through `agents.world_model.agent.DreamerV2Agent`; the losses live in `coworld_losses.py`.
The `paper` preset follows the papers' text; the `code` preset the released code (qiwang067/CoWorld),
whose schedule adds a target world-model-only warm-up between lines 3 and 4 and weights Eq. 5's two
reward terms by η and 1 − η. docs/fidelity/coworld.md lists every value of both and each difference.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.contract import Batch, Metrics, Obs
from agents.coworld_losses import (domain_kl, max_min_value_loss, reduce_domain_kl, relabel_source_reward,
                                   reward_loss_weights, reward_nll, select_source)
from agents.online import Replay
from agents.world_model import ActorCritic, BehaviorConfig, DreamerConfig, WorldModel, to_torch, with_overrides
from agents.world_model.rssm import State
from agents.world_model.agent import DreamerV2Agent
from agents.protocol import EvalResult, evaluate
from agents.training import (EVAL_COLUMNS, Checkpointer, CsvLog, MetricsLogger, TrainContext, TrainProgress,
                                _summary, log_eval)
from collectors import envs
from collectors.seeds import episode_seed
from collectors.envs import Env, EnvSpec
from collectors.errors import OwbenchError, unknown
from collectors.sampler import SequenceSampler

SOURCE_MODES = ("best-source", "multi-source")
DOMAIN_KL_REDUCTIONS = ("mean", "batchmean")


@dataclass(frozen=True)
class CoWorldConfig(DreamerConfig):
    """Both agents share the world-model / actor-critic config (inherited); CoWorld's values follow."""

    beta2: float = 1.5  # β₂: scale of the domain KL (Eq. 3)
    domain_kl_reduction: str = "mean"  # "mean" over B×T observations; "batchmean": sum over T, mean over B (code)
    reward_k: float = 0.1  # weight of the source prediction in the relabelled target reward (arXiv Eq. 4's k;
    #                        NeurIPS Table 8's target-inclined factor is 1 - reward_k)
    reward_anneal: int = 0  # η = max(1 - step / reward_anneal, reward_anneal_min) weighs the source-data reward
    #                         loss, 1 - η the relabelled target one (released code); 0: Eq. 5's sum, both weight 1
    reward_anneal_min: float = 0.2  # floor of η (released code: 0.2)
    reward_anneal_frozen: bool = False  # η at the prefill step throughout (the released code's world model keeps
    #                                     the step count it was built with, after the prefill)
    alpha: float = 1.0  # α: scale of the max-min value term (Eq. 6)
    zeta: float = 1.0  # ζ: unifies the value scales of the two domains (Eq. 6; the released code uses 1)
    target_steps: int = 20_000  # K₁: target updates per round (Algorithm 1, line 6)
    source_steps: int = 20_000  # K₂: source updates per round (Algorithm 1, line 16)
    pretrain_steps: int = 20_000  # source updates of the online pretraining (line 3; not stated in the papers)
    warmup_rounds: int = 0  # released code's "Step 2": rounds of target world-model-only updates, then source ones
    warmup_steps: int = 0  # target world-model-only updates per warm-up round (Eq. 3, no behaviour learning)
    warmup_source_steps: int = 0  # source updates per warm-up round (with reward relabelling)
    prefill: int = 2_500  # random-action source steps before pretraining (released code: 2500 DMC, 5000 MW)
    train_every: int = 5  # source environment steps per source update (released code: 5)
    source_mode: str = "best-source"  # "best-source": the pair's source; "multi-source": it and `sources`
    sources: tuple[str, ...] = ()  # further candidate sources of multi-source CoWorld (Meta-World: the code's five)
    domain_alignment: bool = True  # ablation switch: False drops Eq. 3's domain KL
    reward_modulation: bool = True  # ablation switch: False trains the source reward on source data only
    value_constraint: bool = True  # ablation switch: False drops Eq. 6's max-min term

    @classmethod
    def preset(cls, name: str, domain: str = "dmc", **overrides: Any) -> "CoWorldConfig":
        """`smoke` (tests), `quick` (CPU, hours), `paper` (NeurIPS Table 8 for `domain` "dmc" or
        "metaworld"), `arxiv-v1` (arXiv v1 Table 3), `code` (the released code's co_configs.yaml and
        co_training.py schedule). No preset has a discount head (the released code: pred_discount False).
        Overrides name any field (`beta2=0`, `deter=64`, `behavior.gamma=0.99`)."""
        if domain not in _TABLE8:
            raise unknown("CoWorld domain", domain, _TABLE8)
        if name not in _PRESETS:
            raise unknown("preset", name, _PRESETS)
        base, values = _PRESETS[name](domain)
        values.setdefault("sources", _MULTI_SOURCES[domain])
        config = cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(DreamerConfig)}, **values)
        # the released code sets pred_discount False for every domain; DMC / Meta-World episodes end only at
        # the time limit, so a discount head has nothing to learn
        config = with_overrides(config, {"wm.discount_head": False, **overrides})
        if config.source_mode not in SOURCE_MODES:
            raise unknown("source_mode", config.source_mode, SOURCE_MODES)
        if config.domain_kl_reduction not in DOMAIN_KL_REDUCTIONS:
            raise unknown("domain_kl_reduction", config.domain_kl_reduction, DOMAIN_KL_REDUCTIONS)
        return config


Config = CoWorldConfig

# NeurIPS Table 8 per domain; the K₁/K₂ of the tables are read by their row names ("source domain update
# steps" 2e4, "target domain update steps" 5e4); arXiv v1 Table 3 swaps the symbols K₁/K₂. Table 8's k is
# the "target-inclined reward factor", the weight of r_T (the released code relabels (1 - k)·r̂_S + k·r_T),
# so the weight of the source prediction, `reward_k`, is 1 - k: 0.1 (DMC, k = 0.9), 0.7 (Meta-World, k = 0.3).
_TABLE8 = {
    "dmc": dict(beta2=1.5, reward_k=0.1, alpha=1.0, target_steps=20_000, source_steps=20_000, prefill=2_500),
    "metaworld": dict(beta2=1.0, reward_k=0.7, alpha=2.0, target_steps=50_000, source_steps=20_000, prefill=5_000),
}

# Candidate sources of multi-source CoWorld: co_configs.yaml's Meta-World `source_task` list; DMC has none
# by default (a source must share the target's embodiment: pass e.g. sources=("walker_run", "walker_stand")).
_MULTI_SOURCES = {"dmc": (), "metaworld": ("mw_window-close", "mw_button-press-topdown", "mw_button-press",
                                           "mw_door-close", "mw_drawer-close")}


def _paper_model(**overrides: Any) -> DreamerConfig:
    """Shared world-model / behaviour values of both papers (arXiv v1 Table 3, NeurIPS Table 8)."""
    return DreamerConfig.preset("paper", batch_size=50, seq_len=50, deter=600, hidden=600, stoch=32, classes=32,
                                kl_scale=1.0, **{"wm.lr": 2e-4}, horizon=15, gamma=0.995, lambda_=0.95,
                                actor_lr=4e-5, critic_lr=1e-4, **overrides)


def _code_schedule(domain: str) -> dict[str, Any]:
    """The update schedule of the released code (co_training.py, co_configs.yaml, commit 8bc8aaa). Its loops
    run `eval_every` = 1e4 environment steps ÷ action repeat agent steps, at one update per `train_every` = 5:
    Step 1, 3 source loops after `pretrain` = 100 updates at once; Step 2, 2 warm-up rounds of `eval_every`
    target world-model-only updates and one source loop; Step 3, rounds of `tg_train_steps` target loops and
    `sc_train_steps` source loops. The reward losses are weighted by η = max(1 - step / 2e5, 0.2) with the
    step frozen at the prefill (models.py: WorldModel keeps the `step` it was built with)."""
    action_repeat, tg_loops, sc_loops = (2, 2, 2) if domain == "dmc" else (1, 5, 2)
    loop = int(1e4) // action_repeat  # agent steps of one loop (eval_every)
    per_loop = loop // 5  # updates of one loop (train_every 5, train_steps 1)
    return dict(target_steps=tg_loops * per_loop, source_steps=sc_loops * per_loop, pretrain_steps=100 + 3 * per_loop,
                warmup_rounds=2, warmup_steps=loop, warmup_source_steps=per_loop, reward_anneal=200_000,
                reward_anneal_min=0.2, reward_anneal_frozen=True, domain_kl_reduction="batchmean",
                prefill=_TABLE8[domain]["prefill"])


_PRESETS: dict[str, Callable[[str], tuple[DreamerConfig, dict[str, Any]]]] = {
    "smoke": lambda d: (DreamerConfig.preset("smoke"),
                        dict(_TABLE8[d], target_steps=4, source_steps=3, pretrain_steps=3, prefill=12,
                             train_every=2)),
    # the learning check's alternation (benchmark/check.py COWORLD) on the quick model
    "quick": lambda d: (DreamerConfig.preset("quick"),
                        dict(_TABLE8[d], target_steps=500, source_steps=250, pretrain_steps=1_000, prefill=1_000,
                             train_every=5)),
    "paper": lambda d: (_paper_model(), dict(_TABLE8[d])),
    "arxiv-v1": lambda d: (_paper_model(), dict(beta2=1.5, reward_k=0.2, alpha=0.2, target_steps=50_000,
                                                source_steps=20_000, prefill=_TABLE8[d]["prefill"])),
    # co_configs.yaml (defaults + dmc/metaworld): Gaussian latents, batch 150, reward_scale 2 (DMC), no
    # discount head, reward head of 2 layers, no weight decay, 3e-4 / 8e-5 learning rates, gamma 0.99,
    # beta_2 1, alpha 1.5; its relabel (1 - k)·r̂ + k·r with k = 0.3 is reward_k = 0.7; the schedule of
    # `_code_schedule`.
    "code": lambda d: (DreamerConfig.preset("paper", batch_size=150, seq_len=50, deter=200, hidden=200, stoch=50,
                                            classes=0, depth=32, **{"wm.lr": 3e-4}, actor_lr=8e-5, critic_lr=8e-5,
                                            gamma=0.99, **{"wm.weight_decay": 0.0, "behavior.weight_decay": 0.0,
                                                           "wm.layers": 2},
                                            reward_scale=2.0 if d == "dmc" else 1.0),
                       dict(beta2=1.0, reward_k=0.7, alpha=1.5, **_code_schedule(d))),
}


def domain_of(spec: EnvSpec) -> str:
    """The Table 8 column of a task: "metaworld" for Meta-World, "dmc" for DMC and its transfer tasks."""
    return "metaworld" if spec.suite == "metaworld" else "dmc"


# -- the agents -------------------------------------------------------------------------------------------

@contextmanager
def recorded(module: nn.Module) -> Iterator[list[tuple[Tensor, Tensor]]]:
    """(first input, output) of every forward call of `module` inside the block."""
    calls: list[tuple[Tensor, Tensor]] = []
    handle = module.register_forward_hook(lambda _, args, out: calls.append((args[0], out)))
    try:
        yield calls
    finally:
        handle.remove()


class ValueConstrainedActorCritic(ActorCritic):
    """The target actor-critic: DreamerV2's imagination losses, plus Eq. 6's α·max(ζ·v_T(ẑ), sg(v_S(ẑ)))
    on the critic over the same imagined states, weighted like the critic's regression term."""

    def __init__(self, cfg: BehaviorConfig, feat_dim: int, action_dim: int, alpha: float, zeta: float):
        super().__init__(cfg, feat_dim, action_dim)
        self.alpha, self.zeta = alpha, zeta
        # v_S: the selected source's critic, set before each update (a callable, not a submodule, so that
        # it stays out of this module's state dict); None: plain DreamerV2 behaviour learning
        self.source_value: Callable[[Tensor], Tensor] | None = None

    def loss(self, wm: WorldModel, start: State, start_cont: Tensor | None = None) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        with recorded(self.critic) as calls:
            actor_loss, critic_loss, metrics = super().loss(wm, start, start_cont)
        if self.source_value is None:
            return actor_loss, critic_loss, metrics
        feats, target_value = calls[-1]  # v_T(ẑ_t) of imagined states t = 0..H-1: (H, N, F), (H, N)
        assert feats.shape[0] == self.cfg.horizon and target_value.shape == feats.shape[:-1], \
            f"critic call: feats {tuple(feats.shape)}, values {tuple(target_value.shape)}"
        with torch.no_grad():
            source_value = self.source_value(feats).float()
            discount = self.cfg.gamma * wm.continuation(feats[1:])
            weight = torch.cumprod(torch.cat([torch.ones_like(discount[:1]), discount]), 0)
            if start_cont is not None:
                weight = weight * start_cont.reshape(1, -1)
        constraint = (weight * max_min_value_loss(target_value.float(), source_value, self.zeta)).mean()  # Eq. 6
        metrics["value_constraint"] = constraint.detach()
        metrics["source_value"] = source_value.mean()
        metrics["constrained_fraction"] = (self.zeta * target_value.detach().float() > source_value).float().mean()
        return actor_loss, critic_loss + self.alpha * constraint, metrics


class CoWorldAgent:
    """The target agent (acts, is evaluated) and one source agent per candidate source task."""

    def __init__(self, action_dim: int, config: CoWorldConfig, device: str = "cpu", n_sources: int = 1):
        self.config, self.device = config, torch.device(device)
        self.target = DreamerV2Agent(action_dim, config, device)
        self.target.behavior = ValueConstrainedActorCritic(config.behavior, self.target.wm.feat_dim, action_dim,
                                                           config.alpha, config.zeta).to(self.device)
        self.sources = [DreamerV2Agent(action_dim, config, device) for _ in range(n_sources)]
        # index of the source selected on the latest target batch, a 0-d tensor on the device (no sync)
        self.selected = torch.zeros((), dtype=torch.long, device=self.device)

    # Algorithm 1, lines 7-13
    def update(self, batch: Batch, behavior: bool = True) -> Metrics:
        """One target update on an offline target batch; `behavior=False` trains the world model alone
        (the released code's warm-up, "Step 2")."""
        cfg, wm = self.config, self.target.wm
        data = to_torch(batch, self.device)
        with self.target.precision():
            with recorded(wm.encoder) as calls:
                model_loss, metrics, post = wm.loss(data)
            target_embed = calls[0][1]  # e_T(o_t), with gradient
            with torch.no_grad():
                source_embeds = [s.wm.encode(data["image"]) for s in self.sources]
            kls = torch.stack([reduce_domain_kl(domain_kl(e, target_embed), cfg.domain_kl_reduction)
                               for e in source_embeds])
            omega = select_source(kls)  # one-hot; the only source in best-source mode (Eq. 12)
            if cfg.domain_alignment:
                model_loss = model_loss + cfg.beta2 * (omega * kls).sum()  # Eq. 3
        metrics["model_grad_norm"] = wm.opt.step(model_loss)
        self.selected = omega.argmax()
        for i, kl in enumerate(kls):
            metrics[f"domain_kl_{i}"] = kl.detach()
        metrics["domain_kl"] = (omega * kls).sum().detach()
        if not behavior:
            return metrics
        actor_critic = self.target.behavior
        actor_critic.source_value = self.selected_value(omega) if cfg.value_constraint else None
        metrics.update(actor_critic.update(wm, post, data["discount"], self.target.precision))
        return metrics

    def selected_value(self, omega: Tensor) -> Callable[[Tensor], Tensor]:
        """v_S of the source ω selects, as Σ_i ω_i·v_i (ω one-hot): chosen on the device, without reading ω."""
        critics = [s.behavior.critic for s in self.sources]
        if len(critics) == 1:
            return critics[0].forward
        return lambda feat: sum(w * critic(feat).float() for w, critic in zip(omega, critics))

    # Algorithm 1, lines 17-22
    def update_source(self, index: int, batch: Batch, target_batch: Batch | None = None,
                      step: int = 0) -> Metrics:
        """One source update on a source replay batch; with `target_batch` (and reward modulation on)
        its reward head is also fitted to relabelled target rewards (Eq. 4-5), the two reward losses
        weighted as `reward_loss_weights` says at source step `step`."""
        source, cfg = self.sources[index], self.config
        if target_batch is None or not cfg.reward_modulation:
            return source.update(batch)
        data, target = to_torch(batch, self.device), to_torch(target_batch, self.device)
        weight_source, weight_target = reward_loss_weights(step, cfg.reward_anneal, cfg.reward_anneal_min)
        with source.precision():
            with recorded(source.wm.heads["reward"]) as calls:
                model_loss, metrics, post = source.wm.loss(data)
            source_reward_nll = reward_nll(calls[0][1].float(), data["reward"])  # inside model_loss at weight 1
            target_post, _, _ = source.wm.observe(target)  # h^(T), z^(T) ~ q_S(z | h, o^(T))
            predicted = source.wm.reward(source.wm.rssm.feat(target_post))
            label = relabel_source_reward(predicted, target["reward"], cfg.reward_k)  # Eq. 4
            target_reward_nll = reward_nll(predicted, label)  # Eq. 5, second term
            model_loss = model_loss + cfg.wm.reward_scale * (
                (weight_source - 1) * source_reward_nll + weight_target * target_reward_nll)
        metrics["model_grad_norm"] = source.wm.opt.step(model_loss)
        metrics["target_reward_loss"] = target_reward_nll.detach()
        metrics["relabelled_reward"] = label.mean().detach()
        metrics["reward_eta"] = torch.tensor(weight_source)
        metrics.update(source.behavior.update(source.wm, post, data["discount"], source.precision))
        return metrics

    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        """The target policy (the one evaluated)."""
        return self.target.act(obs, state, eval_mode)

    def state_dict(self) -> dict[str, Any]:
        return {"target": self.target.state_dict(), "sources": [s.state_dict() for s in self.sources],
                "selected": int(self.selected)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["sources"]) != len(self.sources):
            raise OwbenchError(f"checkpoint has {len(state['sources'])} source agents, this run {len(self.sources)}; "
                               "resume with the same source_mode and sources")
        self.target.load_state_dict(state["target"])
        for source, s in zip(self.sources, state["sources"]):
            source.load_state_dict(s)
        self.selected = torch.as_tensor(state["selected"], dtype=torch.long, device=self.device)


def make_agent(spec: EnvSpec, config: CoWorldConfig, device: str = "cpu", seed: int = 0,
               n_sources: int | None = None) -> CoWorldAgent:
    """The CoWorld agent for target task `spec`; `n_sources` defaults to the config's candidates."""
    torch.manual_seed(seed)
    if n_sources is None:
        n_sources = 1 + len(config.sources) if config.source_mode == "multi-source" else 1
    return CoWorldAgent(spec.action_dim, config, device, n_sources)


def candidate_sources(config: CoWorldConfig, source_env_id: str | None, target_env_id: str = "") -> list[str]:
    """The source tasks of a run: the pair's source, plus `sources` (but the target) in multi-source mode."""
    if source_env_id is None:
        raise OwbenchError("CoWorld needs an online source task; run it in a transfer suite "
                           "(dmc-transfer, metaworld-transfer) whose pairs name one")
    if config.source_mode == "best-source":
        return [source_env_id]
    return [source_env_id] + [s for s in dict.fromkeys(config.sources) if s not in (source_env_id, target_env_id)]


# -- the online source domain -----------------------------------------------------------------------------

class SourceDomain:
    """One online source task: its environment, the source agent acting in it, and its replay buffer
    B^(S) (`agents.online.Replay`: in memory for sampling, persisted episode by episode in the
    crash-safe store run_dir/source_buffers/<task>.zarr, from which a resumed run reloads it)."""

    def __init__(self, env: Env, agent: DreamerV2Agent, replay: Replay, seed: int):
        self.env, self.agent, self.replay, self.seed = env, agent, replay, seed
        self.obs: Obs | None = None  # None: the next step starts an episode
        self.state: Any = None  # the source agent's RSSM state while acting

    def interact(self, steps: int, rng: np.random.Generator, random_actions: bool = False) -> None:
        """Algorithm 1 line 23: `steps` source environment steps with the source policy (or uniform
        random actions for the prefill); finished episodes are committed to B^(S)."""
        for _ in range(steps):
            if self.obs is None:
                self.episode_seed = episode_seed(self.seed, len(self.replay.episodes))
                self.obs, self.state, self.success = self.env.reset(seed=self.episode_seed), None, False
                self.replay.add(self.obs, np.zeros(self.env.spec.action_dim, np.float32), 0.0, 1.0, True, False,
                                False, self.env.physics_state())
            if random_actions:
                action = rng.uniform(-1, 1, self.env.spec.action_dim).astype(np.float32)
            else:
                action, self.state = self.agent.act(self.obs, self.state)
            self.obs, reward, terminated, truncated, info = self.env.step(action)
            done = terminated or truncated
            self.success |= bool(info.get("success", False))
            self.replay.add(self.obs, action, reward, info["discount"], False, done, terminated,
                            self.env.physics_state())
            if done:
                returns = float(np.sum(self.replay.current["reward"]))
                self.replay.finish({"return": returns, "success": self.success, "seed": self.episode_seed})
                self.obs = None

    def pretrain_update(self, rng: np.random.Generator, train_every: int, batch_size: int,
                        seq_len: int) -> Metrics:
        """Algorithm 1 line 3, one step: `train_every` source steps with the source policy, then one DreamerV2
        update of the source agent on a batch of B^(S), without target signal (also DV2 Finetune's first stage)."""
        self.interact(train_every, rng)
        return self.agent.update(self.replay.sample(rng, batch_size, seq_len))

    def close(self) -> None:
        self.env.close()


# -- Algorithm 1 with the harness --------------------------------------------------------------------------

@dataclass
class Progress:
    """Updates done so far; with the config and budget they say which phase comes next."""

    pretrain: int = 0  # source pretraining updates (line 3), each of every source
    warmup: int = 0  # target world-model-only updates of the released code's warm-up ("Step 2")
    target: int = 0  # target updates (lines 6-13)
    source: int = 0  # source updates after pretraining (warm-up rounds and lines 16-23)

    @property
    def total(self) -> int:
        return self.pretrain + self.warmup + self.target + self.source

    def phase(self, cfg: CoWorldConfig, steps: int) -> str:
        """"pretrain", "warmup", "target", "source" or "done"."""
        if self.pretrain < cfg.pretrain_steps:
            return "pretrain"
        owed = 0  # source updates due after the target phases done so far
        if cfg.warmup_rounds and cfg.warmup_steps:
            owed = self.warmup // cfg.warmup_steps * cfg.warmup_source_steps
            if self.warmup < cfg.warmup_rounds * cfg.warmup_steps:
                return "source" if self.warmup % cfg.warmup_steps == 0 and self.source < owed else "warmup"
            if self.source < owed:
                return "source"
        if self.target >= steps:
            return "done"
        owed += self.target // cfg.target_steps * cfg.source_steps
        if self.target % cfg.target_steps == 0 and self.source < owed:
            return "source"
        return "target"


def updates_per_run(cfg: CoWorldConfig, steps: int) -> dict[str, int]:
    """What a run with a budget of `steps` target updates performs: source pretraining updates, target
    world-model-only warm-up updates, target updates and co-training source updates (each of those after
    `train_every` source environment steps, as are the pretraining ones)."""
    warmup_source = cfg.warmup_rounds * cfg.warmup_source_steps if cfg.warmup_steps else 0
    return {"pretrain": cfg.pretrain_steps, "warmup": cfg.warmup_rounds * cfg.warmup_steps, "target": steps,
            "source": warmup_source + (steps - 1) // cfg.target_steps * cfg.source_steps}


def train(ctx: TrainContext) -> EvalResult:
    """Algorithm 1 under the harness: `ctx.datasets[0]` is the offline target dataset, `ctx.source_env_id`
    the online source task, `ctx.steps` the target update budget. Checkpoints (both agents, counters, RNGs;
    the source buffers are their own stores), metrics.csv (one row per `log_every` updates of a phase,
    step = all updates so far), eval.csv (the target policy in the target environment under the fixed
    protocol, step = target updates) and the progress bar are agents/training.py's; a killed run resumes."""
    spec = ctx.spec
    cfg = CoWorldConfig.preset(ctx.preset, domain=domain_of(spec), **{"image_size": ctx.image_size, **ctx.overrides})
    source_ids = candidate_sources(cfg, ctx.source_env_id, spec.id)
    for sid in source_ids:
        if envs.spec(sid).action_dim != spec.action_dim:
            raise OwbenchError(f"source {sid} has {envs.spec(sid).action_dim} action dims, target {spec.id} "
                               f"{spec.action_dim}; CoWorld transfers within one embodiment; pick a source of that robot")
    agent = make_agent(spec, cfg, ctx.device, ctx.seed, n_sources=len(source_ids))
    checkpoints = Checkpointer(ctx.run_dir / "checkpoints")
    saved = checkpoints.load(agent)
    progress = Progress(**saved["progress"]) if saved else Progress()
    picks: Counter[int] = Counter(saved["picks"] if saved else {})  # selections per source, this target phase
    rng = np.random.default_rng(ctx.seed)
    if saved:
        rng.bit_generator.state = saved["replay_rng"]
    metrics = MetricsLogger(ctx.run_dir, ctx.log_every, ctx.tensorboard)
    eval_log = CsvLog(ctx.run_dir / "eval.csv", EVAL_COLUMNS)
    metrics.csv.truncate_after(progress.total if saved else -1)
    eval_log.truncate_after(progress.target if saved else -1)
    # multi-source: the source selected on every target batch (written with each checkpoint); the selections
    # stay on the device as (step, index tensor) until then, so a target update never waits for the GPU
    selection_log, selections = CsvLog(ctx.run_dir / "source_selection.csv", ["step", "source"]), []
    selection_log.truncate_after(progress.target if saved else -1)
    domains = [SourceDomain(ctx.make_env(sid), agent.sources[i],
                            Replay(ctx.run_dir / "source_buffers" / f"{sid}.zarr", sid), seed=ctx.seed * 100 + i)
               for i, sid in enumerate(source_ids)]
    targets = SequenceSampler(ctx.datasets[:1], cfg.batch_size, cfg.seq_len, seed=ctx.seed * 1_000_003 + progress.total)

    def sample(i: int) -> Batch:
        return domains[i].replay.sample(rng, cfg.batch_size, cfg.seq_len)

    total = sum(updates_per_run(cfg, ctx.steps).values())
    try:
        with TrainProgress(total, progress.total, ctx.progress, f"coworld {ctx.env_id}") as bar:
            for domain in domains:  # B^(S) starts with random episodes
                domain.interact(max(cfg.prefill - domain.replay.steps, 0), rng, random_actions=True)
            while (phase := progress.phase(cfg, ctx.steps)) != "done":
                if phase == "pretrain":  # line 3: each source agent learns online, without target signal
                    update = {}
                    for i, domain in enumerate(domains):
                        update.update(_prefixed(f"source{i}/", domain.pretrain_update(rng, cfg.train_every,
                                                                                      cfg.batch_size, cfg.seq_len)))
                    progress.pretrain += 1
                elif phase == "warmup":  # the released code's Step 2: the target world model alone (Eq. 3)
                    update = agent.update(targets.sample(), behavior=False)
                    selections.append((progress.target, agent.selected))  # counted as picks at the checkpoint
                    progress.warmup += 1
                elif phase == "target":  # lines 6-13
                    update = agent.update(targets.sample())
                    selections.append((progress.target + 1, agent.selected))
                    update.update({f"selected_{i}": (agent.selected == i).float() for i in range(len(domains))})
                    progress.target += 1
                    if ctx.eval_every and progress.target % ctx.eval_every == 0 and progress.target < ctx.steps:
                        log_eval(ctx.run_dir, progress.target, evaluate(agent, ctx.make_env, ctx.eval_episodes, ctx.seed))
                else:  # lines 16-23, on the source selected most often in the last target phase
                    i = picks.most_common(1)[0][0] if picks else int(agent.selected)
                    domains[i].interact(cfg.train_every, rng)
                    step = cfg.prefill if cfg.reward_anneal_frozen else domains[i].replay.steps
                    update = _prefixed(f"source{i}/", agent.update_source(i, sample(i), targets.sample(), step))
                    progress.source += 1
                phase_ends = progress.phase(cfg, ctx.steps) != phase
                if phase == "source" and phase_ends:
                    picks.clear()
                update.update(target_updates=progress.target, source_env_steps=sum(d.replay.steps for d in domains))
                row = metrics.log(progress.total, update, force=phase_ends)
                bar.update(progress.total, f"{phase} " + _summary(row) if row else None)
                if phase_ends or ctx.checkpoint_every and progress.total % ctx.checkpoint_every == 0:
                    picked = torch.stack([i for _, i in selections]).tolist() if selections else []
                    picks.update(picked)
                    if len(source_ids) > 1:
                        selection_log.append([{"step": step, "source": source_ids[i]}
                                              for (step, _), i in zip(selections, picked)])
                    selections.clear()
                    checkpoints.save(progress.total, agent, progress=dataclasses.asdict(progress), picks=dict(picks),
                                     replay_rng=rng.bit_generator.state)
    finally:
        metrics.close()
        targets.close()
        for domain in domains:
            domain.close()
    result = evaluate(agent, ctx.make_env, ctx.eval_episodes, ctx.seed, record_frames=True)
    eval_log.truncate_after(progress.target - 1)  # a rerun after the final checkpoint re-evaluates once
    log_eval(ctx.run_dir, progress.target, result)
    return result


def _prefixed(prefix: str, metrics: Metrics) -> Metrics:
    return {prefix + k: v for k, v in metrics.items()}
