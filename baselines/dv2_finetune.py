"""DV2 Finetune: CoWorld's transfer baseline (Wang et al., NeurIPS 2024, Tables 2-3 and 9): DreamerV2
pretrained online on the source task, then trained offline on the target dataset.

1. Source pretraining, CoWorld's own stage (agents/coworld.py `SourceDomain`, Algorithm 1 line 3): `prefill`
   random-action source steps into the replay B^(S), then `pretrain_steps` DreamerV2 updates, each after
   `train_every` source steps with the agent's policy. Checkpoints, metrics and the source replay live under
   run_dir/pretrain/ and run_dir/source_buffers/; a killed run resumes.
2. Finetuning: the same agent (world model and actor-critic) continues as offline DreamerV2 on the target
   dataset under the generic offline loop (agents/training.py `train_offline`), `ctx.steps` updates.

Presets: the DreamerV2 fields and the three stage fields of CoWorld's preset of the same name
(agents/coworld.py; `paper`: NeurIPS Table 8's shared model, 20k pretraining updates, prefill 2,500 DMC /
5,000 Meta-World, one update per 5 source steps). The papers do not state DV2 Finetune's own values.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from agents.coworld import CoWorldConfig, SourceDomain, domain_of
from agents.online import Replay
from agents.protocol import EvalResult
from agents.training import Checkpointer, MetricsLogger, TrainContext, TrainProgress, _summary, train_offline
from agents.world_model import DreamerConfig, with_overrides
from agents.world_model.agent import DreamerV2Agent
from collectors import envs
from collectors.envs.base import EnvSpec
from collectors.errors import OwbenchError


@dataclass(frozen=True)
class DV2FinetuneConfig(DreamerConfig):
    """DreamerV2's fields plus CoWorld's source-pretraining fields."""

    pretrain_steps: int = 20_000  # source updates before finetuning (CoWorld's pretraining; not in the papers)
    prefill: int = 2_500  # random-action source steps first (CoWorld released code: 2500 DMC, 5000 Meta-World)
    train_every: int = 5  # source environment steps per source update (CoWorld released code: 5)

    @classmethod
    def preset(cls, name: str, domain: str = "dmc", **overrides: Any) -> "DV2FinetuneConfig":
        """CoWorld's preset `name` for `domain` ("dmc" or "metaworld"), restricted to these fields."""
        coworld = CoWorldConfig.preset(name, domain=domain)
        config = cls(**{f.name: getattr(coworld, f.name) for f in dataclasses.fields(cls)})
        return with_overrides(config, overrides)


Config = DV2FinetuneConfig


def make_agent(spec: EnvSpec, config: DV2FinetuneConfig, device: str = "cpu", seed: int = 0) -> DreamerV2Agent:
    torch.manual_seed(seed)
    return DreamerV2Agent(spec.action_dim, config, device)


def pretrain(ctx: TrainContext, agent: DreamerV2Agent, cfg: DV2FinetuneConfig) -> None:
    """Stage 1 on `ctx.source_env_id`, resumable from run_dir/pretrain/checkpoints."""
    source = ctx.source_env_id
    folder = ctx.run_dir / "pretrain"
    checkpoints = Checkpointer(folder / "checkpoints")
    saved = checkpoints.load(agent)
    step = saved["step"] if saved else 0
    rng = np.random.default_rng(ctx.seed)
    if saved:
        rng.bit_generator.state = saved["replay_rng"]
    metrics = MetricsLogger(folder, min(ctx.log_every, max(cfg.pretrain_steps, 1)))
    metrics.csv.truncate_after(step if saved else -1)
    domain = SourceDomain(ctx.make_env(source), agent, Replay(ctx.run_dir / "source_buffers" / f"{source}.zarr",
                                                              source), seed=ctx.seed * 100)
    try:
        with TrainProgress(cfg.pretrain_steps, step, ctx.progress, f"dv2-finetune pretrain {source}") as bar:
            domain.interact(max(cfg.prefill - domain.replay.steps, 0), rng, random_actions=True)
            while step < cfg.pretrain_steps:
                update = domain.pretrain_update(rng, cfg.train_every, cfg.batch_size, cfg.seq_len)
                step += 1
                row = metrics.log(step, update, force=step == cfg.pretrain_steps)
                bar.update(step, _summary(row) if row else None)
                if ctx.checkpoint_every and step % ctx.checkpoint_every == 0 or step == cfg.pretrain_steps:
                    checkpoints.save(step, agent, replay_rng=rng.bit_generator.state)
    finally:
        metrics.close()
        domain.close()


def train(ctx: TrainContext) -> EvalResult:
    """Pretrain on the pair's source task online, then finetune offline on `ctx.datasets`; the evaluation
    (eval.csv, the returned result) is the finetuned agent on the target task, step = finetuning updates."""
    if ctx.source_env_id is None:
        raise OwbenchError("dv2-finetune needs an online source task; run it in a transfer suite "
                           "(dmc-transfer, metaworld-transfer) whose pairs name one")
    if envs.spec(ctx.source_env_id).action_dim != ctx.spec.action_dim:
        raise OwbenchError(f"source {ctx.source_env_id} and target {ctx.env_id} have different action dims; "
                           "DV2 Finetune reuses the whole agent, so pick a source of the same robot")
    finetune = Checkpointer(ctx.run_dir / "checkpoints")
    if not finetune.path.exists():  # stage 1, then its agent becomes the finetuning's starting checkpoint
        cfg = Config.preset(ctx.preset, domain=domain_of(ctx.spec), **ctx.overrides)
        agent = make_agent(ctx.spec, cfg, ctx.device, ctx.seed)
        pretrain(ctx, agent, cfg)
        finetune.save(0, agent)
    # stage 2 resumes from that checkpoint; it reads Config.preset(ctx.preset) of the default domain, whose
    # DreamerV2 fields equal the other domain's in every preset but CoWorld's `code` (reward_scale)
    return train_offline(ctx, sys.modules[__name__])
