"""Run a suite's jobs: collect missing datasets, then execute jobs locally (spawned processes) or on Ray.

Each job (suite, method, pair, seed) owns `<out>/<suite>/<method>/<source>__<target>/seed<k>/`:
`config.json` (the job's identity and provenance, written before it starts), `job.log` (everything the
job printed), the training loop's `checkpoints/`, `metrics.csv`, `eval.csv`, and, written atomically
last, `final_frames.npz` and `result.json`, which mark the job done.
A re-run skips done jobs of the same identity, and re-starts unfinished ones, whose training loop
resumes from `checkpoints/latest.pt`. A job folder of another identity (another budget, config or
dataset) is never reused: the run stops, or with `rerun_stale` moves it to `<out>/.stale/` first.
One `owbench run` at a time writes to a run directory (a lock on `<out>/.owbench-run.lock`).
A failed job is reported with its log and does not stop the others.

Devices (agents/devices.py): the driver resolves `--device` before anything runs. On GPUs every job
gets one GPU of its own: locally each worker process sees one GPU (`CUDA_VISIBLE_DEVICES`, round-robin
over the visible GPUs, one per running job; `MUJOCO_EGL_DEVICE_ID` names the same GPU for rendering),
and `--workers` defaults to the number of GPUs; on Ray each task requests one GPU and uses the one Ray
assigns it.
"""
from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import multiprocessing as mp
import multiprocessing.connection
import os
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmark import provenance
from benchmark.methods import Method, get_method
from benchmark.rundir import CONFIG, ERROR, FRAMES, LOG, RESULT, RESULT_GLOB
from benchmark.suites import Budget, DataNeed, Job, datasets_needed
from collectors.errors import OwbenchError, unknown

EXECUTORS = ("local", "ray")
LOCK, STALE = ".owbench-run.lock", ".stale"


def job_dir(out: Path, job: Job) -> Path:
    return Path(out) / job.suite / job.label / job.pair.name / f"seed{job.seed}"


def job_identity(job: Job) -> dict[str, Any]:
    """The identity a job's folder must hold to be reused (provenance.identity at its dataset locations)."""
    return provenance.identity(job, [dataset_location(n, job.budget) for n in job.data])


def stored_identity(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / CONFIG
    return json.loads(path.read_text()).get("identity") if path.exists() else None


def job_state(out: Path, job: Job, identity: dict[str, Any] | None = None) -> str:
    """`done` (result.json written), `partial` (started before, will resume), `new`, or `stale`: the folder
    holds a job of another identity (or of an owbench that wrote no config.json), never reused."""
    run_dir = job_dir(out, job)
    if not run_dir.exists():
        return "new"
    if stored_identity(run_dir) != (job_identity(job) if identity is None else identity):
        return "stale"
    return "done" if (run_dir / RESULT).exists() else "partial"


@contextlib.contextmanager
def out_lock(out: Path) -> Iterator[None]:
    """Hold `<out>/.owbench-run.lock` (an flock, released when the process ends, however it ends): a second
    run into the same directory stops with a one-line error instead of running the same jobs twice."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / LOCK, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise OwbenchError(f"{out} is being written by another owbench run ({holder}); wait for it to end "
                               "or pass another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def check_profiles(out: Path, jobs: list[Job]) -> None:
    """One profile per suite folder: a report covers one budget (a quick job beside smoke jobs is refused
    before anything runs, not when the report is built)."""
    for suite, profile in {(j.suite, j.profile) for j in jobs}:
        for path in sorted((Path(out) / suite).glob(RESULT_GLOB)):
            other = json.loads(path.read_text()).get("profile")
            if other != profile:
                raise OwbenchError(f"{out / suite} holds {other!r} results ({path.parent}); use --profile {other} "
                                   f"or another --out for profile {profile!r}")


def check_identities(out: Path, jobs: list[Job], identities: dict[str, dict[str, Any]], rerun_stale: bool) -> None:
    """Stop when a job's folder holds another identity; with `rerun_stale` move those folders to
    `<out>/.stale/<time>/` (nothing is deleted) so that the jobs run again from scratch."""
    stale = [j for j in jobs if job_state(out, j, identities[j.key]) == "stale"]
    if not stale:
        return
    if not rerun_stale:
        first = stale[0]
        stored = stored_identity(job_dir(out, first))
        why = "; ".join(provenance.differences(stored, identities[first.key])) if stored else \
            "it has no config.json (written by an older owbench)"
        raise OwbenchError(f"{len(stale)} job folder(s) in {out} hold results of another run, e.g. {first.key} "
                           f"({why}); pass another --out, or --rerun-stale to move them to {out / STALE} "
                           "and run them again")
    aside = Path(out) / STALE / time.strftime("%Y%m%d-%H%M%S")
    for job in stale:
        target = aside / job_dir(out, job).relative_to(out)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(job_dir(out, job), target)


def write_atomic(path: Path, write: Callable[[Any], None], mode: str = "w") -> None:
    """Write through a temporary file in the same folder, then os.replace: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, mode) as f:
        write(f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


# -- datasets ------------------------------------------------------------------------------------

def dataset_location(need: DataNeed, budget: Budget) -> str:
    """Where the dataset of `need` at this budget lives: the user's (--dataset), or its place in the
    dataset home (collected or not)."""
    from collectors import collect, store

    if need.location:
        return store.resolve_location(need.location)
    return store.resolve_location(collect.dataset_id(need.env_id, need.quality, need.variant(budget.variant),
                                                     budget.image_size))


def check_user_datasets(jobs: list[Job]) -> None:
    """Every --dataset exists and holds episodes of the target it was given for."""
    from collectors import store

    for need in datasets_needed(jobs):
        if not need.location:
            continue
        loc = store.resolve_location(need.location)
        if not store.exists(loc):
            raise OwbenchError(f"--dataset {need.env_id}={need.location}: no dataset at {loc}; import it with "
                               "`owbench datasets import FILE --env ENV` or list them with `owbench datasets list`")
        env_id = store.open_dataset(loc).env_id
        if env_id != need.env_id:
            raise OwbenchError(f"--dataset {need.env_id}={need.location} holds episodes of {env_id}, not "
                               f"{need.env_id}; pass it as --dataset {env_id}=... or import it with --env {need.env_id}")


def missing_datasets(jobs: list[Job]) -> list[tuple[DataNeed, str]]:
    """(need, location) for every dataset to collect that has no committed episode yet."""
    from collectors import store

    budgets = _budgets(jobs)
    locations = [(need, dataset_location(need, budgets[need])) for need in budgets if not need.location]
    return [(need, loc) for need, loc in locations if not store.exists(loc)]


def collect_command(need: DataNeed, b: Budget, location: str) -> str:
    """The `owbench collect` command that makes the same dataset as the runner would."""
    flags = [("--episodes", need.episodes or b.dataset_episodes), ("--max-episode-steps", b.max_episode_steps),
             ("--max-train-steps", b.behaviour_train_steps),
             ("--image-size", b.image_size if b.image_size != 64 else None),
             ("--sac-preset", "smoke" if b.variant == "smoke" else None)]
    if need.behaviour == "dreamerv2":  # trains to its level's mark; the cap is its own flag
        from collectors.qualities import get_quality

        replay = get_quality(need.quality).replay
        flags = [("--behaviour", "dreamerv2"), ("--behaviour-steps", b.behaviour_train_steps),
                 ("--episodes", None if replay else b.dataset_episodes),
                 ("--max-episode-steps", b.max_episode_steps),
                 ("--image-size", b.image_size if b.image_size != 64 else None),
                 ("--behaviour-preset", "smoke" if b.variant == "smoke" else None)]
    extra = "".join(f" {flag} {value}" for flag, value in flags if value is not None)
    return f"owbench collect --env {need.env_id} --quality {need.quality}{extra} --out {location}"


def _budgets(jobs: list[Job]) -> dict[DataNeed, Budget]:
    """Each dataset the jobs read with the budget (size) of the first job that reads it."""
    return {need: next(j.budget for j in jobs if need in j.data) for need in datasets_needed(jobs)}


def prepare_datasets(jobs: list[Job], collect: bool = True, workers: int = 1,
                     say: Callable[[str], None] = lambda line: None) -> dict[DataNeed, str]:
    """Collect (or resume collecting) every dataset the jobs read; returns need -> location."""
    missing = missing_datasets(jobs)
    budgets = _budgets(jobs)
    if missing and not collect:
        need, loc = missing[0]
        raise OwbenchError(f"{len(missing)} dataset(s) missing, e.g. {need.env_id} {need.quality}; collect with "
                           f"`{collect_command(need, budgets[need], loc)}` or drop --no-collect")
    from agents.behaviour import ensure_dreamerv2_dataset
    from collectors.collect import ensure_dataset

    for need, loc in missing:
        say(f"collecting {need.env_id} {need.quality} -> {loc}")
    made = {need: ensure_dreamerv2_dataset(need.env_id, need.quality, variant=b.variant, image_size=b.image_size,
                                           max_episode_steps=b.max_episode_steps, episodes=b.dataset_episodes,
                                           behaviour_steps=b.behaviour_train_steps)
            for need, b in budgets.items() if not need.location and need.behaviour == "dreamerv2"}
    return made | {need: dataset_location(need, b) if need.location else
                   ensure_dataset(need.env_id, need.quality, episodes=need.episodes or b.dataset_episodes,
                                  image_size=b.image_size, variant=need.variant(b.variant), workers=workers,
                                  max_episode_steps=b.max_episode_steps, max_train_steps=b.behaviour_train_steps)
                   for need, b in budgets.items() if need not in made}


# -- one job (runs inside a worker process) ------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """A job with what the worker needs besides it: the method, its folder, the device as the job's process
    sees it (`cuda` is the one GPU the executor gave it; see agents/devices.py), dataset locations."""

    job: Job
    method: Method
    run_dir: str
    device: str
    datasets: tuple[str, ...]
    record: dict[str, Any] = field(default_factory=dict)  # config.json; the worker adds the resolved device
    tensorboard: bool = False  # also log metrics for TensorBoard


@contextlib.contextmanager
def _log_to(path: Path) -> Iterator[None]:
    """Send this process's stdout/stderr (Python and C level) to `path` for the duration."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(path, "a", buffering=1) as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _reference_returns(datasets: tuple[str, ...], job: Job) -> dict[str, float]:
    """Reference returns (random, expert) for normalised scores: the target dataset's, or, for a target
    learned online or a dataset imported without them, the task's entry in collectors/reference.py."""
    from collectors.reference import reference_returns
    from collectors.store import open_dataset

    for need, loc in zip(job.data, datasets):
        if need.role == "target" and "reference_returns" in open_dataset(loc).attrs:
            return open_dataset(loc).attrs["reference_returns"]
    return reference_returns(job.pair.target).as_attrs()


def _train(task: Task, device: str) -> tuple[Any, int]:
    """Train (or only evaluate) one job; returns the final EvalResult with frames and the updates made."""
    from agents import training
    from agents.protocol import evaluate

    job, b = task.job, task.job.budget
    module = task.method.load()
    method, overrides = job.base
    ctx = training.TrainContext(
        method=method, batch=task.method.batch, env_id=job.pair.target, source_env_id=job.pair.sources[0] if job.online_source else None,
        datasets=list(task.datasets), run_dir=Path(task.run_dir), preset=job.config_preset,
        steps=b.steps_for(job.method), eval_every=b.eval_every, eval_episodes=b.eval_episodes,
        checkpoint_every=b.checkpoint_every, seed=job.seed, device=device, image_size=b.image_size,
        overrides=dict(overrides), tensorboard=task.tensorboard)
    if job.scratch:  # the online from-scratch baseline of an online-target suite
        from agents.online import train_from_scratch

        return train_from_scratch(ctx, module), ctx.steps
    if hasattr(module, "train"):
        return module.train(ctx), ctx.steps
    if task.method.batch == "none":  # nothing to learn (random policy): evaluation only
        agent = module.make_agent(ctx.spec, ctx.config(module), device, job.seed)
        result = evaluate(agent, ctx.make_env, ctx.eval_episodes, job.seed, record_frames=True)
        training.log_eval(ctx.run_dir, 0, result)
        return result, 0
    return training.train_offline(ctx, module), ctx.steps


def _render_check(datasets: tuple[str, ...], job: Job) -> dict[str, str]:
    """The GL backend and renderer of this job's evaluation; warns in the job's log when the target dataset
    was rendered by another renderer (NVIDIA EGL and Mesa llvmpipe can draw slightly different pixels)."""
    from collectors.envs import gl_info
    from collectors.store import open_dataset

    try:
        info = dict(gl_info())
    except OwbenchError as exc:  # no GL here: recorded as such (a job that evaluated had one)
        return {"error": str(exc)}
    for need, loc in zip(job.data, datasets):
        recorded = open_dataset(loc).attrs.get("render", {}).get("renderer") if need.role == "target" else None
        if recorded and recorded != info["renderer"]:
            print(f"== warning: evaluation renders with {info['renderer']!r} but {loc} was rendered with "
                  f"{recorded!r}; pixels may differ slightly between them")
    return info


def run_job(task: Task) -> str:
    """Run one job with its output in job.log; write final_frames.npz then result.json. Returns the status."""
    job, run_dir = task.job, Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / ERROR).unlink(missing_ok=True)  # an earlier attempt's error (owbench wrote it)
    start = time.time()
    with _log_to(run_dir / LOG):
        gpu = {k: os.environ[k] for k in ("CUDA_VISIBLE_DEVICES", "MUJOCO_EGL_DEVICE_ID") if k in os.environ}
        print(f"== {job.key} ({job.profile} profile, {job.config_preset} preset) started "
              f"{time.strftime('%Y-%m-%d %H:%M:%S')} on pid {os.getpid()} "
              f"(device {task.device}" + "".join(f", {k}={v}" for k, v in gpu.items()) + ")")
        try:
            from agents.devices import use_device

            device = use_device(task.device)  # the GPU the executor gave this process must be visible
            if task.record:
                write_atomic(run_dir / CONFIG, lambda f: json.dump({**task.record, "device": device}, f, indent=1))
            result, steps = _train(task, device)
            if result.frames is not None:
                write_atomic(run_dir / FRAMES, lambda f: np.savez_compressed(f, frames=result.frames), "wb")
            record = {
                "suite": job.suite, "profile": job.profile, "method": job.label, "base_method": job.base[0],
                "preset": job.config_preset, "sweep": dict(job.sweep), "source": job.pair.source,
                "sources": list(job.pair.sources), "target": job.pair.target, "seed": job.seed,
                "steps": steps, "eval_episodes": job.budget.eval_episodes,
                "device": device, **gpu, "render": _render_check(task.datasets, job), "datasets": list(task.datasets),
                "reference_returns": _reference_returns(task.datasets, job),
                "returns": [float(r) for r in result.returns], "successes": [bool(s) for s in result.successes],
                "lengths": [int(n) for n in result.lengths], "eval_seeds": [int(s) for s in result.seeds],
                "wall_s": round(time.time() - start, 2), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            write_atomic(run_dir / RESULT, lambda f: json.dump(record, f, indent=1))
            print(f"== done: mean return {np.mean(result.returns):.1f} over {len(result.returns)} episodes")
            return "done"
        except OwbenchError as exc:  # the user's to fix (corrupt dataset, bad setting): one line for the driver
            message = str(exc)
            print(f"== failed: {message}")
            write_atomic(run_dir / ERROR, lambda f: f.write(message))
            return "failed"
        except BaseException:  # noqa: BLE001 - any failure is the job's, reported via its log
            traceback.print_exc()
            print("== failed")
            return "failed"


def exit_with_parent() -> None:
    """In a spawned worker: end this process within a second of its parent's death (a SIGTERM or SIGKILL
    the parent cannot pass on), so that no orphan keeps training and writing into the run's folder."""
    parent = os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch_parent, daemon=True).start()


def _worker_main(task: Task, env: dict[str, str]) -> None:
    """Entry point of a spawned worker: take its GPU (`env`, before CUDA or EGL start), run the job, exit
    if the sweep process dies."""
    os.environ.update(env)
    exit_with_parent()
    sys.exit(0 if run_job(task) == "done" else 1)


# -- executors -----------------------------------------------------------------------------------

class LocalExecutor:
    """A pool of worker processes started with `spawn` (a GL context must not cross a fork), one per job.
    On a GPU `device` worker slot i computes and renders on GPU i mod n of the run's n GPUs (`job_gpus`):
    each running job has a GPU of its own while there are at least as many GPUs as workers."""

    def __init__(self, device: str, workers: int | None = None):
        from agents.devices import default_workers, job_gpus

        self.device, self.gpus, self.workers = device, job_gpus(device), workers or default_workers(device)
        self._ctx = mp.get_context("spawn")
        self._slots: dict[Any, int] = {}  # running process -> its worker slot

    def env(self, slot: int) -> dict[str, str]:
        """The environment of worker slot `slot`: its GPU (nothing on CPU)."""
        from agents.devices import gpu_env

        return gpu_env(self.gpus[slot % len(self.gpus)]) if self.gpus else {}

    def submit(self, task: Task) -> Any:
        slot = min(set(range(len(self._slots) + 1)) - set(self._slots.values()))  # the lowest free slot
        proc = self._ctx.Process(target=_worker_main, args=(task, self.env(slot)), name=task.job.key)
        proc.start()
        self._slots[proc] = slot
        return proc

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """Handles of finished jobs, waiting up to `timeout` for the first one."""
        mp.connection.wait([p.sentinel for p in handles], timeout)
        done = [p for p in handles if p.exitcode is not None]
        for p in done:
            p.join()
            self._slots.pop(p, None)
        return done

    def close(self, handles: list[Any]) -> None:
        for p in handles:
            p.terminate()
            p.join()
            self._slots.pop(p, None)

    def shutdown(self) -> None:
        """Nothing to release: every worker process has ended by now."""


def _ray_job(task: Task) -> str:
    """A Ray task: render on the GPU Ray assigned (it set `CUDA_VISIBLE_DEVICES` itself), then run the job."""
    from agents.devices import ray_task_env

    os.environ.update(ray_task_env())
    return run_job(task)


class RayExecutor:
    """The same tasks as Ray tasks: one CPU each, and one GPU each on a GPU `device` (the task uses the GPU
    Ray assigns it; a fresh worker process per GPU task, so that CUDA and EGL start on that GPU). `out` must
    be on a filesystem every node sees. A local Ray gets `workers` CPUs (default: one per GPU on a GPU
    device, else one); on a cluster, as many jobs run as it has GPUs (GPU device) or CPUs.
    `device`: as given; `auto` resolves against the cluster's GPUs, `cuda:N` is refused (Ray picks GPUs)."""

    def __init__(self, workers: int | None, address: str | None, device: str):
        from agents.devices import default_workers, parse_device, resolve_device

        if parse_device(device)[1] is not None:
            raise OwbenchError(f"--device {device} pins one GPU, but Ray gives each task a GPU of its own; "
                               "use --device cuda (or auto) with --executor ray")
        try:
            import ray
        except ImportError as exc:
            raise OwbenchError("--executor ray needs Ray: pip install 'owbench[ray]'") from exc
        self.ray = ray
        if address is None:  # a local Ray: resolved against this machine's GPUs before Ray starts
            self.device = resolve_device(device)
            self.workers = workers or default_workers(self.device)
        self._started = not ray.is_initialized()
        if self._started:
            opts = {"num_cpus": self.workers} if address is None else {"address": address}
            try:
                ray.init(include_dashboard=False, log_to_driver=False, **opts)
            except (ConnectionError, RuntimeError) as exc:
                raise OwbenchError(f"cannot start or reach Ray{' at ' + address if address else ''}: "
                                   f"{str(exc).splitlines()[0]}; check --ray-address (`ray status` on the head "
                                   "node) or drop it for a local Ray") from None
        if address is not None:
            resources = ray.cluster_resources()
            try:
                self.device = resolve_device(device, gpus=int(resources.get("GPU", 0)))
            except OwbenchError:
                self.shutdown()
                raise
            kind = "GPU" if self.device == "cuda" else "CPU"
            self.workers = max(int(resources.get(kind, workers or 1)), 1)
        one_gpu = {"num_gpus": 1, "max_calls": 1} if self.device == "cuda" else {}  # a fresh process per GPU task
        self._remote = ray.remote(num_cpus=1, max_retries=0, **one_gpu)(_ray_job)

    def submit(self, task: Task) -> Any:
        return self._remote.remote(task)

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        done, _ = self.ray.wait(handles, num_returns=1, timeout=timeout)
        if done:  # collect everything else that is ready too
            done, _ = self.ray.wait(handles, num_returns=len(handles), timeout=0)
        for ref in done:
            with contextlib.suppress(Exception):  # a crashed worker: the missing result.json says it failed
                self.ray.get(ref)
        return done

    def close(self, handles: list[Any]) -> None:
        for ref in handles:
            self.ray.cancel(ref, force=True)

    def shutdown(self) -> None:
        """Stop the Ray this executor started (one it joined keeps running)."""
        if self._started:
            self.ray.shutdown()


# -- the sweep -----------------------------------------------------------------------------------

@dataclass
class Sweep:
    """What happened to each job of a sweep."""

    skipped: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # job key -> its log path
    errors: dict[str, str] = field(default_factory=dict)  # failed job key -> the user error that stopped it
    reports: list[Path] = field(default_factory=list)


def check_ray_address(address: str | None) -> None:
    """A Ray address (`host:port` or `ray://host:port`) must answer before anything starts."""
    if not address or address in ("auto", "local"):
        return
    import socket

    host, _, port = address.split("://")[-1].rpartition(":")
    if not host or not port.isdigit():
        raise OwbenchError(f"--ray-address {address!r} is not HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise OwbenchError(f"--ray-address {address}: no Ray cluster answers there ({exc.strerror or exc}); "
                           "start it with `ray start --head` or drop --ray-address for a local Ray") from None


def run_sweep(jobs: list[Job], out: Path, device: str = "auto", executor: str = "local", workers: int | None = None,
              ray_address: str | None = None, collect: bool = True, progress: bool = True,
              report: bool = True, rerun_stale: bool = False, tensorboard: bool = False) -> Sweep:
    """Collect missing datasets, run unfinished jobs with at most `workers` at once (default: one per GPU
    on a GPU device, else one), then write the report. `device` is resolved here, before anything runs
    (a GPU device without a visible GPU is refused). Holds the run directory's lock throughout; stops (or
    with `rerun_stale` moves the old folders aside) when a job folder holds another identity."""
    from agents.devices import job_device, parse_device, resolve_device

    if executor not in EXECUTORS:
        raise unknown("executor", executor, EXECUTORS)
    if workers is not None and workers < 1:
        raise OwbenchError(f"--workers {workers} must be at least 1")
    if executor == "local" or ray_address is None:
        device = resolve_device(device)  # refused here, before anything runs, when the GPU is not visible
    else:
        parse_device(device)  # a Ray cluster's GPUs are counted once connected (RayExecutor)
    if executor == "ray":
        check_ray_address(ray_address)
    if tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise OwbenchError("--logger tensorboard needs TensorBoard: pip install 'owbench[tensorboard]'")
    check_user_datasets(jobs)
    out = Path(out)
    identities = {j.key: job_identity(j) for j in jobs}
    with out_lock(out):
        check_profiles(out, jobs)
        check_identities(out, jobs, identities, rerun_stale)
        sweep = Sweep(skipped=[j.key for j in jobs if job_state(out, j, identities[j.key]) == "done"])
        todo = [j for j in jobs if j.key not in set(sweep.skipped)]
        if todo:
            from rich.console import Console

            say = Console().print if progress else (lambda line: None)
            pool = LocalExecutor(device, workers) if executor == "local" else RayExecutor(workers, ray_address, device)
            try:
                locations = prepare_datasets(todo, collect=collect, workers=workers or 1, say=say)
                tasks = _tasks(todo, out, job_device(pool.device), tensorboard, locations)
                _execute(pool, tasks, sweep, jobs, out, progress)
            finally:
                pool.shutdown()
        if report:
            from benchmark.report import write_report

            for suite in dict.fromkeys(j.suite for j in jobs if (job_dir(out, j) / RESULT).exists()):
                sweep.reports.append(write_report(out / suite))
    return sweep


def _tasks(jobs: list[Job], out: Path, device: str, tensorboard: bool,
           locations: dict[DataNeed, str]) -> list[Task]:
    """One Task per job, each job folder created with its config.json (so that no folder of this owbench
    exists without its identity)."""
    env, tasks = provenance.software(), []
    for j in jobs:
        run_dir, data = job_dir(out, j), [locations[n] for n in j.data]
        record = provenance.config_record(j, data, device, env)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_atomic(run_dir / CONFIG, lambda f, r=record: json.dump(r, f, indent=1))
        tasks.append(Task(j, get_method(j.base[0]), str(run_dir), device, tuple(data), record, tensorboard))
    return tasks


def updates_done(run_dir: Path) -> int:
    """The last update step a running job logged (metrics.csv or eval.csv), read from the files' tails."""
    step = 0
    for name in ("metrics.csv", "eval.csv"):
        path = Path(run_dir) / name
        if not path.exists():
            continue
        with open(path, "rb") as f:
            f.seek(max(f.seek(0, os.SEEK_END) - 4096, 0))
            lines = f.read().decode(errors="replace").strip().splitlines()
        with contextlib.suppress(ValueError, IndexError):
            step = max(step, int(float(lines[-1].split(",")[0])))
    return step


def _execute(pool: LocalExecutor | RayExecutor, tasks: list[Task], sweep: Sweep, jobs: list[Job], out: Path,
             progress: bool) -> None:
    """Keep `pool.workers` jobs in flight; record each as done (result.json exists) or failed. The bar counts
    updates across the whole sweep (finished jobs count in full), so its ETA covers the sweep."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    steps = {j.key: max(j.budget.steps_for(j.method), 1) for j in jobs}
    finished = sum(steps[k] for k in sweep.skipped)
    queue, running = list(tasks), {}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               TextColumn("{task.completed:,.0f}/{task.total:,.0f} updates · jobs {task.fields[jobs]} · "
                          "running {task.fields[running]} · failed {task.fields[failed]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        sweep_bar = bar.add_task("sweep", total=sum(steps.values()), completed=finished, running=0, failed=0,
                                 jobs=f"{len(sweep.skipped)}/{len(jobs)}")
        try:
            while queue or running:
                while queue and len(running) < pool.workers:
                    task = queue.pop(0)
                    running[pool.submit(task)] = task
                for handle in pool.wait(list(running), timeout=1.0):
                    task = running.pop(handle)
                    finished += steps[task.job.key]
                    if (Path(task.run_dir) / RESULT).exists():
                        sweep.done.append(task.job.key)
                    else:
                        sweep.failed[task.job.key] = str(Path(task.run_dir) / LOG)
                        if (Path(task.run_dir) / ERROR).exists():
                            sweep.errors[task.job.key] = (Path(task.run_dir) / ERROR).read_text().strip()
                        bar.console.print(f"[red]failed[/] {task.job.key}: see {task.run_dir}/{LOG}")
                current = sum(min(updates_done(Path(t.run_dir)), steps[t.job.key]) for t in running.values())
                ended = len(sweep.skipped) + len(sweep.done) + len(sweep.failed)
                bar.update(sweep_bar, completed=finished + current, running=len(running), failed=len(sweep.failed),
                           jobs=f"{ended}/{len(jobs)}")
        finally:
            pool.close(list(running))
