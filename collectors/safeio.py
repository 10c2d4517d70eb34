"""Loading tensor files safely: `torch.load(..., weights_only=True)` only, never pickled code.

A file owbench reads may come from outside the process that wrote it (a downloaded artefact, a dataset's
`.policy/` folder, a path on the command line), so it is unpickled with torch's restricted loader: tensors,
containers and plain values (the configs and metadata are JSON-like values beside the tensors). A file that
holds anything else, crafted or written by an older owbench, is refused with a one-line error.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import IO, Any

import torch

from collectors.errors import OwbenchError


def load_tensors(source: str | Path | IO[bytes], what: str, fix: str, map_location: Any = "cpu") -> Any:
    """`torch.load(source, weights_only=True)`; `what` names the file in errors, `fix` says how to replace it."""
    try:
        return torch.load(source, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, ImportError) as exc:
        reason = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise OwbenchError(f"{what} is not a plain tensor file that owbench loads safely ({reason}); "
                           f"owbench never runs pickled code: {fix}") from exc
