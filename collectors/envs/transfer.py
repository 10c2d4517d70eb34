"""CoWorld's transfer targets, built from dm_control's shipped XML transformed in memory.

The table below is what CoWorld's released code does (it edits walker.xml / cheetah.xml). The
paper describes walker_nofoot / cheetah_nopaw as tasks where a limb "cannot be controlled"; the
released code instead shrinks the foot/paw geom to 0.001 and keeps its actuator. We follow the
code, which produced the published numbers. Nothing under site-packages is written.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lxml import etree

from collectors.envs.base import EnvSpec
from collectors.envs.dmc import ACTION_REPEAT, TIME_LIMIT, DMCEnv, dmc_spec
from dm_control.rl import control
from dm_control.suite import cheetah, walker

DOWNHILL_GRAVITY = "2.54 0 -9.47"  # 9.81 m/s^2 tilted by 15 degrees
UPHILL_GRAVITY = "-2.54 0 -9.47"


@dataclass(frozen=True)
class TransferTask:
    """One modified model: gravity, floor length, camera orientation, shrunken geom."""

    base: str  # "walker" or "cheetah"
    gravity: str | None = None
    floor_length: float | None = None
    camera_euler: str | None = None
    shrink_geom: str | None = None
    description: str = ""


TRANSFER_TASKS: dict[str, TransferTask] = {
    "walker_downhill": TransferTask("walker", DOWNHILL_GRAVITY, 1000, "60 0 15", None, "walker walk on a 15 deg downhill"),
    "walker_uphill": TransferTask("walker", UPHILL_GRAVITY, 1000, "60 0 -15", None, "walker walk on a 15 deg uphill"),
    "walker_nofoot": TransferTask("walker", None, 1000, None, "right_foot", "walker walk, right foot geom shrunk to 0.001"),
    "cheetah_downhill": TransferTask("cheetah", DOWNHILL_GRAVITY, 1000, "90 0 15", None, "cheetah run on a 15 deg downhill"),
    "cheetah_uphill": TransferTask("cheetah", UPHILL_GRAVITY, None, "90 0 -15", None, "cheetah run on a 15 deg uphill"),
    "cheetah_nopaw": TransferTask("cheetah", None, 1000, None, "ffoot", "cheetah run, front paw geom shrunk to 0.001"),
}
_FLOOR = {"walker": "floor", "cheetah": "ground"}
_BASE_TASK = {"walker": "walker_walk", "cheetah": "cheetah_run"}


def transformed_xml(task: TransferTask) -> tuple[bytes, dict[str, Any]]:
    """The stock model's XML with the task's changes applied, and its assets."""
    module = walker if task.base == "walker" else cheetah
    xml, assets = module.get_model_and_assets()
    root = etree.fromstring(xml)
    if task.gravity is not None:
        option = root.find("option")
        if option is None:
            option = etree.SubElement(root, "option")
        option.set("gravity", task.gravity)
    if task.floor_length is not None:
        floor = root.find(f".//geom[@name='{_FLOOR[task.base]}']")
        size = floor.get("size").split()
        size[0] = f"{task.floor_length:g}"
        floor.set("size", " ".join(size))
    if task.camera_euler is not None:
        camera = root.find(".//camera[@name='side']")
        camera.attrib.pop("quat", None)
        camera.set("euler", task.camera_euler)
    if task.shrink_geom is not None:
        geom = root.find(f".//geom[@name='{task.shrink_geom}']")
        geom.set("size", "0.001 0.001")
    return etree.tostring(root), assets


def _build(task: TransferTask, seed: int) -> control.Environment:
    xml, assets = transformed_xml(task)
    if task.base == "walker":
        physics = walker.Physics.from_xml_string(xml, assets)
        rl_task = walker.PlanarWalker(move_speed=walker._WALK_SPEED, random=seed)
        timestep = walker._CONTROL_TIMESTEP
        time_limit = walker._DEFAULT_TIME_LIMIT
    else:
        physics = cheetah.Physics.from_xml_string(xml, assets)
        rl_task = cheetah.Cheetah(random=seed)
        timestep = None
        time_limit = cheetah._DEFAULT_TIME_LIMIT
    kwargs = {"control_timestep": timestep} if timestep else {}
    return control.Environment(physics, rl_task, time_limit=time_limit, **kwargs)


def transfer_spec(env_id: str) -> EnvSpec:
    task = TRANSFER_TASKS[env_id]
    base = _BASE_TASK[task.base]
    stock = dmc_spec(base, *base.split("_"))
    return EnvSpec(
        id=env_id,
        suite="transfer",
        action_dim=stock.action_dim,
        state_dim=stock.state_dim,
        action_repeat=ACTION_REPEAT,
        time_limit=TIME_LIMIT,
        camera=0,
        description=f"CoWorld transfer: {task.description}",
        base_task=base,
    )


def make_transfer(spec: EnvSpec, **kwargs: Any) -> DMCEnv:
    task = TRANSFER_TASKS[spec.id]
    return DMCEnv(spec, lambda seed: _build(task, seed), **kwargs)
