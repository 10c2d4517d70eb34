"""One prepared check of owbench on a GPU (GitHub issues 19 item 5 and 21), run by `scripts/gpu_check.sh`.

Sections, each in its own child process with its own time limit, so a failure, a crash or a hang is
recorded and the others still run:
- smoke-suite: `owbench run --suite smoke` for every method on the device;
- updates: every method's `update()` at the `paper` preset, bf16 autocast on and off where its config has
  the switch for the device (`amp` on CUDA, `cpu_amp` on a CPU; the dtype `agents.devices.amp_dtype` then
  picks is recorded), seconds per update and peak GPU memory;
- sync: one `paper` update of CoWorld, DreamerV2, CQL, LOMPO and WPT under
  `torch.cuda.set_sync_debug_mode("warn")`, bf16 autocast and TF32 on and off: host syncs counted, updates/s,
  peak memory;
- checkpoint: an agent checkpointed on the device (`agents.training.Checkpointer`), reloaded on the CPU and
  back, one update after each reload;
- sweep-ray / sweep-local: a 2-job smoke sweep with `--executor ray --device auto` and with
  `--executor local --workers 2`; what each job recorded of its CUDA_VISIBLE_DEVICES, device and GL renderer;
- projection: hours per job of every suite's `paper` profile from the timed updates and the budgets.

There are no `torch.compile` variants: issue 21 (item 7) removed the option from every config, because
the compiled RSSM cells recompiled past the limit (training batch vs acting batch of 1, grad vs no-grad,
float32 vs bfloat16 state) and fell back to eager silently, CoWorld registered a new hook on its compiled
encoder every update, and CoWorld and Vid2Act replaced the behaviour module after compiling (the actor-critic
in use was never compiled).

Writes `gpu_check.json` and `gpu_check.md` (tables for docs/performance.md) into the output folder after
every section. The `tiny` preset (`--device cpu --tiny`) runs the same code at the `smoke` presets with
one timed update: the CPU path CI runs (tests/benchmark/test_gpu_check.py).

    python -m benchmark.gpu_check --out gpu-check            # on a GPU: at most the 450 s of section limits
    python -m benchmark.gpu_check --device cpu --tiny --out /tmp/gc
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

SECTIONS = ("smoke-suite", "updates", "sync", "checkpoint", "sweep-ray", "sweep-local", "projection")
SYNC_METHODS = ("coworld", "dreamerv2", "cql", "lompo", "wpt")  # issue 21's list
JOB_FIELDS = re.compile(r"CUDA_VISIBLE_DEVICES|MUJOCO_EGL_DEVICE_ID|render|device", re.IGNORECASE)
OWBENCH = (sys.executable, "-m", "datasets_cli.main")  # the CLI, as `owbench` runs it


@dataclass(frozen=True)
class GpuCheckConfig:
    """What the check runs, per section; presets `gpu` (one GPU, under 8 minutes) and `tiny` (CPU, CI)."""

    device: str = "cuda"
    method_preset: str = "paper"  # method preset of the updates, sync and checkpoint sections
    methods: tuple[str, ...] = ("dreamerv2", "curl", "cql", "curl+cql", "lompo", "coworld", "vid2act", "wpt")
    sync_methods: tuple[str, ...] = SYNC_METHODS
    warmup: int = 1  # untimed updates before the timed ones (lazy state, cuDNN autotuning)
    iters: int = 5  # timed updates per method and variant
    suite: str = "smoke"  # the smoke-suite section's suite (every method), and the sweeps'
    suite_methods: tuple[str, ...] = ()  # () = all of the suite's methods
    suite_pairs: tuple[str, ...] = ()  # () = all of the suite's pairs
    suite_workers: int = 6
    sweep_methods: tuple[str, ...] = ("dreamerv2",)  # 2 jobs: one pair, 2 seeds
    sweep_pair: str = "walker_downhill"
    owbench: tuple[str, ...] = OWBENCH  # command prefix that runs the owbench CLI
    limits: dict[str, int] = field(default_factory=lambda: {  # seconds per section; 450 s in all
        "smoke-suite": 170, "updates": 110, "sync": 50, "checkpoint": 25, "sweep-ray": 45, "sweep-local": 40,
        "projection": 10})

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "GpuCheckConfig":
        from collectors.errors import unknown

        presets = {
            "gpu": cls(),
            "tiny": cls(device="cpu", method_preset="smoke", iters=1, suite_methods=("random",),
                        suite_pairs=("walker_downhill",), suite_workers=1, sweep_methods=("random",),
                        limits={s: 120 for s in SECTIONS}),
        }
        if name not in presets:
            raise unknown("gpu check preset", name, presets)
        return replace(presets[name], **overrides)


# ---------------------------------------------------------------- helpers

class Recorder:
    """A section's results, rewritten to its JSON file after every item (a killed section keeps them)."""

    def __init__(self, path: Path):
        self.path, self.rows = path, []

    def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.rows, indent=1, default=str))
        os.replace(tmp, self.path)


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"[:300]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_mib(device: str) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None


def precision_switch(config: Any, device: str) -> str | None:
    """Dotted path of the config field that turns bf16 autocast on or off on `device`, as the method passes it
    to `agents.devices.autocast`: `amp` on CUDA, the `cpu_amp` beside it on a CPU; None where the config has
    no switch for the device (CURL, CQL and LOMPO autocast on CUDA only)."""
    from benchmark.perf_wm import field_path

    amp = field_path(config, "amp")
    if amp is None or device.startswith("cuda"):
        return amp
    cpu = amp.removesuffix("amp") + "cpu_amp"
    return cpu if field_path(config, "cpu_amp") == cpu else None


def variants(config: Any, device: str) -> list[dict[str, bool]]:
    """bf16 autocast on and off where the config has the switch for `device`, and with it off, the conv
    stacks alone in bf16 (`conv_amp`) on and off where the config has that field; else one empty variant
    (the preset as it is)."""
    from benchmark.perf_wm import field_path

    if not precision_switch(config, device):
        return [{}]
    if field_path(config, "conv_amp") is None:
        return [{"bf16": True}, {"bf16": False}]
    return [{"bf16": True}, {"bf16": False, "conv_bf16": True}, {"bf16": False, "conv_bf16": False}]


def switch_overrides(config: Any, switches: dict[str, bool], device: str) -> dict[str, bool]:
    """Config overrides (dotted paths) of a variant: `bf16` sets the config's `precision_switch` for `device`,
    `conv_bf16` its `conv_amp`."""
    from benchmark.perf_wm import field_path

    out = {precision_switch(config, device): switches["bf16"]} if "bf16" in switches else {}
    return {**out, field_path(config, "conv_amp"): switches["conv_bf16"]} if "conv_bf16" in switches else out


def autocast_dtype(config: Any, device: str) -> str:
    """The dtype a config's updates autocast to on `device` (`agents.devices.amp_dtype` with the config's
    `amp` and `cpu_amp`): bfloat16 only where it is native, else float32."""
    from agents.devices import amp_dtype
    from benchmark.perf_wm import field_path

    amp, cpu = field_path(config, "amp"), precision_switch(config, "cpu")
    dtype = amp_dtype(device, bool(cpu and getattr_path(config, cpu))) if amp and getattr_path(config, amp) else None
    return "float32" if dtype is None else str(dtype).removeprefix("torch.")


def config_of(method: str, preset: str) -> Any:
    from benchmark.methods import get_method

    return get_method(method).load().Config.preset(preset)


def build(method: str, preset: str, device: str, switches: dict[str, bool], seed: int = 0) -> tuple[Any, Any, str]:
    """(agent, config, batch kind) of a registered method at `preset` with a variant's switches applied."""
    from agents.world_model import with_overrides
    from benchmark.methods import get_method
    from collectors.envs import spec

    m = get_method(method)
    config = config_of(method, preset)
    config = with_overrides(config, switch_overrides(config, switches, device))
    return m.load().make_agent(spec("walker_walk"), config, device, seed), config, m.batch


def device_batch(kind: str, config: Any, device: str, seed: int = 0) -> dict[str, Any]:
    """A synthetic batch already on `device` (a host-to-device copy is not the update's)."""
    import numpy as np
    import torch

    from benchmark.perf_wm import synthetic_batch

    batch = synthetic_batch(kind, config, rng=np.random.default_rng(seed))
    return {k: torch.as_tensor(v, device=device) for k, v in batch.items()}


def timed_updates(agent: Any, batch: dict[str, Any], device: str, n: int) -> list[float]:
    """Seconds of each of `n` updates, the device synchronised around each."""
    out = []
    for _ in range(n):
        _sync(device)
        start = time.perf_counter()
        agent.update(batch)
        _sync(device)
        out.append(time.perf_counter() - start)
    return out


@contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TF32 matmuls and convolutions on or off for the duration (`agents.devices.set_tf32`; CUDA's, harmless
    elsewhere)."""
    import torch

    from agents.devices import set_tf32

    saved = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    set_tf32(enabled)
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(saved[0])
        torch.backends.cudnn.allow_tf32 = saved[1]


@contextmanager
def counting_syncs(device: str) -> Iterator[list[str]]:
    """Messages of the host syncs CUDA's sync debug mode warns about inside the block (CUDA only)."""
    import torch

    caught: list[str] = []
    if not device.startswith("cuda"):
        yield caught
        return
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:
            yield caught
        finally:
            torch.cuda.set_sync_debug_mode("default")
    caught += [str(w.message) for w in records if "synchroniz" in str(w.message).lower()]


# ---------------------------------------------------------------- sections

def section_updates(cfg: GpuCheckConfig, rec: Recorder) -> None:
    """Seconds per `update()` of every method at cfg.method_preset, per precision variant, with the numeric
    settings a job on the device gets (`agents.devices.configure`: TF32 on CUDA)."""
    import torch

    from agents.devices import configure

    configure(cfg.device)
    for method in cfg.methods:
        try:
            config = config_of(method, cfg.method_preset)
            todo = variants(config, cfg.device)
        except Exception as exc:  # noqa: BLE001 - recorded, the others continue
            rec.add({"method": method, "variant": {}, "error": _error(exc)})
            continue
        for switches in todo:
            overrides = switch_overrides(config, switches, cfg.device)
            row: dict[str, Any] = {"method": method, "variant": switches, "overrides": overrides,
                                   "is_preset": all(getattr_path(config, k) == v for k, v in overrides.items()),
                                   "preset": cfg.method_preset, "device": cfg.device,
                                   "matmul_precision": torch.get_float32_matmul_precision()}
            try:
                row.update(_time_variant(cfg, method, switches))
            except Exception as exc:  # noqa: BLE001 - an OOM is a result
                row.update(error=_error(exc), traceback=traceback.format_exc(limit=-3))
            _free(cfg.device)
            rec.add(row)


def _time_variant(cfg: GpuCheckConfig, method: str, switches: dict[str, bool]) -> dict[str, Any]:
    """Warm-up and timed updates of one variant (the agent is freed when this returns)."""
    import numpy as np

    _reset_peak(cfg.device)
    agent, config, kind = build(method, cfg.method_preset, cfg.device, switches)
    batch = device_batch(kind, config, cfg.device)
    first = timed_updates(agent, batch, cfg.device, max(cfg.warmup, 1))
    median = float(np.median(timed_updates(agent, batch, cfg.device, cfg.iters)))
    return {"seconds_per_update": median, "updates_per_s": 1 / median, "first_update_s": first[0],
            "autocast": autocast_dtype(config, cfg.device), "peak_mib": _peak_mib(cfg.device), "iters": cfg.iters}


def _free(device: str) -> None:
    import gc

    import torch

    gc.collect()
    if device.startswith("cuda"):
        torch.cuda.empty_cache()


def section_sync(cfg: GpuCheckConfig, rec: Recorder) -> None:
    """Host syncs per update under sync debug mode, bf16 autocast and TF32 on and off."""
    for method in cfg.sync_methods:
        try:
            has_bf16 = precision_switch(config_of(method, cfg.method_preset), cfg.device) is not None
        except Exception as exc:  # noqa: BLE001
            rec.add({"method": method, "amp": None, "tf32": None, "error": _error(exc)})
            continue
        for bf16 in (False, True) if has_bf16 else (None,):
            for tf32_on in (False, True) if cfg.device.startswith("cuda") else (False,):  # TF32 is CUDA's
                row: dict[str, Any] = {"method": method, "amp": bf16, "tf32": tf32_on, "device": cfg.device}
                try:
                    row.update(_count_syncs(cfg, method, {} if bf16 is None else {"bf16": bf16}, tf32_on))
                except Exception as exc:  # noqa: BLE001
                    row["error"] = _error(exc)
                _free(cfg.device)
                rec.add(row)


def _count_syncs(cfg: GpuCheckConfig, method: str, switches: dict[str, bool], tf32_on: bool) -> dict[str, Any]:
    """One warm-up update, then one update with its host syncs counted (the timing syncs stay outside)."""
    _reset_peak(cfg.device)
    agent, config, kind = build(method, cfg.method_preset, cfg.device, switches)
    batch = device_batch(kind, config, cfg.device)
    with tf32(tf32_on):
        timed_updates(agent, batch, cfg.device, 1)  # warm-up: lazy state, first-call syncs
        _sync(cfg.device)
        start = time.perf_counter()
        with counting_syncs(cfg.device) as syncs:
            agent.update(batch)
        _sync(cfg.device)
        seconds = time.perf_counter() - start
    return {"syncs": len(syncs) if cfg.device.startswith("cuda") else None, "sync_messages": sorted(set(syncs))[:3],
            "autocast": autocast_dtype(config, cfg.device), "updates_per_s": 1 / seconds,
            "peak_mib": _peak_mib(cfg.device)}


def section_checkpoint(cfg: GpuCheckConfig, rec: Recorder) -> None:
    """Checkpoint a DreamerV2 agent on the device, reload it on the CPU and on the device; update after each."""
    import torch

    from agents.training import Checkpointer

    with tempfile.TemporaryDirectory(prefix="owbench-gpu-check-") as tmp:
        steps: list[tuple[str, Callable[[], dict[str, Any]]]] = []
        state: dict[str, Any] = {}

        def save() -> dict[str, Any]:
            agent, config, kind = build("dreamerv2", cfg.method_preset, cfg.device, {})
            agent.update(device_batch(kind, config, cfg.device))
            Checkpointer(Path(tmp)).save(1, agent)
            state.update(agent=agent, config=config, kind=kind)
            return {"bytes": (Path(tmp) / "latest.pt").stat().st_size}

        def reload(device: str) -> dict[str, Any]:
            agent, config, kind = build("dreamerv2", cfg.method_preset, device, {}, seed=1)
            Checkpointer(Path(tmp)).load(agent)  # to the CPU first, then into the agent on `device`
            saved = {k: v.detach().cpu() for k, v in state["agent"].state_dict().items() if torch.is_tensor(v)}
            loaded = {k: v for k, v in agent.state_dict().items() if torch.is_tensor(v)}
            equal = all(torch.equal(saved[k], loaded[k].detach().cpu()) for k in saved if k in loaded)
            places = sorted({str(v.device) for v in _tensors(agent.state_dict())})
            batch = device_batch(kind, config, device)
            with counting_syncs(device) as syncs:
                agent.update(batch)
            return {"weights_equal": equal, "state_devices": places, "update_after_reload": "ok",
                    "host_syncs_in_that_update": len(syncs) if device.startswith("cuda") else None}

        steps += [(f"save on {cfg.device}", save), ("reload on cpu", lambda: reload("cpu"))]
        if cfg.device != "cpu":
            steps.append((f"reload on {cfg.device}", lambda: reload(cfg.device)))
        for name, step in steps:
            try:
                rec.add({"step": name, **step()})
            except Exception as exc:  # noqa: BLE001
                rec.add({"step": name, "error": _error(exc), "traceback": traceback.format_exc(limit=-3)})
                if name.startswith("save"):
                    return


def _tensors(tree: Any) -> Iterator[Any]:
    import torch

    if torch.is_tensor(tree):
        yield tree
    elif isinstance(tree, dict):
        for v in tree.values():
            yield from _tensors(v)
    elif isinstance(tree, (list, tuple)):
        for v in tree:
            yield from _tensors(v)


def run_limited(cmd: list[str], limit: float, **env: str) -> tuple[int | str, str]:
    """(exit code or "timeout", stdout + stderr) of `cmd` in its own process group, which is killed
    whole (Ray, worker processes) when it runs past `limit` seconds."""
    root = str(Path(__file__).resolve().parents[1])
    path = os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH", "")) if p)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONPATH": path, **env})
    try:
        output, _ = proc.communicate(timeout=limit)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        return "timeout", output


def owbench_run(cfg: GpuCheckConfig, out: Path, args: list[str], limit: float) -> dict[str, Any]:
    """`owbench run ARGS --out OUT` in a child process (datasets in OUT/../home); exit code and the summary line."""
    cmd = [*cfg.owbench, "run", "--suite", cfg.suite, "--profile", "smoke", *args, "--out", str(out)]
    started = time.perf_counter()
    rc, output = run_limited(cmd, limit, OWBENCH_HOME=str(out.parent / "home"))
    summary = [line for line in output.splitlines() if line.startswith("jobs:")]
    return {"command": " ".join(cmd[len(cfg.owbench):]), "exit_code": rc, "wall_s": round(time.perf_counter() - started, 1),
            "summary": summary[-1] if summary else output.strip().splitlines()[-3:]}


def job_records(out: Path) -> list[dict[str, Any]]:
    """What each job of a run directory recorded of its placement: result.json's device / CUDA / GL fields
    and job.log lines naming CUDA_VISIBLE_DEVICES, MUJOCO_EGL_DEVICE_ID, the renderer or the device."""
    rows = []
    for log in sorted(out.rglob("job.log")):
        run_dir = log.parent
        result = run_dir / "result.json"
        record = json.loads(result.read_text()) if result.exists() else {}
        placement = {k: v for k, v in record.items() if JOB_FIELDS.search(k) or re.search(r"cuda|gl_|egl", k, re.I)}
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if JOB_FIELDS.search(line)]
        recorded = {"CUDA_VISIBLE_DEVICES": "cuda_visible" in " ".join([*placement, *lines]).lower(),
                    "GL renderer": bool((record.get("render") or {}).get("renderer"))}  # runner._render_check's
        missing = [name for name, ok in recorded.items() if not ok]
        rows.append({"job": str(run_dir.relative_to(out)), "done": result.exists(), "result": placement,
                     "log_lines": lines[:6], "not_recorded": missing})
    return rows


def section_smoke_suite(cfg: GpuCheckConfig, rec: Recorder, out: Path) -> None:
    args = ["--seeds", "1", "--device", cfg.device, "--workers", str(cfg.suite_workers)]
    args += ["--methods", ",".join(cfg.suite_methods)] if cfg.suite_methods else []
    args += ["--pairs", ",".join(cfg.suite_pairs)] if cfg.suite_pairs else []
    rec.add(owbench_run(cfg, out / "runs" / "smoke-suite", args, cfg.limits["smoke-suite"] - 5))
    for row in job_records(out / "runs" / "smoke-suite"):
        rec.add(row)


def section_sweep(cfg: GpuCheckConfig, rec: Recorder, out: Path, executor: str) -> None:
    args = ["--methods", ",".join(cfg.sweep_methods), "--pairs", cfg.sweep_pair, "--seeds", "2", "--steps", "2", "--device",
            "auto" if executor == "ray" or cfg.device != "cpu" else "cpu", "--executor", executor, "--workers", "2"]
    run_dir = out / "runs" / f"sweep-{executor}"
    rec.add(owbench_run(cfg, run_dir, args, cfg.limits[f"sweep-{executor}"] - 5))
    for row in job_records(run_dir):
        rec.add(row)


def section_projection(cfg: GpuCheckConfig, rec: Recorder, out: Path) -> None:
    """Hours per job of every suite's `paper` profile: budget updates x seconds per update measured by the
    updates section (the preset's own switches, and the fastest variant measured)."""
    from benchmark.suites import SUITES, base_method, plan

    updates = _load(out, "updates")
    timed: dict[str, dict[str, float]] = {}
    for row in updates:
        if "seconds_per_update" not in row:
            continue
        entry = timed.setdefault(row["method"], {})
        entry["fastest"] = min(entry.get("fastest", float("inf")), row["seconds_per_update"])
        if row["is_preset"]:
            entry["preset"] = row["seconds_per_update"]
    for suite in SUITES.values():
        if "paper" not in suite.budgets:
            continue
        jobs = plan(suite.name, "paper")
        for method in suite.methods:
            base = base_method(method)[0]
            mine = [j for j in jobs if j.method == method]
            steps = suite.budgets["paper"].steps_for(method)
            row: dict[str, Any] = {"suite": suite.name, "method": method, "updates_per_job": steps, "jobs": len(mine)}
            pretrain = _pretrain_steps(base, cfg.method_preset)
            if pretrain:
                row["pretrain_updates_not_costed"] = pretrain
            if base in timed:
                for key, seconds in timed[base].items():
                    row[f"hours_per_job_{key}"] = steps * seconds / 3600
                    row[f"gpu_hours_suite_{key}"] = len(mine) * steps * seconds / 3600
            else:
                row["note"] = "no update timed" if get_method_batch(base) != "none" else "evaluation only"
            rec.add(row)


def getattr_path(config: Any, path: str) -> Any:
    for key in path.split("."):
        config = getattr(config, key)
    return config


def get_method_batch(name: str) -> str:
    from benchmark.methods import get_method

    return get_method(name).batch


def _pretrain_steps(method: str, preset: str) -> int:
    """Pretraining updates a method's config runs before its budgeted updates (Vid2Act, WPT, CoWorld)."""
    from benchmark.perf_wm import field_path

    if get_method_batch(method) == "none":
        return 0
    config = config_of(method, preset)
    path = field_path(config, "pretrain_steps")
    return int(getattr_path(config, path)) if path else 0


def _load(out: Path, section: str) -> list[dict[str, Any]]:
    path = out / "sections" / f"{section}.json"
    return json.loads(path.read_text()) if path.exists() else []


def run_section(name: str, cfg: GpuCheckConfig, out: Path) -> None:
    """Run one section in this process, its rows to out/sections/NAME.json."""
    rec = Recorder(out / "sections" / f"{name}.json")
    rec.path.parent.mkdir(parents=True, exist_ok=True)
    if name == "updates":
        section_updates(cfg, rec)
    elif name == "sync":
        section_sync(cfg, rec)
    elif name == "checkpoint":
        section_checkpoint(cfg, rec)
    elif name == "smoke-suite":
        section_smoke_suite(cfg, rec, out)
    elif name in ("sweep-ray", "sweep-local"):
        section_sweep(cfg, rec, out, name.removeprefix("sweep-"))
    else:
        section_projection(cfg, rec, out)


# ---------------------------------------------------------------- driver

def machine() -> dict[str, Any]:
    import torch

    info: dict[str, Any] = {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
                            "load_average": os.getloadavg(), "cuda_available": torch.cuda.is_available(),
                            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                    gpu_count=torch.cuda.device_count(), bf16_supported=torch.cuda.is_bf16_supported(),
                    cuda=torch.version.cuda, capability=f"{props.major}.{props.minor}")
    try:
        from collectors.envs.render import gl_info

        info["gl"] = gl_info()
    except Exception as exc:  # noqa: BLE001
        info["gl"] = _error(exc)
    return info


def run_check(cfg: GpuCheckConfig, out: Path, sections: tuple[str, ...] = SECTIONS,
              say: Callable[[str], None] = print) -> dict[str, Any]:
    """Every section in its own child process under its time limit; JSON and Markdown after each."""
    from agents.contract import resolve_device

    cfg = replace(cfg, device=resolve_device(cfg.device))
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(asdict(cfg), indent=1))
    report: dict[str, Any] = {"machine": machine(), "config": asdict(cfg), "sections": {}}
    for name in sections:
        started = time.perf_counter()
        say(f"== {name} (limit {cfg.limits[name]} s)")
        rc, output = run_limited([sys.executable, "-m", "benchmark.gpu_check", "--section", name, "--out", str(out)],
                                 cfg.limits[name])
        status = "ok" if rc == 0 else f"stopped at its {cfg.limits[name]} s limit (rows so far kept)" \
            if rc == "timeout" else f"failed (exit {rc}): " + " | ".join(output.strip().splitlines()[-3:])
        report["sections"][name] = {"status": status, "wall_s": round(time.perf_counter() - started, 1),
                                    "rows": _load(out, name)}
        say(f"   {status}, {report['sections'][name]['wall_s']} s, {len(report['sections'][name]['rows'])} rows")
        write_report(report, out)
    return report


def write_report(report: dict[str, Any], out: Path) -> None:
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    (out / "gpu_check.md").write_text(markdown(report))


def _num(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.{digits}g}"
    return str(value)


def _variant(switches: dict[str, bool] | str) -> str:
    if not isinstance(switches, dict) or not switches:
        return "preset (no bf16 switch on this device)"
    return ", ".join(f"{k} {'on' if v else 'off'}" for k, v in switches.items())


def markdown(report: dict[str, Any]) -> str:
    """The report as Markdown tables (docs/performance.md)."""
    m, sections = report["machine"], report["sections"]
    lines = [f"Machine: {m.get('gpu', 'no GPU')}, {m['cpus']} CPUs, torch {m['torch']}, GL "
             f"{m['gl'].get('renderer') if isinstance(m['gl'], dict) else m['gl']}; started {m['started']}, device "
             f"{report['config']['device']}, method preset {report['config']['method_preset']}.", ""]
    lines += ["| section | status | wall s |", "|---|---|---:|"]
    lines += [f"| {name} | {s['status']} | {s['wall_s']} |" for name, s in sections.items()]
    rows = sections.get("updates", {}).get("rows", [])
    if rows:
        lines += ["", "| method | variant | autocast dtype | s/update | updates/s | peak MiB | error |",
                  "|---|---|---|---:|---:|---:|---|"]
        lines += [f"| {r['method']} | {_variant(r['variant'])} | {r.get('autocast', '-')} | "
                  f"{_num(r.get('seconds_per_update'))} | {_num(r.get('updates_per_s'))} | {_num(r.get('peak_mib'))} | "
                  f"{r.get('error', '')} |" for r in rows]
    rows = sections.get("sync", {}).get("rows", [])
    if rows:
        lines += ["", "| method | bf16 autocast | autocast dtype | TF32 | host syncs per update | updates/s | peak MiB | "
                  "error |", "|---|---|---|---|---:|---:|---:|---|"]
        lines += [f"| {r['method']} | {'no switch' if r['amp'] is None else 'on' if r['amp'] else 'off'} | "
                  f"{r.get('autocast', '-')} | "
                  f"{'on' if r['tf32'] else 'off'} | {_num(r.get('syncs'))} | {_num(r.get('updates_per_s'))} | "
                  f"{_num(r.get('peak_mib'))} | {r.get('error', '')} |" for r in rows]
    rows = sections.get("checkpoint", {}).get("rows", [])
    if rows:
        lines += ["", "| checkpoint step | result |", "|---|---|"]
        lines += [f"| {r['step']} | {r.get('error') or ', '.join(f'{k} {v}' for k, v in r.items() if k != 'step')} |"
                  for r in rows]
    for name in ("smoke-suite", "sweep-ray", "sweep-local"):
        rows = sections.get(name, {}).get("rows", [])
        if rows:
            head, jobs = rows[0], rows[1:]
            lines += ["", f"{name}: `owbench {head['command']}` -> exit {head['exit_code']}, {head['wall_s']} s, "
                          f"{head['summary']}", "", "| job | done | result.json placement | job.log lines | not recorded by the job |",
                      "|---|---|---|---|---|"]
            lines += [f"| {j['job']} | {j['done']} | {json.dumps(j['result'])} | {'<br>'.join(j['log_lines'])} | "
                      f"{', '.join(j['not_recorded'])} |" for j in jobs]
    rows = sections.get("projection", {}).get("rows", [])
    if rows:
        cfg = report["config"]
        lines += ["", f"Projection: each suite's `paper` budget (updates per job) x the seconds per update measured above "
                      f"at the `{cfg['method_preset']}` preset on {cfg['device']}; evaluation, data collection, online "
                      "environment steps and pretraining updates not included.", "",
                  "| suite | method | updates/job | jobs | h/job (preset) | h/job (fastest) | device-h suite (preset) | "
                  "pretraining updates not costed |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        lines += [f"| {r['suite']} | {r['method']} | {r['updates_per_job']:,} | {r['jobs']} | "
                  f"{_num(r.get('hours_per_job_preset'))} | {_num(r.get('hours_per_job_fastest'))} | "
                  f"{_num(r.get('gpu_hours_suite_preset'))} | {r.get('pretrain_updates_not_costed', '') or r.get('note', '')} |"
                  for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-check", help="output folder [$OUT or ./gpu-check]")
    parser.add_argument("--device", default=None, help="auto, cpu or cuda[:N] [the preset's: cuda, tiny: cpu]")
    parser.add_argument("--tiny", action="store_true", help="smoke presets, one timed update: the CPU path of CI")
    parser.add_argument("--only", default=",".join(SECTIONS), help="comma-separated sections")
    parser.add_argument("--section", default=None, help=argparse.SUPPRESS)  # a child: one section, config from --out
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.section:
        config = json.loads((out / "config.json").read_text())
        cfg = GpuCheckConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()})
        run_section(args.section, cfg, out)
        return
    from collectors.errors import OwbenchError, unknown

    sections = tuple(s.strip() for s in args.only.split(",") if s.strip())
    try:
        for s in sections:
            if s not in SECTIONS:
                raise unknown("gpu check section", s, SECTIONS, f"choose from {', '.join(SECTIONS)}")
        cfg = GpuCheckConfig.preset("tiny" if args.tiny else "gpu")
        report = run_check(replace(cfg, device=args.device or cfg.device), out, sections)
    except OwbenchError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    failed = [n for n, s in report["sections"].items() if s["status"] != "ok"]
    print(f"wrote {out / 'gpu_check.json'} and {out / 'gpu_check.md'}; sections not ok: {', '.join(failed) or 'none'}")


if __name__ == "__main__":
    main()
