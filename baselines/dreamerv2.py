"""Offline DreamerV2 (Hafner et al. 2021): the shared Dreamer agent (agents/world_model/agent.py) trained on a
fixed dataset only; the environment is used for evaluation alone.
Learning check (CPU, ~30 min on a busy 2-core machine): `python -m benchmark.dreamer_check`.
"""
from __future__ import annotations

import torch

from agents.world_model import DreamerConfig
from agents.world_model.agent import DreamerV2Agent
from collectors.envs.base import EnvSpec

Config = DreamerConfig


def make_agent(spec: EnvSpec, config: DreamerConfig, device: str = "cpu", seed: int = 0) -> DreamerV2Agent:
    torch.manual_seed(seed)
    return DreamerV2Agent(spec.action_dim, config, device)
