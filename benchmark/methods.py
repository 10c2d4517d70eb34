"""Every method the harness can run, by name. A method module is imported only when used.

A method module exposes:
- `Config`: a frozen dataclass with `Config.preset(name: str, **overrides) -> Config`
  for the presets `smoke`, `quick`, `paper` (and others where the paper versions differ);
- `make_agent(spec: EnvSpec, config, device: str, seed: int) -> Agent` (agents/contract.py);
- optionally `train(ctx: agents.training.TrainContext) -> EvalResult` when the method needs
  more than the generic offline loop (online source agents, pretraining, fine-tuning).

Other packages add methods without editing owbench: an entry point in the `owbench.methods` group
names a `Method` (pyproject.toml: `[project.entry-points."owbench.methods"] mymethod = "mypkg.owb:METHOD"`).
Built-in names win over a plug-in of the same name.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import entry_points
from types import ModuleType

from collectors.errors import OwbenchError, unknown

ENTRY_POINT_GROUP = "owbench.methods"


@dataclass(frozen=True)
class Method:
    name: str
    module: str  # import path of the method module
    batch: str  # what update() consumes: "sequence" (B, T, ...), "transition" (B, ...) or "none"
    online: bool = False  # interacts with an environment while training
    description: str = ""

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)


METHODS: dict[str, Method] = {
    m.name: m
    for m in [
        Method("random", "baselines.random_policy", "none", description="uniform random actions"),
        Method("dreamerv2", "baselines.dreamerv2", "sequence", description="offline DreamerV2 (Hafner et al. 2021)"),
        Method("curl", "baselines.curl", "transition", description="CURL: contrastive SAC (Laskin et al. 2020)"),
        Method("cql", "baselines.cql", "transition", description="CQL on a pixel encoder (Kumar et al. 2020)"),
        Method("curl+cql", "baselines.curl_cql", "transition", description="CURL representation + CQL critic"),
        Method("lompo", "baselines.lompo", "sequence", description="LOMPO (Rafailov et al. 2021)"),
        Method("drq+bc", "baselines.drq_bc", "transition", description="DrQ+BC: DrQ-v2 + TD3+BC (V-D4RL, Lu et al.)"),
        Method("bc", "baselines.bc", "transition", description="behaviour cloning on the pixel encoder (V-D4RL)"),
        Method("offline-dv2", "baselines.offline_dv2", "sequence",
               description="V-D4RL's Offline DV2: DreamerV2 + ensemble-disagreement reward penalty"),
        Method("dv2-finetune", "baselines.dv2_finetune", "sequence", online=True,
               description="DreamerV2 pretrained online on the source task, finetuned offline (CoWorld)"),
        Method("coworld", "agents.coworld", "sequence", online=True, description="CoWorld (Wang et al.)"),
        Method("vid2act", "agents.vid2act", "sequence", online=True, description="Vid2Act (Pan et al.)"),
        Method("wpt", "agents.wpt", "sequence", online=True, description="WPT (Zhao et al.)"),
    ]
}


def plugin_methods() -> dict[str, Method]:
    """Methods registered by installed packages under the `owbench.methods` entry-point group."""
    out = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        method = ep.load()
        if not isinstance(method, Method):
            raise OwbenchError(f"entry point {ep.name} = {ep.value} of group {ENTRY_POINT_GROUP} must name a "
                               f"benchmark.methods.Method, not a {type(method).__name__}")
        out[method.name] = method
    return out


def all_methods() -> dict[str, Method]:
    """The built-in table and every plug-in method."""
    return {**plugin_methods(), **METHODS}


def get_method(name: str) -> Method:
    methods = METHODS if name in METHODS else all_methods()
    if name not in methods:
        raise unknown("method", name, methods, "see `owbench suites show NAME` for a suite's methods")
    return methods[name]
