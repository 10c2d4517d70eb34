"""The shared world model (RSSM) and imagination actor-critic used by every world-model method."""
from agents.world_model.behavior import ActorCritic, lambda_return
from agents.world_model.config import BehaviorConfig, DreamerConfig, WorldModelConfig, with_overrides
from agents.world_model.rssm import RSSM, State
from agents.world_model.world_model import WorldModel, autocast, to_torch

__all__ = ["RSSM", "ActorCritic", "BehaviorConfig", "DreamerConfig", "State", "WorldModel", "WorldModelConfig",
           "autocast", "lambda_return", "to_torch", "with_overrides"]
