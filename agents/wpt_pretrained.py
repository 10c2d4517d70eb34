"""A pretrained WPT world model on disk: what `owbench pretrain wpt` writes and what WPT fine-tuning and the
retrieval index's `wpt:` encoder read (kept apart from agents/wpt.py so retrieval does not import the method)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from agents.world_model import WorldModel, WorldModelConfig
from collectors.errors import OwbenchError
from collectors.safeio import load_tensors


@dataclass
class Pretrained:
    """A pretrained generalist world model and the pool it saw."""

    wm: WorldModel
    action_pad: int
    pool: list[str]
    pool_env_ids: list[str]
    path: Path


def load_pretrained(path: str | Path, device: str | torch.device = "cpu") -> Pretrained:
    if not Path(path).is_file():
        raise OwbenchError(f"no WPT world model at {path}; create it with `owbench pretrain wpt --pool ...`")
    saved = load_tensors(path, f"WPT world model {path}",
                         "re-create it with `owbench pretrain wpt --pool ...` or give a file it wrote")
    cfg = WorldModelConfig(**{**saved["wm_config"], "extra_heads": ()})
    wm = WorldModel(cfg, saved["action_pad"])
    wm.load_state_dict(saved["state"])
    return Pretrained(wm.to(device), saved["action_pad"], saved["pool"], saved["pool_env_ids"], Path(path))
