"""CURL+CQL: CURL's contrastive representation with CQL's conservative critic (CoWorld's baseline column).

Per update: the CQL critic loss (TD + log-sum-exp penalty, baselines/cql.py, Kumar et al. 2020 Eq. 4),
the SAC actor / temperature step, then CURL's InfoNCE step on the critic encoder against its
momentum copy (baselines/curl.py, Laskin et al. 2020 Eq. 1-2). CoWorld does not publish the
hyperparameters of this baseline; presets combine the two papers' settings.

Presets (fields documented in `ModelFreeConfig`, `CURLConfig`, `CQLConfig`):
- `paper`: CURL's representation and SAC settings (random crop 84 from 100 px, batch 512, lr 1e-3,
  encoder tau 0.05, 1-step returns) + V-D4RL's CQL penalty (weight 1, T 1, 10 actions, no Lagrange).
- `quick`: a CPU machine: 64-px frames, random shift, batch 128, hidden 256.
- `smoke`: seconds in tests.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from baselines import cql, curl
from baselines.cql import ConservativeCritic, CQLConfig
from baselines.curl import ContrastiveRepresentation, CURLConfig
from baselines.modelfree import SACAgent, seed_torch
from collectors.envs.base import EnvSpec


@dataclass(frozen=True)
class CURLCQLConfig(CQLConfig, CURLConfig):
    """All fields of CURL and CQL."""

    PRESETS: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": {**curl.SMOKE, **cql.SMOKE},
        "quick": dict(curl.SMALL, cql_weight=5.0),  # `owbench check curl+cql`'s setting
        "paper": curl.CURL_PAPER,
    }


Config = CURLCQLConfig


class CURLCQLAgent(ConservativeCritic, ContrastiveRepresentation, SACAgent):
    """SAC with CQL's critic penalty and CURL's contrastive encoder update."""


def make_agent(spec: EnvSpec, config: CURLCQLConfig, device: str = "cpu", seed: int = 0) -> CURLCQLAgent:
    seed_torch(seed)
    return CURLCQLAgent(spec.action_dim, config, device)
