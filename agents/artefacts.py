"""Pretraining artefacts (Vid2Act's teacher, WPT's world model): keyed, locked, written atomically."""
from __future__ import annotations

import fcntl
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from collectors.home import owbench_home


def artefact_key(record: dict[str, Any]) -> str:
    """A short hash of everything that determines the artefact (data, sizes, budget, seed)."""
    return hashlib.sha1(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()[:12]


@contextmanager
def pretrained_artefact(kind: str, record: dict[str, Any], filename: str,
                        out: Path | str | None = None) -> Iterator[tuple[Path, bool]]:
    """Yield `(path, ready)` for `$OWBENCH_HOME/pretrained/<kind>/<key>/<filename>` (or `out/<filename>`)
    while holding an exclusive lock, so parallel jobs pretrain a given artefact once."""
    folder = Path(out) if out else owbench_home() / "pretrained" / kind / artefact_key(record)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / filename
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield path, path.exists()


def save_atomic(obj: Any, path: Path) -> None:
    """torch.save to a temporary file, then rename: a reader never sees half an artefact."""
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)
