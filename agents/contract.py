"""The agent contract every method implements (DESIGN.md §2), so the harness treats them alike.

A batch is a dict of numpy arrays or torch tensors with a leading (B, T) for sequence methods
or (B,) for transition methods, using the dataset's row convention: row t holds o_t, the action
a_{t-1} that led to it (zeros where `is_first`), the reward r_t received with it and `discount`.
Keys: image uint8 (..., H, W, 3), action float32 (..., A), reward, discount float32 (...),
is_first / is_last / is_terminal bool (...), and state float32 (..., S) where present.
"""
from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
from torch import Tensor

from agents.devices import resolve_device

__all__ = ["Agent", "Batch", "Metrics", "Obs", "resolve_device"]

Batch = dict[str, Any]
Obs = dict[str, np.ndarray]
# What `update` returns: detached 0-d tensors, left where they were computed (a GPU) so that an update
# never waits for the device; the training loop's MetricsLogger reads them once per logging interval.
Metrics = dict[str, Tensor]


@runtime_checkable
class Agent(Protocol):
    """What the harness, the evaluation protocol and the contract test rely on."""

    def update(self, batch: Batch) -> Metrics:
        """One training step on `batch`; returns detached scalar metrics as 0-d tensors (no host sync)."""
        ...

    def act(self, obs: Obs, state: Any = None, eval_mode: bool = False) -> tuple[np.ndarray, Any]:
        """Action in [-1, 1]^A for one unbatched observation. `state=None` starts an episode;
        the returned state (RSSM latent, frame stack, ...) is passed back on the next call.
        In eval mode the action is deterministic."""
        ...

    def state_dict(self) -> dict[str, Any]:
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ...
