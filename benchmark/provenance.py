"""What a job is and what it ran with: its identity and the provenance record `config.json`.

A job's identity (method, resolved config, budget, datasets, seed) decides whether results in a run
directory answer the same question as the job requested now: only then is a finished job reused, and
only jobs of one identity (seed aside) share a table cell. `config.json` adds what explains a number
but does not define the question: library versions, the owbench commit, the device, each dataset's
commit record and content fingerprint.
"""
from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from benchmark.methods import get_method
from benchmark.overrides import method_config
from benchmark.suites import Job

CONFIG_NOTE = ("Config.preset(preset, **overrides) of the method; world-model methods (DreamerV2 online, CoWorld, "
               "Vid2Act, WPT) train at the budget's image_size")


def jsonable(value: Any) -> Any:
    """Plain JSON values (tuples as lists, dataclasses as dicts), so that stored and requested compare equal."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    return json.loads(json.dumps(value, default=str))


def resolved_config(job: Job) -> dict[str, Any]:
    """Every field of the job's method config after its preset and overrides. A preset that depends on the
    task's domain (CoWorld's Table 8 columns) gets the target's."""
    method, overrides = job.base
    config_cls = get_method(method).load().Config
    if "domain" in inspect.signature(config_cls.preset).parameters:
        from collectors.envs import spec

        overrides = {"domain": "metaworld" if spec(job.pair.target).suite == "metaworld" else "dmc", **overrides}
    return jsonable(method_config(method, job.config_preset, overrides))


def budget_record(job: Job) -> dict[str, Any]:
    """The budget fields that change a job's result (checkpoint spacing does not)."""
    b = job.budget
    return {"steps": b.steps_for(job.method), "eval_every": b.eval_every, "eval_episodes": b.eval_episodes,
            "image_size": b.image_size, "dataset_episodes": b.dataset_episodes,
            "max_episode_steps": b.max_episode_steps, "behaviour_train_steps": b.behaviour_train_steps,
            "variant": b.variant}


def identity(job: Job, datasets: list[str], config: dict[str, Any] | None = None) -> dict[str, Any]:
    """What defines a job's result; two jobs with equal identities answer the same question."""
    method, _ = job.base
    return jsonable({
        "suite": job.suite, "method": job.label, "base_method": method, "pair": job.pair.name, "seed": job.seed,
        "profile": job.profile, "preset": job.config_preset, "overrides": dict(job.overrides),
        "sweep": dict(job.sweep), "config": resolved_config(job) if config is None else config,
        "budget": budget_record(job), "datasets": datasets, "scratch": job.scratch,
    })


def differences(stored: dict[str, Any], requested: dict[str, Any], limit: int = 3) -> list[str]:
    """`key: stored -> requested` for the (first few) fields where two identities differ."""
    def flat(tree: Any, prefix: str = "") -> dict[str, Any]:
        if isinstance(tree, dict):
            return {k: v for key, sub in tree.items() for k, v in flat(sub, f"{prefix}{key}.").items()}
        return {prefix.rstrip("."): tree}

    a, b = flat(stored), flat(requested)
    keys = [k for k in dict.fromkeys([*a, *b]) if a.get(k, "missing") != b.get(k, "missing")]
    return [f"{k}: {a.get(k, 'missing')} -> {b.get(k, 'missing')}" for k in keys[:limit]]


def software() -> dict[str, Any]:
    """owbench's version and git commit (when run from a checkout), Python and the libraries that shape results."""
    from collectors.collect import package_versions  # lazy: collection imports the simulators

    return {"owbench_commit": git_commit(), "python": platform.python_version(), "platform": platform.platform(),
            "libraries": package_versions()}


def git_commit() -> str:
    """HEAD of the checkout owbench runs from (`+dirty` with uncommitted changes), or "" outside one."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return ""
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


def dataset_record(location: str) -> dict[str, Any]:
    """A dataset's commit record, return statistics and a content fingerprint (sha256 over the manifest's
    chunk checksums and the commit record, so it changes with any committed byte)."""
    from collectors import store

    ds = store.open_dataset(location)
    digest = hashlib.sha256(json.dumps([ds.n_episodes, ds.n_steps, ds.attrs.get("tail_crc", {})],
                                       sort_keys=True).encode())
    for name, array in ds.arrays.items():
        chunks = -(-ds.n_steps // array.chunks[0])  # the manifest entries of committed rows
        digest.update(name.encode())
        digest.update(ds.group[f"manifest/{name}"][:chunks].tobytes())
    return {"location": location, "env_id": ds.attrs.get("env_id"), "quality": ds.attrs.get("quality"),
            "image_size": ds.attrs.get("image_size"), "episodes": ds.n_episodes, "steps": ds.n_steps,
            "returns": store.return_stats(ds), "fingerprint": digest.hexdigest()}


def config_record(job: Job, datasets: list[str], device: str, env: dict[str, Any]) -> dict[str, Any]:
    """The whole of config.json but the device the worker resolves."""
    config = resolved_config(job)
    return {"identity": identity(job, datasets, config), "config_note": CONFIG_NOTE, "device": device,
            "software": env, "datasets": [dataset_record(loc) for loc in datasets]}
