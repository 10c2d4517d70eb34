"""One registry for every task id: DMC `<domain>_<task>`, CoWorld transfer tasks, Meta-World `mw_<task>`."""
from __future__ import annotations

import functools
from typing import Any

from collectors.envs.base import Env, EnvSpec
from collectors.errors import unknown

SUITES = ("dmc", "transfer", "metaworld")


@functools.cache
def _ids() -> dict[str, str]:
    """id -> suite, without building any environment."""
    from collectors.envs import dmc, metaworld, transfer

    ids = {env_id: "dmc" for env_id in dmc.dmc_task_ids()}
    ids.update({env_id: "transfer" for env_id in transfer.TRANSFER_TASKS})
    ids.update({f"mw_{t}": "metaworld" for t in metaworld.task_names()})
    return ids


def canonical_id(env_id: str) -> str:
    """Resolve aliases (`metaworld_<task>` -> `mw_<task>`, `-v3` suffix) and validate."""
    if env_id.startswith("metaworld_"):
        env_id = "mw_" + env_id.removeprefix("metaworld_")
    env_id = env_id.removesuffix("-v3")
    if env_id not in _ids():
        raise unknown("environment", env_id, _ids(), "run `owbench envs` to list them")
    return env_id


def list_ids(suite: str | None = None) -> list[str]:
    if suite is not None and suite not in SUITES:
        raise unknown("suite", suite, SUITES)
    return sorted(i for i, s in _ids().items() if suite in (None, s))


@functools.cache
def spec(env_id: str) -> EnvSpec:
    """The static description of a task."""
    from collectors.envs import dmc, metaworld, transfer

    env_id = canonical_id(env_id)
    suite = _ids()[env_id]
    if suite == "dmc":
        return dmc.dmc_spec(env_id, *dmc.dmc_task_ids()[env_id])
    if suite == "transfer":
        return transfer.transfer_spec(env_id)
    return metaworld.metaworld_spec(env_id, env_id.removeprefix("mw_"))


def make(env_id: str, image_size: int = 64, camera: str | int | None = None, fast_render: bool = False,
         **kwargs: Any) -> Env:
    """Build a task. `camera=None` uses the suite's default (DMC 0, quadruped 2, Meta-World corner)."""
    from collectors.envs import dmc, metaworld, transfer

    s = spec(env_id)
    opts = dict(image_size=image_size, camera=camera, fast_render=fast_render, **kwargs)
    if s.suite == "dmc":
        return dmc.make_dmc(s, *dmc.dmc_task_ids()[s.id], **opts)
    if s.suite == "transfer":
        return transfer.make_transfer(s, **opts)
    return metaworld.MetaWorldEnv(s, s.id.removeprefix("mw_"), **opts)


def scripted_expert(env_id: str):
    """Meta-World's scripted expert for a task, or an error for tasks that have none."""
    from collectors.envs import metaworld
    from collectors.errors import OwbenchError

    s = spec(env_id)
    if s.suite != "metaworld":
        raise OwbenchError(f"{s.id} has no scripted expert; only Meta-World tasks (mw_*) do")
    return metaworld.scripted_policy(s.id.removeprefix("mw_"))
