"""Offline DV2: V-D4RL's offline DreamerV2 (Lu et al., TMLR 2023, offlinedv2/), on the shared world model.

DreamerV2 (agents/world_model) with an ensemble of K prior heads p_k(z_t | h_t) on the RSSM's deterministic
state, and imagined rewards penalised by the ensemble's disagreement (V-D4RL `offline_penalty_type meandis`):

    u(h) = 1/K sum_k || m_k(h) - 1/K sum_j m_j(h) ||_2,   m_k = mean of p_k (the class probabilities of the
                                                            32x32 categorical latents, flattened)
    r~(s) = r^(s) - lambda u(h)                             (V-D4RL agent.py `penalized_reward`)

Training runs in V-D4RL's two stages: `model_steps` world-model updates (DreamerV2 Eq. 2; every member is a
prior of the KL term, one member drawn per call: per update for the KL, per imagined step for rollouts), then
actor-critic updates in imagination on the frozen model with the penalised reward (Eqs. 4-6). With
`frozen_model=False` the model keeps learning beside the actor-critic in stage 2; `model_steps=0` with it is
joint training from the first update, as the plain offline DreamerV2 (baselines/dreamerv2.py, no penalty).

Presets (fields documented in `DreamerConfig` and below):
- `paper`: V-D4RL's command (README: `--configs dmc_vision --offline_penalty_type meandis --offline_lmbd 10`) on
  offlinedv2/dreamerv2/configs.yaml: ensemble 7, lambda 10, imagination horizon 5, batch 64 x 50, deter / hidden
  200, 32x32 discrete latents, model lr 3e-4, actor / critic lr 8e-5, entropy 1e-4, free nats 1, no discount
  head (`pred_discount: False`), 25,001 world-model updates (`offline_model_train_steps`) before the agent.
- `quick`: DreamerConfig's `quick` model with the paper's ensemble, lambda and horizon, trained jointly (departure,
  docs/fidelity/offline_dv2.md: at a CPU budget the actor-critic started on a trained frozen model collapses).
- `smoke`: seconds in tests (ensemble 3, one model update).
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from agents.contract import Batch, Metrics
from agents.world_model import DreamerConfig, WorldModel, WorldModelConfig, to_torch, with_overrides
from agents.world_model.agent import DreamerV2Agent
from agents.world_model.nets import Optimizer
from collectors.envs.base import EnvSpec
from collectors.errors import unknown


@dataclass(frozen=True)
class OfflineDV2Config(DreamerConfig):
    """DreamerV2's fields plus V-D4RL's offline ones."""

    ensemble: int = 7  # K prior heads (V-D4RL configs.yaml rssm.ensemble: 7)
    penalty_scale: float = 10.0  # lambda of r~ = r^ - lambda u (README --offline_lmbd 10; configs.yaml default 5)
    model_steps: int = 25_001  # world-model-only updates before the actor-critic (offline_model_train_steps)
    frozen_model: bool = True  # stage 2 leaves the model as stage 1 left it (V-D4RL); False keeps training it

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "OfflineDV2Config":
        """`smoke`, `quick`, `paper` (V-D4RL); overrides name any field (`penalty_scale=5`, `deter=64`)."""
        if name not in _PRESETS:
            raise unknown("preset", name, _PRESETS)
        base, values = _PRESETS[name]
        config = cls(**{f.name: getattr(base, f.name) for f in dataclasses.fields(DreamerConfig)}, **values)
        return with_overrides(config, overrides)


Config = OfflineDV2Config

_PRESETS: dict[str, tuple[DreamerConfig, dict[str, Any]]] = {
    "smoke": (DreamerConfig.preset("smoke"), dict(ensemble=3, model_steps=1)),
    # joint from the first update: at a CPU budget an actor-critic started on a trained, frozen model collapses
    "quick": (DreamerConfig.preset("quick", horizon=5),
              dict(ensemble=7, penalty_scale=10.0, model_steps=0, frozen_model=False)),
    # configs.yaml `defaults` + `dmc_vision` + the README's flags; the rest equals DreamerV2's DMC values
    "paper": (DreamerConfig.preset("paper", batch_size=64, seq_len=50, horizon=5, discount_head=False),
              dict(ensemble=7, penalty_scale=10.0, model_steps=25_001)),
}


class EnsemblePrior(nn.Module):
    """K copies of the RSSM's prior head (the first is the original), independently initialised. Called as the
    RSSM's `img_out`, it returns the statistics of one member drawn uniformly per call; as in V-D4RL's
    `img_step`, every member is computed and the others receive zero gradients (no host read of the draw)."""

    def __init__(self, head: nn.Module, members: int):
        super().__init__()
        copies = [copy.deepcopy(head) for _ in range(members - 1)]
        for c in copies:
            for m in c.modules():
                if isinstance(m, nn.Linear):
                    m.reset_parameters()
        self.members = nn.ModuleList([head, *copies])

    def forward(self, deter: Tensor) -> Tensor:
        pick = torch.randint(len(self.members), (1,), device=deter.device)
        return self.all(deter).index_select(0, pick)[0]

    def all(self, deter: Tensor) -> Tensor:
        """Statistics of every member, (K, ..., stats)."""
        return torch.stack([m(deter) for m in self.members])


class PenalisedWorldModel(WorldModel):
    """The shared world model with an ensemble prior; `reward` (read by imagination only) is penalised."""

    def __init__(self, cfg: WorldModelConfig, action_dim: int, channels_last: bool, members: int,
                 penalty_scale: float):
        super().__init__(cfg, action_dim, channels_last)
        self.rssm.img_out = EnsemblePrior(self.rssm.img_out, members)
        self.opt = Optimizer([self], cfg.lr, cfg.eps, cfg.weight_decay, cfg.grad_clip)  # with the new heads
        self.penalty_scale = penalty_scale

    def disagreement(self, feat: Tensor) -> Tensor:
        """u(h): mean L2 distance of the members' latent means from their average (V-D4RL `meandis`)."""
        rssm = self.rssm
        stats = rssm.img_out.all(feat[..., -self.cfg.deter:]).float()  # s = concat(z, h)
        if rssm.discrete:
            mean = stats.unflatten(-1, (self.cfg.stoch, self.cfg.classes)).softmax(-1).flatten(-2)
        else:
            mean = rssm.gaussian(stats)[0]
        return (mean - mean.mean(0)).norm(dim=-1).mean(0)

    def reward(self, feat: Tensor) -> Tensor:
        return super().reward(feat) - self.penalty_scale * self.disagreement(feat)  # V-D4RL penalized_reward


class OfflineDV2Agent(DreamerV2Agent):
    """The Dreamer agent on the penalised world model, trained in two stages."""

    def __init__(self, action_dim: int, config: OfflineDV2Config, device: str = "cpu"):
        super().__init__(action_dim, config, device)
        self.wm = PenalisedWorldModel(config.wm, action_dim, config.channels_last, config.ensemble,
                                      config.penalty_scale).to(self.device)
        self.updates = 0

    def update(self, batch: Batch) -> Metrics:
        data = to_torch(batch, self.device)
        stage2 = self.updates >= self.config.model_steps
        if stage2 and self.config.frozen_model:  # the frozen model only encodes the batch
            with torch.no_grad(), self.precision():
                post, _, _ = self.wm.observe(data)
            metrics: Metrics = {}
        else:  # stage 1, or a model that keeps learning: the world-model update (Eq. 2)
            with self.precision():
                model_loss, metrics, post = self.wm.loss(data)
            metrics["model_grad_norm"] = self.wm.opt.step(model_loss)
        if stage2:  # the actor-critic in imagination with penalised rewards (Eqs. 4-6)
            metrics.update(self.behavior.update(self.wm, post, data["discount"], self.precision))
        with torch.no_grad():
            metrics["data_disagreement"] = self.wm.disagreement(self.wm.rssm.feat(post)).mean()
        self.updates += 1
        return metrics

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.updates = int(state["updates"])


def make_agent(spec: EnvSpec, config: OfflineDV2Config, device: str = "cpu", seed: int = 0) -> OfflineDV2Agent:
    torch.manual_seed(seed)
    return OfflineDV2Agent(spec.action_dim, config, device)
