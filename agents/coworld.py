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
Differences from the released code are listed in the `code` preset and in `docs` of the fields.
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

from agents.contract import Batch, Obs
from agents.coworld_losses import domain_kl, max_min_value_loss, relabel_source_reward, select_source
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


@dataclass(frozen=True)
class CoWorldConfig(DreamerConfig):
    """Both agents share the world-model / actor-critic config (inherited); CoWorld's values follow."""

    beta2: float = 1.5  # β₂: scale of the domain KL (Eq. 3)
    reward_k: float = 0.9  # k: weight of the source prediction in the relabelled target reward (Eq. 4)
    alpha: float = 1.0  # α: scale of the max-min value term (Eq. 6)
    zeta: float = 1.0  # ζ: unifies the value scales of the two domains (Eq. 6; the released code uses 1)
    target_steps: int = 20_000  # K₁: target updates per round (Algorithm 1, line 6)
    source_steps: int = 20_000  # K₂: source updates per round (Algorithm 1, line 16)
    pretrain_steps: int = 20_000  # source updates of the online pretraining (line 3; not stated in the papers)
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
        "metaworld"), `arxiv-v1` (arXiv v1 Table 3), `code` (the released code's co_configs.yaml).
        Overrides name any field (`beta2=0`, `deter=64`, `behavior.gamma=0.99`)."""
        if domain not in _TABLE8:
            raise unknown("CoWorld domain", domain, _TABLE8)
        if name not in _PRESETS:
            raise unknown("preset", name, _PRESETS)
        base, values = _PRESETS[name](domain)
        values.setdefault("sources", _MULTI_SOURCES[domain])
        config = cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(DreamerConfig)}, **values)
        config = with_overrides(config, overrides)
        if config.source_mode not in SOURCE_MODES:
            raise unknown("source_mode", config.source_mode, SOURCE_MODES)
        return config


Config = CoWorldConfig

# NeurIPS Table 8 per domain; the K₁/K₂ of the tables are read by their row names ("source domain update
# steps" 2e4, "target domain update steps" 5e4), which the released code confirms for Meta-World
# (tg_train_steps 5 x 1e4, sc_train_steps 2 x 1e4); arXiv v1 Table 3 swaps the symbols K₁/K₂.
_TABLE8 = {
    "dmc": dict(beta2=1.5, reward_k=0.9, alpha=1.0, target_steps=20_000, source_steps=20_000, prefill=2_500),
    "metaworld": dict(beta2=1.0, reward_k=0.3, alpha=2.0, target_steps=50_000, source_steps=20_000, prefill=5_000),
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


_PRESETS: dict[str, Callable[[str], tuple[DreamerConfig, dict[str, Any]]]] = {
    "smoke": lambda d: (DreamerConfig.preset("smoke"),
                        dict(_TABLE8[d], target_steps=4, source_steps=3, pretrain_steps=3, prefill=12,
                             train_every=2)),
    "quick": lambda d: (DreamerConfig.preset("quick"),
                        dict(_TABLE8[d], target_steps=2_000, source_steps=1_000, pretrain_steps=2_000,
                             prefill=1_000)),
    "paper": lambda d: (_paper_model(), dict(_TABLE8[d])),
    "arxiv-v1": lambda d: (_paper_model(), dict(beta2=1.5, reward_k=0.2, alpha=0.2, target_steps=50_000,
                                                source_steps=20_000, prefill=_TABLE8[d]["prefill"])),
    # co_configs.yaml (defaults + dmc/metaworld): Gaussian latents, batch 150, reward_scale 2 (DMC), no
    # discount head, 3e-4 / 8e-5 learning rates, gamma 0.99; its relabel (1 - k)·r̂ + k·r with k = 0.3 is
    # k = 0.7 in Eq. 4's convention; pretraining 3 x 1e4 env steps at one update per 5 steps.
    "code": lambda d: (DreamerConfig.preset("paper", batch_size=150, seq_len=50, deter=200, hidden=200, stoch=50,
                                            classes=0, depth=32, **{"wm.lr": 3e-4}, actor_lr=8e-5, critic_lr=8e-5,
                                            gamma=0.99, discount_head=False, **{"wm.weight_decay": 0.0},
                                            reward_scale=2.0 if d == "dmc" else 1.0),
                       dict(beta2=1.0, reward_k=0.7, alpha=1.5, target_steps=_TABLE8[d]["target_steps"],
                            source_steps=_TABLE8[d]["source_steps"],
                            pretrain_steps=3_100 if d == "dmc" else 6_100, prefill=_TABLE8[d]["prefill"])),
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
        self.selected = 0  # index of the source selected on the latest target batch

    # Algorithm 1, lines 7-13
    def update(self, batch: Batch) -> dict[str, float]:
        """One target update on an offline target batch."""
        cfg, wm = self.config, self.target.wm
        data = to_torch(batch, self.device)
        with self.target.precision():
            with recorded(wm.encoder) as calls:
                model_loss, metrics, post = wm.loss(data)
            target_embed = calls[0][1]  # e_T(o_t), with gradient
            with torch.no_grad():
                source_embeds = [s.wm.encode(data["image"]) for s in self.sources]
            kls = torch.stack([domain_kl(e, target_embed).mean() for e in source_embeds])
            omega = select_source(kls)  # one-hot; the only source in best-source mode (Eq. 12)
            if cfg.domain_alignment:
                model_loss = model_loss + cfg.beta2 * (omega * kls).sum()  # Eq. 3
        metrics["model_grad_norm"] = wm.opt.step(model_loss)
        self.selected = int(omega.argmax())
        for i, kl in enumerate(kls):
            metrics[f"domain_kl_{i}"] = kl.detach()
        metrics["domain_kl"] = kls[self.selected].detach()
        behavior = self.target.behavior
        behavior.source_value = self.sources[self.selected].behavior.critic.forward if cfg.value_constraint else None
        metrics.update(behavior.update(wm, post, data["discount"], self.target.precision))
        return _floats(metrics)

    # Algorithm 1, lines 17-22
    def update_source(self, index: int, batch: Batch, target_batch: Batch | None = None) -> dict[str, float]:
        """One source update on a source replay batch; with `target_batch` (and reward modulation on)
        its reward head is also fitted to relabelled target rewards (Eq. 4-5)."""
        source, cfg = self.sources[index], self.config
        if target_batch is None or not cfg.reward_modulation:
            return source.update(batch)
        data, target = to_torch(batch, self.device), to_torch(target_batch, self.device)
        with source.precision():
            model_loss, metrics, post = source.wm.loss(data)
            target_post, _, _ = source.wm.observe(target)  # h^(T), z^(T) ~ q_S(z | h, o^(T))
            predicted = source.wm.reward(source.wm.rssm.feat(target_post))
            label = relabel_source_reward(predicted, target["reward"], cfg.reward_k)  # Eq. 4
            target_reward_nll = 0.5 * (predicted - label).pow(2).mean()  # Eq. 5, second term (unit Gaussian)
            model_loss = model_loss + cfg.wm.reward_scale * target_reward_nll
        metrics["model_grad_norm"] = source.wm.opt.step(model_loss)
        metrics["target_reward_loss"] = target_reward_nll.detach()
        metrics["relabelled_reward"] = label.mean().detach()
        metrics.update(source.behavior.update(source.wm, post, data["discount"], source.precision))
        return _floats(metrics)

    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        """The target policy (the one evaluated)."""
        return self.target.act(obs, state, eval_mode)

    def state_dict(self) -> dict[str, Any]:
        return {"target": self.target.state_dict(), "sources": [s.state_dict() for s in self.sources],
                "selected": self.selected}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if len(state["sources"]) != len(self.sources):
            raise OwbenchError(f"checkpoint has {len(state['sources'])} source agents, this run {len(self.sources)}; "
                               "resume with the same source_mode and sources")
        self.target.load_state_dict(state["target"])
        for source, s in zip(self.sources, state["sources"]):
            source.load_state_dict(s)
        self.selected = state["selected"]


def _floats(metrics: dict[str, Tensor]) -> dict[str, float]:
    values = torch.stack([torch.as_tensor(v).float().cpu() for v in metrics.values()]).tolist()
    return dict(zip(metrics, values))


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
                        seq_len: int) -> dict[str, float]:
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
    target: int = 0  # target updates (lines 6-13)
    source: int = 0  # co-training source updates (lines 16-23)

    @property
    def total(self) -> int:
        return self.pretrain + self.target + self.source

    def phase(self, cfg: CoWorldConfig, steps: int) -> str:
        """"pretrain", "target", "source" or "done"."""
        if self.pretrain < cfg.pretrain_steps:
            return "pretrain"
        if self.target >= steps:
            return "done"
        rounds = self.target // cfg.target_steps
        if self.target % cfg.target_steps == 0 and self.source < rounds * cfg.source_steps:
            return "source"
        return "target"


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
    saved = checkpoints.load(agent, ctx.device)
    progress = Progress(**saved["progress"]) if saved else Progress()
    picks: Counter[int] = Counter(saved["picks"] if saved else {})  # selections per source, this target phase
    rng = np.random.default_rng(ctx.seed)
    if saved:
        rng.bit_generator.state = saved["replay_rng"]
    metrics = MetricsLogger(ctx.run_dir, ctx.log_every)
    eval_log = CsvLog(ctx.run_dir / "eval.csv", EVAL_COLUMNS)
    metrics.csv.truncate_after(progress.total if saved else -1)
    eval_log.truncate_after(progress.target if saved else -1)
    # multi-source: the source selected on every target batch (written with each checkpoint)
    selection_log, selections = CsvLog(ctx.run_dir / "source_selection.csv", ["step", "source"]), []
    selection_log.truncate_after(progress.target if saved else -1)
    domains = [SourceDomain(ctx.make_env(sid), agent.sources[i],
                            Replay(ctx.run_dir / "source_buffers" / f"{sid}.zarr", sid), seed=ctx.seed * 100 + i)
               for i, sid in enumerate(source_ids)]
    targets = SequenceSampler(ctx.datasets[:1], cfg.batch_size, cfg.seq_len, seed=ctx.seed * 1_000_003 + progress.total)

    def sample(i: int) -> Batch:
        return domains[i].replay.sample(rng, cfg.batch_size, cfg.seq_len)

    total = cfg.pretrain_steps + ctx.steps + (ctx.steps - 1) // cfg.target_steps * cfg.source_steps
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
                elif phase == "target":  # lines 6-13
                    update = agent.update(targets.sample())
                    picks[agent.selected] += 1
                    selections.append({"step": progress.target + 1, "source": source_ids[agent.selected]})
                    update.update({f"selected_{i}": float(agent.selected == i) for i in range(len(domains))})
                    progress.target += 1
                    if ctx.eval_every and progress.target % ctx.eval_every == 0 and progress.target < ctx.steps:
                        log_eval(ctx.run_dir, progress.target, evaluate(agent, ctx.make_env, ctx.eval_episodes, ctx.seed))
                else:  # lines 16-23, on the source selected most often in the last target phase
                    i = picks.most_common(1)[0][0] if picks else agent.selected
                    domains[i].interact(cfg.train_every, rng)
                    update = _prefixed(f"source{i}/", agent.update_source(i, sample(i), targets.sample()))
                    progress.source += 1
                phase_ends = progress.phase(cfg, ctx.steps) != phase
                if phase == "source" and phase_ends:
                    picks.clear()
                update.update(target_updates=progress.target, source_env_steps=sum(d.replay.steps for d in domains))
                row = metrics.log(progress.total, update, force=phase_ends)
                bar.update(progress.total, f"{phase} " + _summary(row) if row else None)
                if phase_ends or ctx.checkpoint_every and progress.total % ctx.checkpoint_every == 0:
                    if len(source_ids) > 1:
                        selection_log.append(selections)
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


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {prefix + k: v for k, v in metrics.items()}
