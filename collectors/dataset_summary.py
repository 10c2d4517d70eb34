"""What made a dataset and how big it is (`owbench datasets info`, docs/fidelity.md's datasets section): the
behaviour agent, its environment steps and the dataset's size; return statistics are `store.return_stats`."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import fsspec

from collectors import store


def behaviour_agent(attrs: dict[str, Any]) -> str:
    """`dreamerv2` or `sac` (trained agents), `scripted` (Meta-World's expert), `random`, or a `+` mix of them."""
    if "behaviour_agent" in attrs:  # recorded by --behaviour dreamerv2
        return attrs["behaviour_agent"]
    texts = " ".join(info.get("description", "") for info in attrs.get("behaviour", {}).values()).lower()
    agents = [name for name in ("sac", "scripted", "random") if name in texts]
    return "+".join(agents) or "unknown"


def size_bytes(location: str) -> int:
    """Bytes the dataset's files take (local folder or fsspec URL)."""
    if "://" not in location:
        return sum(f.stat().st_size for f in Path(location).rglob("*") if f.is_file())
    fs, path = fsspec.core.url_to_fs(location)
    return int(fs.du(path))


def summary(ds: store.Dataset) -> dict[str, Any]:
    """Behaviour agent, its environment steps (training steps x action repeat of its longest-trained policy), the
    dataset's episodes, transitions and size (return statistics: `store.return_stats`)."""
    kinds = ds.attrs.get("behaviour", {})
    repeat = int(ds.attrs.get("action_repeat", 1))
    trained = [info.get("env_steps", info["train_steps"] * repeat) for info in kinds.values() if "train_steps" in info]
    return {"behaviour agent": behaviour_agent(ds.attrs),
            "behaviour env steps": max(trained) if trained else None,  # medium-expert: the expert's run passes medium
            "episodes": ds.n_episodes, "transitions": ds.n_steps - ds.n_episodes,
            "size MiB": size_bytes(ds.location) / 2**20}
