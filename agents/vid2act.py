"""Vid2Act (Pan et al., "Model-Based RL with Multi-Task Offline Pretraining"), Algorithm 1.

Pretraining (§4.2), on N reward-free source datasets of (image, action) with task labels k:
    teacher F_φ   the shared RSSM with the one-hot label appended to its action input, so
                  q(s_t | s_{t-1}, a_{t-1}, o_t, k), p(ŝ_t | s_{t-1}, a_{t-1}, k) and, through s_t,
                  p(ô_t | s_t, k); image likelihood + β·KL, no reward head           (Eqs. 1-2)
    G_θ           a BCQ-style VAE over (teacher state, action, k) -> action            (Eqs. 3-4)
Online transfer (§4.3-4.4), the student world model F_φ' from scratch:
    s^k_t = F_φ's own posterior on the target sequence o_{1:t}, a_{1:t-1} under label k, frozen
    u^k_t = F_distill(s^k_t),  W = 0.1 + (1 - 0.1 N) softmax_k F_weight([s^k_t, e_t])   (Eq. 5)
    L_distill = Σ_k w_k ‖e_t - u^k_t‖²,  L = L_DreamerV2 + α L_distill                  (Eqs. 6-7)
    actor π(a | e, G_θ(s^{k*}_t, k*)), k* = argmax_k w_k; critic v(e); λ-returns      (Eqs. 8-9)

Choices where paper and released code (panmt/Vid2Act) leave room, all documented here:
- Actions differ in size across sources (DMC: cheetah 6, hopper 4, walker 6, quadruped 12): they are
  zero-padded to `action_pad` (the largest over sources and target); G_θ replays padded actions,
  which only enter the actor as an input feature, so no projection to the target's space is needed.
- The floor: the released code takes max(w, 0.1) (weights then no longer sum to one); here
  w = f + (1 - N f) softmax(·), which sums to one and keeps every weight >= f (needs N f <= 1).
- ‖·‖² is averaged over feature dimensions as in the released code (a sum would swamp the image loss).
- The teacher filters the target images with its own posterior under every label (the released code's
  `dynamics_teachers.observe(encoder_teachers(data, label=k), action, label=k)` in training and its
  `obs_step` when acting), not one prior step from the student's latent (Alg. 1 l. 20 read literally):
  a prior step from a state of another model's latent space measures nothing about the sources.
- G_θ, trained on teacher states, is queried with teacher states: s^{k*}_t when acting; in imagination
  the teacher's prior under k* follows the imagined actions from s^{k*} at the start state (the
  released code trains its VAE on F_distill(teacher states) and queries it with student states).
- In imagination k* stays that of the start state (as the released code); when acting it is chosen
  afresh at every step from the teacher's predictions (Alg. 1 l. 20-21).
- Ablations: `domain_weights=False` uses uniform weights 1/N and k* = the source whose distilled
  prediction is closest to e_t; `action_replay=False` uses DreamerV2's actor π(a | e).
- F_weight is one fully-connected layer by default (paper); with a linear layer the e_t part is the
  same for every k and cancels in the softmax, so `weight_layers > 0` lets e_t matter.
- G_θ is trained beside the teacher on its posterior states and frozen (paper); the released code
  trains it during transfer on distilled teacher states.
- Teacher states are posterior modes (deterministic targets for F_distill); the released code samples.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from agents.action_replay import ActionReplay
from agents.artefacts import pretrained_artefact, save_atomic
from agents.contract import Batch, Metrics, Obs
from agents.online import OnlineConfig, train_online
from agents.world_model import ActorCritic, BehaviorConfig, DreamerConfig, State, WorldModel, WorldModelConfig
from agents.world_model import autocast, to_torch, with_overrides
from agents.world_model.nets import MLP, ActionDist, Optimizer
from agents.protocol import EvalResult
from agents.training import CsvLog, TrainContext, TrainProgress, to_float_rows
from agents.world_model.agent import DreamerV2Agent
from collectors.envs.base import EnvSpec
from collectors.errors import OwbenchError, unknown
from collectors.safeio import load_tensors


@dataclass(frozen=True)
class Config:
    dreamer: DreamerConfig = DreamerConfig()  # student world model + actor-critic; the teacher is pretrained with its wm
    online: OnlineConfig = OnlineConfig(prefill=2500, train_every=5,  # released configs.yaml dmc: prefill 2500,
                                        budget="env_steps")  # train_every 5; §5.3: 200k iterations = 400k env steps
    pretrain_steps: int = 200_000  # teacher updates (§5.2: 200k)
    teacher: str = ""  # path of a pretrained teacher (teacher.pt); "" = an untrained teacher (contract tests)
    untrained_sources: int = 2  # labels of the untrained teacher used when `teacher` is ""
    replay_latent: int = 8  # z of G_θ (DESIGN §7)
    replay_hidden: int = 750  # hidden units of G_θ's encoder and decoder (BCQ)
    replay_kl: float = 0.5  # KL weight of Eq. 4 (BCQ and the released code; the paper writes 1)
    replay_lr: float = 1e-3  # Adam learning rate of G_θ (BCQ)
    distill_units: int = 400  # width of F_distill (and of F_weight's hidden layers)
    distill_layers: int = 1  # hidden layers of F_distill
    weight_layers: int = 0  # hidden layers of F_weight; 0 = one fully-connected layer (Eq. 5)
    alpha: float = 1.0  # weight of L_distill in Eq. 7 (§5.2: 1)
    weight_floor: float = 0.1  # minimum domain-selection weight (§4.3: 0.1)
    domain_weights: bool = True  # ablation switch: False = uniform weights (Fig. 6 "w/o weights")
    action_replay: bool = True  # ablation switch: False = actor without G_θ (Fig. 6 "w/o action replay")

    @property
    def image_size(self) -> int:
        return self.dreamer.image_size

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Config":
        """`smoke` (tests: seconds on CPU), `quick` (hours on a CPU machine), `paper` (§5.2, DESIGN §7).
        Overrides name a field (`alpha=0.5`) or a dotted path (`dreamer.wm.deter=64`)."""
        presets = {
            "smoke": cls(DreamerConfig.preset("smoke"), OnlineConfig.preset("smoke"), pretrain_steps=20,
                         replay_hidden=32, distill_units=32),
            "quick": cls(DreamerConfig.preset("quick"), OnlineConfig.preset("quick"), pretrain_steps=1_000,
                         replay_hidden=96, distill_units=96),  # the sizes transfer_check reads (QUICK_FIELDS)
            "paper": cls(),
        }
        if name not in presets:
            raise unknown("preset", name, presets)
        return with_overrides(presets[name], overrides)


# -- teacher: task-conditioned video prediction + action replay (§4.2) ------------------------------

class Teacher(nn.Module):
    """F_φ and G_θ. The label enters the shared RSSM as a one-hot appended to the (padded) action;
    like the action it is zeroed on an episode's first row, whose posterior comes from o_1 alone."""

    def __init__(self, wm: WorldModelConfig, sources: Sequence[str], action_pad: int, replay_latent: int = 8,
                 replay_hidden: int = 750, replay_lr: float = 1e-3, replay_kl: float = 0.5,
                 channels_last: bool = True):
        super().__init__()
        self.sources, self.action_pad, self.replay_kl = list(sources), action_pad, replay_kl
        self.wm_config = replace(wm, reward_head=False, discount_head=False, extra_heads=(), action_dim=0)
        self.wm = WorldModel(self.wm_config, action_pad + len(self.sources), channels_last)
        self.replay = ActionReplay(self.wm.feat_dim, action_pad, len(self.sources), replay_latent, replay_hidden)
        self.replay_opt = Optimizer([self.replay], replay_lr, 1e-8, 0.0, wm.grad_clip)

    def pad(self, action: Tensor) -> Tensor:
        return F.pad(action, (0, self.action_pad - action.shape[-1]))

    def condition(self, action: Tensor, task: Tensor) -> Tensor:
        """RSSM input [a padded to `action_pad`, one-hot k] for actions (..., A) and labels (...)."""
        return torch.cat([self.pad(action), F.one_hot(task.long(), len(self.sources)).to(action.dtype)], -1)

    @property
    def labels(self) -> int:
        return len(self.sources)

    def posteriors(self, batch: dict[str, Tensor]) -> State:
        """s^k_t for every label k: the teacher's posterior (mode) on target sequences (B, T, ...) with
        label k in its input, (N, B, T, ...); the images are encoded once (the label enters the RSSM)."""
        n, (B, T) = self.labels, batch["is_first"].shape
        embed = self.wm.encode(batch["image"]).repeat(n, 1, 1)
        task = torch.arange(n, device=embed.device).repeat_interleave(B)[:, None].expand(n * B, T)
        action = self.condition(batch["action"].repeat(n, 1, 1), task)
        post, _ = self.wm.rssm.observe(embed, action, batch["is_first"].repeat(n, 1), sample=False)
        return {k: v.unflatten(0, (n, B)) for k, v in post.items()}

    def filter(self, state: State | None, action: Tensor, image: Tensor) -> State:
        """One posterior step under every label from the teacher's own states (N, ...) (None at an
        episode's first observation: zero state and input, as `observe` on is_first rows)."""
        n = self.labels
        embed = self.wm.encode(image).expand(n, -1)
        task = torch.arange(n, device=embed.device)
        cond = self.condition(action.expand(n, -1), task)
        if state is None:
            state, cond = self.wm.rssm.initial(n, embed.device), torch.zeros_like(cond)
        return self.wm.rssm.obs_step(state, cond, embed, sample=False)

    def imagine_step(self, state: State, action: Tensor, task: Tensor) -> State:
        """One prior step (mode) of the teacher under labels `task` (N,) from its states (N, ...)."""
        return self.wm.rssm.img_step(state, self.condition(action, task), sample=False)

    def update(self, batch: dict[str, Tensor], precision: Callable[[], AbstractContextManager] = nullcontext
               ) -> dict[str, Tensor]:
        """One step of Eq. 2 on a mixed batch (`dataset` = label per sequence; its losses under `precision`,
        e.g. autocast), then Eq. 4 on the detached posterior states and the actions a_t taken there
        (row t+1 holds a_t)."""
        task = batch["dataset"][:, None].expand(batch["is_first"].shape)
        with precision():
            loss, metrics, post = self.wm.loss({**batch, "action": self.condition(batch["action"], task)})  # Eq. 2
        metrics["model_grad_norm"] = self.wm.opt.step(loss)
        feat = self.wm.rssm.feat(post).detach().float()
        replay_loss, replay_metrics = self.replay.loss(feat[:, :-1], self.pad(batch["action"][:, 1:]), task[:, :-1],
                                                       self.replay_kl, mask=~batch["is_first"][:, 1:])  # Eq. 4
        self.replay_opt.step(replay_loss)
        return {**metrics, **replay_metrics}

    def artefact(self) -> dict[str, Any]:
        return {"sources": self.sources, "action_pad": self.action_pad, "wm_config": asdict(self.wm_config),
                "replay": {"replay_latent": self.replay.latent, "replay_hidden": self.replay.encoder[0].out_features,
                           "replay_kl": self.replay_kl},
                "state": self.state_dict()}


def load_teacher(path: str | Path, device: str | torch.device = "cpu") -> Teacher:
    """A pretrained teacher from `teacher.pt`, frozen."""
    if not Path(path).exists():
        raise OwbenchError(f"no Vid2Act teacher at {path}; create it with `owbench pretrain vid2act --datasets ...`")
    saved = load_tensors(path, f"Vid2Act teacher {path}",
                         "re-create it with `owbench pretrain vid2act --datasets ...` or give a file it wrote")
    wm = saved["wm_config"]
    wm = WorldModelConfig(**{**wm, "extra_heads": tuple(tuple(h) for h in wm["extra_heads"])})
    teacher = Teacher(wm, saved["sources"], saved["action_pad"], **saved["replay"])
    teacher.load_state_dict(saved["state"])
    return teacher.to(device).requires_grad_(False).eval()


def _source_names(datasets: list[Any]) -> list[str]:
    names = [d.env_id for d in datasets]
    return [n if names.count(n) == 1 else f"{n}#{i}" for i, n in enumerate(names)]


def pretrain(datasets: Sequence[str], config: Config, device: str = "cpu", seed: int = 0, action_pad: int = 0,
             out: Path | None = None, progress: bool = True) -> Path:
    """Pretrain (or reuse) the teacher on reward-free source datasets; returns the path of teacher.pt.

    Labels follow the order of `datasets`. The artefact directory defaults to
    `$OWBENCH_HOME/pretrained/vid2act/<key>`, the key hashing the datasets, the model sizes, the
    budget and the seed, so a suite pretrains once per source set; a lock serialises parallel jobs."""
    from collectors.sampler import SequenceSampler
    from collectors.store import open_dataset

    if not datasets:
        raise OwbenchError("vid2act pretraining needs source datasets; pass --datasets id1,id2,...")
    data = [open_dataset(d) for d in datasets]
    wm, size = config.dreamer.wm, config.dreamer.wm.image_size
    for d in data:
        if d.arrays["image"].shape[1] != size:
            raise OwbenchError(f"{d.location} has {d.arrays['image'].shape[1]}px images but the preset expects "
                               f"{size}px; pass --set dreamer.wm.image_size={d.arrays['image'].shape[1]}")
    pad = max(action_pad, *(d.arrays["action"].shape[1] for d in data))
    record = {"datasets": [d.location for d in data], "steps": [d.n_steps for d in data], "wm": asdict(wm),
              "replay": [config.replay_latent, config.replay_hidden, config.replay_kl, config.replay_lr],
              "pretrain_steps": config.pretrain_steps, "batch": [config.dreamer.batch_size, config.dreamer.seq_len],
              "action_pad": pad, "seed": seed}
    with pretrained_artefact("vid2act", record, "teacher.pt", out) as (path, ready):
        if ready:
            return path
        torch.manual_seed(seed)
        teacher = Teacher(wm, _source_names(data), pad, config.replay_latent, config.replay_hidden,
                          config.replay_lr, config.replay_kl, config.dreamer.channels_last).to(device)
        rows, pending = [], []  # metrics stay on the device and are read every 100 steps
        precision = partial(autocast, device, config.dreamer.amp, config.dreamer.cpu_amp)
        with SequenceSampler(data, config.dreamer.batch_size, config.dreamer.seq_len, seed=seed,
                             weights=[1.0] * len(data)) as sampler, \
                TrainProgress(config.pretrain_steps, 0, progress, "vid2act teacher") as bar:
            for step in range(1, config.pretrain_steps + 1):
                pending.append({"step": step, **teacher.update(to_torch(sampler.sample(), device), precision)})
                if step % 100 == 0 or step == config.pretrain_steps:
                    rows += to_float_rows(pending)
                    pending.clear()
                    bar.update(step, f"image {rows[-1]['image_loss']:.3g}  replay {rows[-1]['replay_loss']:.3g}")
        CsvLog(path.parent / "pretrain_metrics.csv").append(rows)
        (path.parent / "teacher.json").write_text(json.dumps({**record, "sources": teacher.sources}, indent=1,
                                                             default=str))
        save_atomic(teacher.artefact(), path)
    return path


# -- student: domain-selective dynamics and behaviour transfer (§4.3-4.4) ----------------------------

class Guide:
    """Where G_θ is queried for the actor (Eq. 8): `replay(feat)` is G_θ(s^{k*}, k*) for the student
    states `feat`; `follow(action)` advances the teacher once an action is drawn (in imagination)."""

    def replay(self, feat: Tensor) -> Tensor:
        raise NotImplementedError

    def follow(self, action: Tensor) -> None:
        pass


class FilteredGuide(Guide):
    """Acting: the teacher's posteriors s^k_t (N, 1, F) of the current observation; k* from the weights."""

    def __init__(self, agent: "Vid2ActAgent", teacher_feat: Tensor):
        self.agent, self.teacher_feat = agent, teacher_feat

    def replay(self, feat: Tensor) -> Tensor:
        task = self.agent.select_task(*self.agent.transfer(self.teacher_feat, feat))  # (1,)
        state = self.teacher_feat[task, torch.arange(len(task), device=task.device)]
        return self.agent.teacher.replay.decode(state, task)


class ImaginedGuide(Guide):
    """Imagination: the teacher's state under the start state's k*, rolled by its own prior along the
    imagined actions (detached: G_θ's output is an input feature of the actor, as in the released code)."""

    def __init__(self, teacher: Teacher, state: State, task: Tensor):
        self.teacher, self.state, self.task = teacher, state, task

    def replay(self, feat: Tensor) -> Tensor:
        assert len(feat) == len(self.task), f"{len(feat)} imagined states, {len(self.task)} teacher states"
        return self.teacher.replay.decode(self.teacher.wm.rssm.feat(self.state), self.task)

    def follow(self, action: Tensor) -> None:
        with torch.no_grad():
            self.state = self.teacher.imagine_step(self.state, action.detach().float(), self.task)


class GuidedDist(ActionDist):
    """The actor's distribution; drawing an action lets the guide's teacher follow it."""

    def __init__(self, raw: Tensor, min_std: float, init_std: float, guide: Guide):
        super().__init__(raw, min_std, init_std)
        self.guide = guide

    def rsample(self) -> Tensor:
        action = super().rsample()
        self.guide.follow(action)
        return action


class GuidedActorCritic(ActorCritic):
    """DreamerV2's actor-critic with the actor π(a | e, G_θ(s^{k*}, k*)) of Eq. 8; the critic v(e) is
    unchanged. `guided(guide)` says where G_θ is queried for the states the actor sees."""

    def __init__(self, cfg: BehaviorConfig, feat_dim: int, action_dim: int, replay: ActionReplay):
        super().__init__(cfg, feat_dim, action_dim)
        self.replay = replay.requires_grad_(False)
        self.actor = MLP(feat_dim + replay.action_dim, 2 * action_dim, cfg.units, cfg.layers)
        self.actor_opt = Optimizer([self.actor], cfg.actor_lr, cfg.eps, cfg.weight_decay, cfg.grad_clip)
        self.guide: Guide | None = None

    @contextmanager
    def guided(self, guide: Guide) -> Iterator[None]:
        self.guide = guide
        try:
            yield
        finally:
            self.guide = None

    def policy(self, feat: Tensor) -> ActionDist:
        assert self.guide is not None, "GuidedActorCritic.policy needs the teacher: call it inside `with guided(...)`"
        guidance = self.guide.replay(feat)  # G_θ(s^{k*}, k*): the replayed source action
        return GuidedDist(self.actor(torch.cat([feat, guidance.to(feat.dtype)], -1)).float(), self.cfg.min_std,
                          self.cfg.init_std, self.guide)


class Vid2ActAgent(DreamerV2Agent):
    """The student: DreamerV2's world model and acting, plus the frozen teacher, F_distill, F_weight
    and the guided actor. Acting state: (student latent, previous action, teacher states (N, ...))."""

    def __init__(self, action_dim: int, config: Config, teacher: Teacher, device: str = "cpu"):
        super().__init__(action_dim, config.dreamer, device)
        self.vid2act = config
        n = teacher.labels
        if action_dim > teacher.action_pad:
            raise OwbenchError(f"the target's action dim {action_dim} exceeds the teacher's padded size "
                               f"{teacher.action_pad}; pretrain with --action-pad {action_dim}")
        if n * config.weight_floor > 1:
            raise OwbenchError(f"weight_floor {config.weight_floor} x {n} sources exceeds 1; set weight_floor <= {1 / n:.3g}")
        self.teacher = teacher.to(self.device).requires_grad_(False).eval()
        feat, teacher_feat, wm = self.wm.feat_dim, teacher.wm.feat_dim, config.dreamer.wm
        self.distill = MLP(teacher_feat, feat, config.distill_units, config.distill_layers).to(self.device)  # F_distill
        self.domain_weight = MLP(teacher_feat + feat, 1, config.distill_units,
                                 config.weight_layers).to(self.device)  # F_weight
        self.model_opt = Optimizer([self.wm, self.distill, self.domain_weight], wm.lr, wm.eps, wm.weight_decay,
                                   wm.grad_clip)
        if config.action_replay:
            self.behavior = GuidedActorCritic(config.dreamer.behavior, feat, action_dim,
                                              self.teacher.replay).to(self.device)

    @property
    def sources(self) -> list[str]:
        return self.teacher.sources

    def weights(self, teacher_feat: Tensor, feat: Tensor) -> Tensor:
        """W = f + (1 - N f) softmax_k F_weight([s^k_t, e_t]) (Eq. 5 with the floor f): (N, ...)."""
        n = teacher_feat.shape[0]
        if not self.vid2act.domain_weights:
            return torch.full(teacher_feat.shape[:-1], 1.0 / n, device=feat.device)
        student = feat.detach().expand(*teacher_feat.shape[:-1], feat.shape[-1])
        logits = self.domain_weight(torch.cat([teacher_feat, student], -1))
        floor = self.vid2act.weight_floor
        return floor + (1 - n * floor) * logits.float().softmax(0)

    def select_task(self, weights: Tensor, distance: Tensor) -> Tensor:
        """k*: the highest weight, or without learned weights the closest distilled source."""
        return weights.argmax(0) if self.vid2act.domain_weights else distance.argmin(0)

    def transfer(self, teacher_feat: Tensor, feat: Tensor) -> tuple[Tensor, Tensor]:
        """(weights W, distances ‖e_t - u^k_t‖²) per label, both (N, ...)."""
        distance = (feat - self.distill(teacher_feat)).pow(2).mean(-1)
        return self.weights(teacher_feat, feat), distance

    def update(self, batch: Batch) -> Metrics:
        data = to_torch(batch, self.device)
        with self.precision():
            model_loss, metrics, post = self.wm.loss(data)
            with torch.no_grad():
                teacher = self.teacher.posteriors(data)  # s^k_t on the target images, (N, B, T, ...)
            teacher_feat = self.teacher.wm.rssm.feat(teacher)
            weights, distance = self.transfer(teacher_feat, self.wm.rssm.feat(post))
            distill_loss = (weights * distance).sum(0).mean()  # Eq. 6
            loss = model_loss + self.vid2act.alpha * distill_loss  # Eq. 7
        metrics["model_grad_norm"] = self.model_opt.step(loss)
        metrics["distill_loss"] = distill_loss.detach()
        for name, w in zip(self.sources, weights.detach()):
            metrics[f"weight/{name}"] = w.mean()
        task = self.select_task(weights, distance).detach().reshape(-1)  # k* of every start state
        start = {k: v.flatten(1, 2)[task, torch.arange(len(task), device=task.device)] for k, v in teacher.items()}
        with self._guided(ImaginedGuide(self.teacher, start, task)):
            metrics.update(self.behavior.update(self.wm, post, data["discount"], self.precision))  # Eqs. 8-9
        return metrics

    def _guided(self, guide: Guide) -> Any:
        return self.behavior.guided(guide) if isinstance(self.behavior, GuidedActorCritic) else nullcontext()

    @torch.no_grad()
    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        """Alg. 1 l. 19-21: filter o_t with the student and (under every label) the teacher, pick k*
        from the weights, act with G_θ(s^{k*}_t, k*)."""
        inner, teacher = (None, None) if state is None else state
        if not self.vid2act.action_replay:
            return self._act(obs, inner, eval_mode, None)
        prev = torch.zeros(1, self.action_dim, device=self.device) if inner is None else inner[1]
        image = torch.as_tensor(obs["image"], device=self.device)[None]
        with self.precision():
            teacher = self.teacher.filter(teacher, prev, image)
        return self._act(obs, inner, eval_mode, teacher)

    def _act(self, obs: Obs, inner: Any, eval_mode: bool, teacher: State | None) -> tuple[np.ndarray, Any]:
        guide = FilteredGuide(self, self.teacher.wm.rssm.feat(teacher)[:, None]) if teacher is not None else Guide()
        with self._guided(guide):
            action, inner = super().act(obs, inner, eval_mode)
        return action, (inner, teacher)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "distill": self.distill.state_dict(),
                "domain_weight": self.domain_weight.state_dict(), "model_opt": self.model_opt.opt.state_dict(),
                "teacher": self.teacher.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.distill.load_state_dict(state["distill"])
        self.domain_weight.load_state_dict(state["domain_weight"])
        self.model_opt.opt.load_state_dict(state["model_opt"])
        self.teacher.load_state_dict(state["teacher"])


def make_agent(spec: EnvSpec, config: Config, device: str = "cpu", seed: int = 0) -> Vid2ActAgent:
    """The student on `spec`'s task with the teacher at `config.teacher` (untrained when unset)."""
    torch.manual_seed(seed)
    if config.teacher:
        teacher = load_teacher(config.teacher, device)
    else:
        teacher = Teacher(config.dreamer.wm, [f"source{i}" for i in range(config.untrained_sources)],
                          spec.action_dim, config.replay_latent, config.replay_hidden, config.replay_lr,
                          config.replay_kl, config.dreamer.channels_last)
    return Vid2ActAgent(spec.action_dim, config, teacher, device)


# -- the online transfer run (Algorithm 1) ----------------------------------------------------------

def write_domain_weights(run_dir: Path, sources: list[str]) -> Path:
    """Fig. 9: the mean domain-selection weight of every source per metrics.csv row, as
    domain_weights.csv (step, source, weight) and domain_weights.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    metrics = pd.read_csv(run_dir / "metrics.csv")
    table = metrics.melt(id_vars="step", value_vars=[f"weight/{s}" for s in sources], var_name="source",
                         value_name="weight")
    table["source"] = table["source"].str.removeprefix("weight/")
    table.to_csv(run_dir / "domain_weights.csv", index=False)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    for source, rows in table.groupby("source", sort=False):
        ax.plot(rows["step"], rows["weight"], label=source)
    ax.set(xlabel="update", ylabel="domain-selection weight", title="Vid2Act source weights (Fig. 9)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(run_dir / "domain_weights.png", dpi=120)
    plt.close(fig)
    return run_dir / "domain_weights.csv"


def train(ctx: TrainContext) -> EvalResult:
    """Pretrain (or reuse) the teacher on `ctx.datasets` (seed 0: one teacher per source set), then
    train the student online on `ctx.make_env()` for `ctx.steps` updates (Algorithm 1)."""
    from collectors.envs import spec as env_spec

    config = Config.preset(ctx.preset, **{"dreamer.wm.image_size": ctx.image_size, **ctx.overrides})
    target = env_spec(ctx.env_id)
    if not config.teacher:
        path = pretrain(ctx.datasets, config, ctx.device, action_pad=target.action_dim, progress=ctx.progress)
        config = replace(config, teacher=str(path))
    agent = make_agent(target, config, ctx.device, ctx.seed)
    result = train_online(ctx, agent, config.online, config.dreamer.batch_size, config.dreamer.seq_len)
    write_domain_weights(ctx.run_dir, agent.sources)
    return result
