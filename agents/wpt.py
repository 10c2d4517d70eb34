"""WPT (Zhao et al., "Generalist World Model Pre-Training for Efficient RL"), Algorithm 1 (App. C).

Pretraining (§3.2), on a non-curated pool: reward-free, multi-embodiment datasets addressed as one
    actions zero-padded to the largest action space (`action_pad`), the true dimension kept;
    one world model trained on the pool with Eq. 1 only: image likelihood + β·KL, no reward or
    continue head                                                           -> `pretrain`, world_model.pt
Fine-tuning (§3.3) on a target task, online:
    experience retrieval   e(o_0) of the target's first observation against e(o_0) of every pool
                           trajectory, D = ||e(o_on) - e(o_off)||_2, the R nearest fill D_retrieval   (Eq. 5)
    behaviour cloning      π_bc(a | o) on D_retrieval, -log π_bc with a fixed-variance Gaussian (MSE)
    per update             world model: Eq. 1 on B_on ∪ B_retrieval (mix ratio 0.25, "ER");
                           reward model r_ξ(s_t): -log p_ξ(r_t | s_t) on B_on only;
                           actor-critic in imagination from the posteriors of both (Eqs. 2-4)
    execution guidance     per episode, with probability linear(1, 0, N) of the env steps so far,
                           π_bc acts from a random step k for a random duration H ("G")

Choices where the paper leaves room, documented here:
- r_ξ is its own MLP on sg(s_t) with its own optimiser (Alg. 1 updates it separately); imagination reads it.
- No continue head: DMC and Meta-World episodes end by time limit only (the paper removes it, §3.2).
- The RSSM is the shared DreamerV2 one (GRU), not DreamerV3's 8-block GRU; the `paper` preset keeps
  Table 5's sizes where they map (deter 1536, 32x96 latents, CNN depth 96, MLPs 3x512, lr 1e-4).
- π_bc is App. A.1's: the conv encoder (depth 32: [32, 64, 128, 256] at 64 px, ELU) on 3 stacked frames,
  a trunk Linear -> LayerNorm -> tanh to 50 features, then Linear -> LayerNorm -> ELU layers of 1024 and a
  linear output; its action is tanh of that output (App. A.1's listing stops at the linear output).
- The guidance schedule counts the agent's own environment steps (action repeat included);
  random prefill steps do not count.
- Retrieval uses the pretrained encoder (`encoder="wpt"`); without pretraining (ablation "no P")
  it falls back to pooled pixels.
- Without pretraining ("no P") the model still takes actions padded to the pool's largest action space,
  so retrieved windows of every embodiment fit (`WorldModel.pad_action` refuses wider actions).
- Table 5's action repeat 2 holds for every suite: `online.action_repeat` 2 repeats each Meta-World
  action twice (DMC tasks already repeat 2), in training and evaluation alike.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents import retrieval
from agents.artefacts import artefact_key, pretrained_artefact, save_atomic
from agents.wpt_pretrained import Pretrained, load_pretrained
from agents.contract import Batch, Metrics, Obs
from agents.online import OnlineConfig, train_online
from agents.training import to_float_rows
from agents.world_model import (BehaviorConfig, DreamerConfig, WorldModel, WorldModelConfig, autocast, to_torch,
                                with_overrides)
from agents.world_model.nets import MLP, Encoder, Optimizer
from agents.world_model.agent import DreamerV2Agent
from collectors.envs.base import EnvSpec
from collectors.errors import OwbenchError, unknown

SEQUENCE_KEYS = ("image", "action", "reward", "discount", "is_first", "is_last", "is_terminal")
GUIDANCE_STEPS = {"dmc": 50_000, "transfer": 50_000, "metaworld": 150_000}  # Table 5: linear(1, 0, N)


@dataclass(frozen=True)
class Config:
    dreamer: DreamerConfig = DreamerConfig(
        WorldModelConfig(depth=96, deter=1536, hidden=1536, stoch=32, classes=96, units=512, layers=3, lr=1e-4),
        BehaviorConfig(horizon=16, gamma=0.99, lambda_=0.95, units=512, layers=3, actor_lr=8e-5, critic_lr=8e-5),
        batch_size=16, seq_len=64)  # Table 5
    online: OnlineConfig = OnlineConfig(prefill=7500, action_repeat=2,  # Table 5: 15k warm-up frames, action repeat 2
                                        budget="env_steps")
    pretrain_steps: int = 200_000  # reward-free world-model updates on the pool (Table 5)
    pretrained: str = ""  # world_model.pt from `owbench pretrain wpt`; "" = pretrain in `train` (or untrained)
    action_pad: int = 0  # padded action size; 0 = the largest action space of the pool and the target
    encoder: str = "wpt"  # retrieval features: "wpt" (the pretrained encoder), "pixels" or "random-proj"
    retrieve: int = 50  # R: trajectories retrieved from the pool (Alg. 1)
    mix_ratio: float = 0.25  # share of each world-model batch drawn from D_retrieval (Table 5)
    guidance_steps: int = 0  # env steps of the linear(1, 0, N) schedule; 0 = Table 5 (DMC 50k, Meta-World 150k)
    bc_steps: int = 10_000  # behaviour-cloning updates of π_bc on D_retrieval
    bc_batch: int = 256  # transitions per BC update
    bc_lr: float = 1e-4  # Adam learning rate of π_bc
    bc_depth: int = 32  # π_bc conv depth ([32, 64, 128, 256], App. A.1)
    bc_frames: int = 3  # π_bc input: stacked frames (App. A.1: 9 input channels)
    bc_feature: int = 50  # π_bc trunk: Linear -> LayerNorm -> tanh to this many features (App. A.1)
    bc_units: int = 1024  # π_bc MLP width, LayerNorm after every hidden linear layer (App. A.1)
    bc_layers: int = 2  # π_bc hidden layers (App. A.1: three linear layers with the output)
    pretrain: bool = True  # ablation switch "P": start from the pretrained world model (Fig. 6)
    rehearsal: bool = True  # ablation switch "ER": fine-tune on retrieved data, imagine from it too
    guidance: bool = True  # ablation switch "G": execution guidance by π_bc

    @property
    def image_size(self) -> int:
        return self.dreamer.image_size

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "Config":
        """`smoke` (tests: seconds on CPU), `quick` (hours on a CPU machine), `paper` (Table 5).
        Overrides name a field (`mix_ratio=0.5`, `guidance=False`) or a dotted path (`dreamer.wm.deter=64`)."""
        presets = {
            "smoke": cls(DreamerConfig.preset("smoke"), OnlineConfig.preset("smoke"), pretrain_steps=20, retrieve=2,
                         guidance_steps=200, bc_steps=10, bc_batch=8, bc_depth=8, bc_feature=8, bc_units=32,
                         bc_layers=1),
            # `owbench check wpt`'s setting (transfer_check reads the sizes, QUICK_FIELDS); guidance over the first
            # third of the online environment steps: 2,500 updates x train_every 2 x action repeat 2 / 3
            "quick": cls(DreamerConfig.preset("quick"), OnlineConfig.preset("quick"),
                         pretrain_steps=1_000, retrieve=4, guidance_steps=3_333, bc_steps=1_000, bc_batch=64,
                         bc_depth=16, bc_feature=8, bc_units=96, bc_layers=2),
            "paper": cls(),
        }
        if name not in presets:
            raise unknown("preset", name, presets)
        return with_overrides(presets[name], overrides)


# -- pretraining on the non-curated pool (§3.2, Eq. 1) ------------------------------------------------

def reward_free(cfg: WorldModelConfig, action_pad: int) -> WorldModelConfig:
    """Eq. 1's world model: no reward or continue head, actions padded to `action_pad`."""
    return replace(cfg, reward_head=False, discount_head=False, extra_heads=(), action_dim=action_pad)


class Pool:
    """The non-curated pool: reward-free datasets of several embodiments and tasks addressed as one.
    Windows are drawn in proportion to the datasets' sizes; actions are zero-padded to `action_pad`
    and every sample keeps its true dimension in `action_dim` (B,)."""

    def __init__(self, locations: Sequence[str], action_pad: int = 0, image_size: int | None = None):
        from collectors.store import open_dataset

        if not locations:
            raise OwbenchError("WPT needs a pool of datasets; pass --pool id1,id2,...")
        self.datasets = [open_dataset(d) for d in locations]
        for d in self.datasets:
            if image_size is not None and d.arrays["image"].shape[1] != image_size:
                raise OwbenchError(f"{d.location} has {d.arrays['image'].shape[1]}px images but the preset expects "
                                   f"{image_size}px; pass --image-size {d.arrays['image'].shape[1]}")
        self.action_dims = np.array([d.arrays["action"].shape[1] for d in self.datasets])
        self.action_pad = max(action_pad, int(self.action_dims.max()))

    @property
    def locations(self) -> list[str]:
        return [d.location for d in self.datasets]

    @property
    def env_ids(self) -> list[str]:
        return [d.env_id for d in self.datasets]

    def sampler(self, batch_size: int, length: int, seed: int = 0) -> Iterator[Batch]:
        """Reward-free windows: image, action (B, T, action_pad), flags, `action_dim` (B,)."""
        from collectors.sampler import SequenceSampler

        with SequenceSampler(self.datasets, batch_size, length, seed=seed) as sampler:
            for batch in sampler:
                action = np.zeros((*batch["action"].shape[:2], self.action_pad), np.float32)
                action[..., :batch["action"].shape[-1]] = batch["action"]
                yield {**{k: batch[k] for k in SEQUENCE_KEYS if k not in ("reward", "action")}, "action": action,
                       "action_dim": self.action_dims[batch["dataset"]]}


def pretrain(pool: Sequence[str], config: Config, device: str = "cpu", seed: int = 0, action_pad: int = 0,
             out: Path | None = None, log: Callable[[int, dict[str, float]], None] | None = None) -> Path:
    """Pretrain (or reuse) the generalist world model on `pool` with Eq. 1; returns world_model.pt.

    Actions are zero-padded to `action_pad` (at least the pool's largest). The artefact directory
    defaults to `$OWBENCH_HOME/pretrained/wpt/<key>` (the key hashes pool, sizes, budget and seed),
    so a suite pretrains once per pool; a lock serialises parallel jobs."""
    data = Pool(pool, max(action_pad, config.action_pad), config.dreamer.wm.image_size)
    cfg = reward_free(config.dreamer.wm, data.action_pad)
    record = {"pool": data.locations, "steps": [d.n_steps for d in data.datasets], "wm": asdict(cfg),
              "pretrain_steps": config.pretrain_steps, "batch": [config.dreamer.batch_size, config.dreamer.seq_len],
              "seed": seed}
    with pretrained_artefact("wpt", record, "world_model.pt", out) as (path, ready):
        if ready:
            return path
        torch.manual_seed(seed)
        wm = WorldModel(cfg, data.action_pad, config.dreamer.channels_last).to(device)
        rows, pending = [], []  # metrics stay on the device and are read every 100 steps
        batches = data.sampler(config.dreamer.batch_size, config.dreamer.seq_len, seed)
        for step, batch in zip(range(1, config.pretrain_steps + 1), batches):
            with autocast(device, config.dreamer.amp, config.dreamer.cpu_amp):
                loss, metrics, _ = wm.loss(to_torch(batch, device))  # Eq. 1
            metrics["model_grad_norm"] = wm.opt.step(loss)
            pending.append({"step": step, **metrics})
            if step % 100 == 0 or step == config.pretrain_steps:
                rows += to_float_rows(pending)
                pending.clear()
                if log is not None:
                    log(step, rows[-1])
        batches.close()
        with (path.parent / "pretrain_metrics.csv").open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        artefact = {"wm_config": asdict(cfg), "action_pad": data.action_pad, "pool": data.locations,
                    "pool_env_ids": data.env_ids, "pool_action_dims": data.action_dims.tolist(),
                    "pretrain_steps": config.pretrain_steps, "state": wm.state_dict()}
        (path.parent / "world_model.json").write_text(json.dumps({**record, "key": artefact_key(record)}, indent=1,
                                                                 default=str))
        save_atomic(artefact, path)
    return path


# -- fine-tuning (§3.3) -------------------------------------------------------------------------------

class RewardedWorldModel(WorldModel):
    """The reward-free world model of Eq. 1 plus the separate reward model r_ξ, which imagination reads."""

    def __init__(self, cfg: WorldModelConfig, action_dim: int, channels_last: bool = True):
        super().__init__(cfg, action_dim, channels_last)
        assert not self.heads, "WPT's world model has no reward or continue head (Eq. 1)"
        self.reward_model = MLP(self.feat_dim, 1, cfg.units, cfg.layers, fp32_out=True)  # r_ξ, not in Eq. 1's optimiser
        self.reward_opt = Optimizer([self.reward_model], cfg.lr, cfg.eps, cfg.weight_decay, cfg.grad_clip)

    def reward(self, feat: Tensor) -> Tensor:
        return self.reward_model(feat).float()


class BCPolicy(nn.Module):
    """π_bc(a | o_{t-k+1:t}) of App. A.1: conv encoder on k stacked frames, a LayerNorm + tanh trunk,
    an MLP with LayerNorm after every hidden linear layer; mean action in [-1, 1]^A."""

    def __init__(self, image_size: int, action_dim: int, depth: int, units: int, layers: int, lr: float,
                 frames: int = 1, feature: int = 50):
        super().__init__()
        self.encoder = Encoder(image_size, depth, channels=3 * frames)
        self.trunk = nn.Sequential(nn.Linear(self.encoder.embed_dim, feature), nn.LayerNorm(feature), nn.Tanh())
        dims = [feature] + [units] * layers
        self.head = nn.Sequential(*[m for i in range(layers) for m in (nn.Linear(dims[i], dims[i + 1]),
                                                                         nn.LayerNorm(dims[i + 1]), nn.ELU())],
                                  nn.Linear(dims[-1], action_dim))
        self.action_dim, self.frames = action_dim, frames
        self.opt = Optimizer([self], lr, 1e-5, 0.0, 100.0)

    def forward(self, image: Tensor) -> Tensor:
        """Stacked frames (..., H, W, 3k), oldest first -> (..., A)."""
        return torch.tanh(self.head(self.trunk(self.encoder(image))))

    def update(self, image: Tensor, action: Tensor) -> float:
        """-log π_bc(a_t | o_t) for a fixed-variance Gaussian: the squared error on the true action dims."""
        loss = 0.5 * (self(image) - action[..., :self.action_dim]).pow(2).sum(-1).mean()
        self.opt.step(loss)
        return float(loss.detach())


def train_bc(bc: BCPolicy, dataset: str, steps: int, batch: int, seed: int, device: str | torch.device) -> float:
    """Behaviour cloning on D_retrieval (Alg. 1); returns the last loss."""
    from collectors.sampler import TransitionSampler

    loss = float("nan")
    with TransitionSampler(dataset, batch, frame_stack=bc.frames, seed=seed) as sampler:
        for _ in range(steps):
            sample = sampler.sample()
            loss = bc.update(torch.as_tensor(sample["obs"], device=device), torch.as_tensor(sample["action"], device=device))
    return loss


class WPTAgent(DreamerV2Agent):
    """DreamerV2's acting and actor-critic on the (pretrained) padded-action world model, with the
    reward model r_ξ, experience rehearsal from `retrieved` and execution guidance by `bc`."""

    def __init__(self, spec: EnvSpec, config: Config, device: str = "cpu", pretrained: Pretrained | None = None,
                 retrieved: str | None = None, bc: BCPolicy | None = None, seed: int = 0, action_pad: int = 0):
        """`action_pad`: the model's padded action size without a pretrained model (the pool's, so
        retrieved windows fit); at least the target's and `config.action_pad`."""
        pad = pretrained.action_pad if pretrained else max(config.action_pad, spec.action_dim, action_pad)
        if spec.action_dim > pad:
            raise OwbenchError(f"{spec.id} has {spec.action_dim} action dims but the world model pads to {pad}; "
                               f"pretrain with --action-pad {spec.action_dim}")
        wm_cfg = pretrained.wm.cfg if pretrained else reward_free(config.dreamer.wm, pad)
        dreamer = replace(config.dreamer, wm=wm_cfg)
        super().__init__(spec.action_dim, dreamer, device)
        self.wm = RewardedWorldModel(wm_cfg, spec.action_dim, dreamer.channels_last).to(self.device)  # replaces DreamerV2's
        if pretrained is not None:
            missing, unexpected = self.wm.load_state_dict(pretrained.wm.state_dict(), strict=False)
            assert not unexpected and all(k.startswith("reward_model.") for k in missing), (missing, unexpected)
        self.wpt, self.spec, self.bc = config, spec, bc
        self.offline_batch = round(config.mix_ratio * dreamer.batch_size) if retrieved else 0
        self.retrieved = None
        if self.offline_batch:
            from collectors.sampler import SequenceSampler

            self.retrieved = SequenceSampler(retrieved, self.offline_batch, dreamer.seq_len, seed=seed)
        self.guidance_steps = config.guidance_steps or GUIDANCE_STEPS[spec.suite]
        self.env_steps = 0  # the agent's own environment steps (the guidance schedule's clock)
        self.rng = np.random.default_rng(seed)

    # -- world model, reward model and behaviour (Alg. 1, "Update Models") --
    def mix(self, batch: Batch) -> tuple[dict[str, Tensor], int]:
        """B_on ∪ B_retrieval: the last `offline_batch` online windows replaced by retrieved ones;
        actions zero-padded to the model's input. Returns the batch and the number of online windows,
        which come first (a prefix: sliced, never masked, so that no step waits for the device)."""
        online = to_torch({k: batch[k] for k in SEQUENCE_KEYS}, self.device)
        online["action"] = self.wm.pad_action(online["action"])
        B = online["reward"].shape[0]
        if self.retrieved is None:
            return online, B
        offline = to_torch({k: v for k, v in self.retrieved.sample().items() if k in SEQUENCE_KEYS}, self.device)
        offline["action"] = self.wm.pad_action(offline["action"])
        n = B - self.offline_batch
        return {k: torch.cat([online[k][:n], offline[k]]) for k in SEQUENCE_KEYS}, n

    def update(self, batch: Batch) -> Metrics:
        data, online = self.mix(batch)
        with self.precision():
            model_loss, metrics, post = self.wm.loss(data)  # Eq. 1 on B_on ∪ B_retrieval
        metrics["model_grad_norm"] = self.wm.opt.step(model_loss)
        feat = self.wm.rssm.feat(post).detach()[:online].float()  # r_ξ learns in float32, outside autocast
        reward_loss = 0.5 * (self.wm.reward(feat) - data["reward"][:online]).pow(2).mean()  # -log p_ξ(r|s), B_on
        metrics["reward_loss"] = reward_loss.detach()
        metrics["reward_grad_norm"] = self.wm.reward_opt.step(reward_loss)
        metrics.update(self.behavior.update(self.wm, post, data["discount"], self.precision))  # Eqs. 2-4 from both
        return metrics

    # -- acting with execution guidance (Alg. 1, "Collect Data") --
    def guidance_probability(self) -> float:
        """linear(1, 0, N): 1 at the first step, 0 after N environment steps."""
        return max(0.0, 1.0 - self.env_steps / self.guidance_steps)

    def plan_guidance(self) -> tuple[int, int] | None:
        """At an episode's start: use π_bc with the scheduled probability, from a random step k for a
        random duration H; returns the agent-step window [k, k + H) or None."""
        if self.bc is None or self.rng.random() >= self.guidance_probability():
            return None
        length = self.spec.episode_length
        start = int(self.rng.integers(length))
        return start, start + int(self.rng.integers(1, length - start + 1))

    @torch.no_grad()
    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        """State: (RSSM latent + previous action, agent step in the episode, guidance window, π_bc's
        last frames, oldest first; the first frame is repeated at an episode's start as in training)."""
        inner, t, window, frames = (None, 0, None if eval_mode else self.plan_guidance(), None) if state is None \
            else state
        action, (latent, prev) = super().act(obs, inner, eval_mode)
        if self.bc is not None:
            frames = (obs["image"],) * self.bc.frames if frames is None else (*frames[1:], obs["image"])
        if window is not None and window[0] <= t < window[1]:
            image = torch.as_tensor(np.concatenate(frames, -1), device=self.device)[None]
            prev = self.bc(image).float()
            action = prev[0].cpu().numpy()
        if not eval_mode:
            self.env_steps += self.spec.action_repeat
        return action, ((latent, prev), t + 1, window, frames)

    def state_dict(self) -> dict[str, Any]:
        extra = {"reward_opt": self.wm.reward_opt.opt.state_dict(), "env_steps": self.env_steps,
                 "rng": self.rng.bit_generator.state}
        if self.bc is not None:
            extra["bc"] = self.bc.state_dict()
        return {**super().state_dict(), **extra}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.wm.reward_opt.opt.load_state_dict(state["reward_opt"])
        self.env_steps, self.rng.bit_generator.state = state["env_steps"], state["rng"]
        if self.bc is not None and "bc" in state:
            self.bc.load_state_dict(state["bc"])


def make_agent(spec: EnvSpec, config: Config, device: str = "cpu", seed: int = 0) -> WPTAgent:
    """The fine-tuning agent on `spec`'s task from `config.pretrained` (untrained when unset or
    with `pretrain=False`); rehearsal and guidance need the pool and are set up by `train`."""
    torch.manual_seed(seed)
    pretrained = load_pretrained(config.pretrained, device) if config.pretrained and config.pretrain else None
    return WPTAgent(spec, config, device, pretrained, seed=seed)


# -- retrieval (§3.3, Eq. 5) and the fine-tuning run (Alg. 1) -------------------------------------------

def retrieve(pool: Sequence[str], extractor: Any, image: np.ndarray, count: int, out: Path) -> list[retrieval.Hit]:
    """Index the first observations of the pool (saved to out/retrieval.index) and return the
    `count` trajectories nearest to `image` (listed in out/retrieved.csv)."""
    index = retrieval.build_retrieval_index(pool, extractor)
    index.save(out / "retrieval.index")
    hits = index.query(image, extractor, k=count)[0]
    env_of = dict(zip(index.datasets, index.meta["env_ids"]))
    with (out / "retrieved.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["rank", "env_id", "dataset", "episode", "distance"])
        writer.writerows([r, env_of[h.dataset], h.dataset, h.episode, h.distance] for r, h in enumerate(hits, 1))
    return hits


def write_retrieved(hits: Sequence[retrieval.Hit], location: Path, action_pad: int) -> str:
    """D_retrieval as a dataset: the retrieved episodes, actions zero-padded to `action_pad`,
    rewards zeroed (the pool is reward-free). Reused when already complete (resume)."""
    from collectors import store

    if store.exists(location):
        if store.open_dataset(location).n_episodes == len(hits):
            return str(location)
    writer = None
    for hit in hits:
        source = store.open_dataset(hit.dataset)
        steps = source.episode(hit.episode)
        padded = np.zeros((len(steps["action"]), action_pad), np.float32)
        padded[:, :steps["action"].shape[1]] = steps["action"]
        steps.update(action=padded, reward=np.zeros_like(steps["reward"]))
        if writer is None:
            shapes = {k: steps[k].shape[1:] for k in ("image", "state", "action", "physics")}
            writer = store.create_dataset(location, {"env_id": source.env_id, "quality": "retrieved",
                                                     "image_size": int(steps["image"].shape[1]),
                                                     "action_dim": action_pad}, shapes, overwrite=True)
        if steps["state"].shape[1:] != writer.group["state"].shape[1:]:  # another embodiment's state: not used
            steps["state"] = np.zeros((len(padded), *writer.group["state"].shape[1:]), np.float32)
            steps["physics"] = np.zeros((len(padded), *writer.group["physics"].shape[1:]), np.float64)
        writer.append_episode(steps, {"seed": int(source.episodes["seed"][hit.episode])})
    return str(location)


def train(ctx: Any) -> Any:
    """Algorithm 1: pretrain (or reuse) on the pool `ctx.datasets`, retrieve R trajectories for the
    target's first observation, clone π_bc on them, then fine-tune online for `ctx.steps` updates."""
    from collectors.envs import spec as env_spec

    config = Config.preset(ctx.preset, **{"dreamer.wm.image_size": ctx.image_size, **ctx.overrides})
    target = config.online.spec(env_spec(ctx.env_id))  # with Table 5's action repeat
    run_dir = Path(ctx.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config.pretrain and not config.pretrained:
        config = replace(config, pretrained=str(pretrain(ctx.datasets, config, ctx.device, action_pad=target.action_dim)))
    pretrained = load_pretrained(config.pretrained, ctx.device) if config.pretrain else None
    pad = pretrained.action_pad if pretrained else Pool(ctx.datasets, max(config.action_pad, target.action_dim)).action_pad
    retrieved, bc = None, None
    if config.rehearsal or config.guidance:
        encoder = config.encoder if config.encoder != "wpt" else (f"wpt:{config.pretrained}" if pretrained else "pixels")
        extractor = retrieval.make_extractor(encoder, ctx.device)
        env = ctx.make_env()
        try:
            first = env.reset(seed=ctx.seed * 100_000)["image"]  # the first online observation (Alg. 1)
        finally:
            env.close()
        hits = retrieve(ctx.datasets, extractor, first, config.retrieve, run_dir)
        retrieved = write_retrieved(hits, run_dir / "retrieved.zarr", pad)
    if config.guidance:
        bc = BCPolicy(config.image_size, target.action_dim, config.bc_depth, config.bc_units, config.bc_layers,
                      config.bc_lr, config.bc_frames, config.bc_feature).to(ctx.device)
        if not (run_dir / "checkpoints" / "latest.pt").exists():  # a resumed run restores π_bc from its checkpoint
            train_bc(bc, retrieved, config.bc_steps, config.bc_batch, ctx.seed, ctx.device)
    torch.manual_seed(ctx.seed)
    agent = WPTAgent(target, config, ctx.device, pretrained, retrieved if config.rehearsal else None, bc, ctx.seed,
                     action_pad=pad)
    try:
        return train_online(ctx, agent, config.online, config.dreamer.batch_size, config.dreamer.seq_len)
    finally:
        if agent.retrieved is not None:
            agent.retrieved.close()

