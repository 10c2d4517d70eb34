"""Run a suite's jobs: collect missing datasets, then execute jobs locally (spawned processes) or on Ray.

Each job (suite, method, pair, seed) owns `<out>/<suite>/<method>/<source>__<target>/seed<k>/`:
`job.log` (everything the job printed), the training loop's `checkpoints/`, `metrics.csv`, `eval.csv`,
and, written atomically last, `final_frames.npz` and `result.json`, which mark the job done.
A re-run skips done jobs, and re-starts unfinished ones, whose training loop resumes from
`checkpoints/latest.pt`. A failed job is reported with its log and does not stop the others.
"""
from __future__ import annotations

import contextlib
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

from benchmark.methods import Method, get_method
from benchmark.rundir import FRAMES, LOG, RESULT
from benchmark.suites import Budget, DataNeed, Job, datasets_needed
from collectors.errors import OwbenchError, unknown

EXECUTORS = ("local", "ray")


def job_dir(out: Path, job: Job) -> Path:
    return Path(out) / job.suite / job.method / job.pair.name / f"seed{job.seed}"


def job_state(out: Path, job: Job) -> str:
    """`done` (result.json written), `partial` (started before, will resume) or `new`."""
    run_dir = job_dir(out, job)
    if (run_dir / RESULT).exists():
        return "done"
    return "partial" if run_dir.exists() else "new"


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
    """Where the dataset of `need` at this budget lives in the dataset home (collected or not)."""
    from collectors import collect, store

    return store.resolve_location(collect.dataset_id(need.env_id, need.quality, need.variant(budget.variant)))


def missing_datasets(jobs: list[Job]) -> list[tuple[DataNeed, str]]:
    """(need, location) for every dataset the jobs read that has no committed episode yet."""
    from collectors import store

    budgets = _budgets(jobs)
    locations = [(need, dataset_location(need, budgets[need])) for need in budgets]
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
            for need, b in budgets.items() if need.behaviour == "dreamerv2"}
    return made | {need: ensure_dataset(need.env_id, need.quality, episodes=need.episodes or b.dataset_episodes,
                                        image_size=b.image_size, variant=need.variant(b.variant), workers=workers,
                                        max_episode_steps=b.max_episode_steps, max_train_steps=b.behaviour_train_steps)
                   for need, b in budgets.items() if need not in made}


# -- one job (runs inside a worker process) ------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """A job with what the worker needs besides it: the method, its folder, the device, dataset locations."""

    job: Job
    method: Method
    run_dir: str
    device: str
    datasets: tuple[str, ...]


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
    """Reference returns (random, expert) for normalised scores: the target dataset's, or for a target
    learned online the task's entry in collectors/reference.py."""
    from collectors.reference import reference_returns
    from collectors.store import open_dataset

    for need, loc in zip(job.data, datasets):
        if need.role == "target":
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
        datasets=list(task.datasets), run_dir=Path(task.run_dir), preset=job.profile,
        steps=b.steps_for(job.method), eval_every=b.eval_every, eval_episodes=b.eval_episodes,
        checkpoint_every=b.checkpoint_every, seed=job.seed, device=device, image_size=b.image_size,
        overrides=dict(overrides))
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


def run_job(task: Task) -> str:
    """Run one job with its output in job.log; write final_frames.npz then result.json. Returns the status."""
    job, run_dir = task.job, Path(task.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with _log_to(run_dir / LOG):
        print(f"== {job.key} ({job.profile}) started {time.strftime('%Y-%m-%d %H:%M:%S')} on pid {os.getpid()}")
        try:
            from agents.contract import resolve_device

            device = resolve_device(task.device)
            result, steps = _train(task, device)
            if result.frames is not None:
                write_atomic(run_dir / FRAMES, lambda f: np.savez_compressed(f, frames=result.frames), "wb")
            record = {
                "suite": job.suite, "profile": job.profile, "method": job.method, "source": job.pair.source,
                "sources": list(job.pair.sources), "target": job.pair.target, "seed": job.seed,
                "steps": steps, "eval_episodes": job.budget.eval_episodes,
                "device": device, "datasets": list(task.datasets),
                "reference_returns": _reference_returns(task.datasets, job),
                "returns": [float(r) for r in result.returns], "successes": [bool(s) for s in result.successes],
                "lengths": [int(n) for n in result.lengths], "eval_seeds": [int(s) for s in result.seeds],
                "wall_s": round(time.time() - start, 2), "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
            }
            write_atomic(run_dir / RESULT, lambda f: json.dump(record, f, indent=1))
            print(f"== done: mean return {np.mean(result.returns):.1f} over {len(result.returns)} episodes")
            return "done"
        except BaseException:  # noqa: BLE001 - any failure is the job's, reported via its log
            traceback.print_exc()
            print("== failed")
            return "failed"


def _worker_main(task: Task) -> None:
    """Entry point of a spawned worker: run the job, exit if the sweep process dies."""
    parent = os.getppid()

    def watch_parent() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(3)

    threading.Thread(target=watch_parent, daemon=True).start()
    sys.exit(0 if run_job(task) == "done" else 1)


# -- executors -----------------------------------------------------------------------------------

class LocalExecutor:
    """A pool of worker processes started with `spawn` (a GL context must not cross a fork), one per job."""

    def __init__(self, workers: int):
        self.workers = workers
        self._ctx = mp.get_context("spawn")

    def submit(self, task: Task) -> Any:
        proc = self._ctx.Process(target=_worker_main, args=(task,), name=task.job.key)
        proc.start()
        return proc

    def wait(self, handles: list[Any], timeout: float) -> list[Any]:
        """Handles of finished jobs, waiting up to `timeout` for the first one."""
        mp.connection.wait([p.sentinel for p in handles], timeout)
        done = [p for p in handles if p.exitcode is not None]
        for p in done:
            p.join()
        return done

    def close(self, handles: list[Any]) -> None:
        for p in handles:
            p.terminate()
            p.join()


class RayExecutor:
    """The same tasks as Ray tasks (one CPU each; one GPU each when `device` is cuda). `out` must be on a
    filesystem every node sees. A local Ray gets `workers` CPUs; on a cluster, as many jobs run as it has CPUs."""

    def __init__(self, workers: int, address: str | None, device: str):
        try:
            import ray
        except ImportError as exc:
            raise OwbenchError("--executor ray needs Ray: pip install 'owbench[ray]'") from exc
        self.ray, self.workers = ray, workers
        self._started = not ray.is_initialized()
        if self._started:
            opts = {"num_cpus": workers} if address is None else {"address": address}
            ray.init(include_dashboard=False, log_to_driver=False, **opts)
        if address is not None:
            self.workers = max(int(ray.cluster_resources().get("CPU", workers)), 1)
        gpus = 1 if device.startswith("cuda") else 0
        self._remote = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(run_job)

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
        if self._started:
            self.ray.shutdown()


# -- the sweep -----------------------------------------------------------------------------------

@dataclass
class Sweep:
    """What happened to each job of a sweep."""

    skipped: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # job key -> its log path
    reports: list[Path] = field(default_factory=list)


def check_out_dir(out: Path, jobs: list[Job]) -> None:
    """Refuse to mix profiles in one run directory (results of different budgets are not comparable)."""
    for job in jobs:
        path = job_dir(out, job) / RESULT
        if path.exists():
            profile = json.loads(path.read_text()).get("profile")
            if profile != job.profile:
                raise OwbenchError(f"{out} holds {profile!r} results of {job.suite}; use --profile {profile} "
                                   f"or another --out for profile {job.profile!r}")


def run_sweep(jobs: list[Job], out: Path, device: str = "auto", executor: str = "local", workers: int = 1,
              ray_address: str | None = None, collect: bool = True, progress: bool = True,
              report: bool = True) -> Sweep:
    """Collect missing datasets, run unfinished jobs with at most `workers` at once, then write the report."""
    if executor not in EXECUTORS:
        raise unknown("executor", executor, EXECUTORS)
    if workers < 1:
        raise OwbenchError(f"--workers {workers} must be at least 1")
    out = Path(out)
    check_out_dir(out, jobs)
    sweep = Sweep(skipped=[j.key for j in jobs if job_state(out, j) == "done"])
    todo = [j for j in jobs if job_state(out, j) != "done"]
    if todo:
        from rich.console import Console

        say = Console().print if progress else (lambda line: None)
        locations = prepare_datasets(todo, collect=collect, workers=workers, say=say)
        tasks = [Task(j, get_method(j.base[0]), str(job_dir(out, j)), device, tuple(locations[n] for n in j.data))
                 for j in todo]
        pool = LocalExecutor(workers) if executor == "local" else RayExecutor(workers, ray_address, device)
        _execute(pool, tasks, sweep, len(jobs), progress)
    if report:
        from benchmark.report import write_report

        for suite in dict.fromkeys(j.suite for j in jobs if job_state(out, j) == "done"):
            sweep.reports.append(write_report(out / suite))
    return sweep


def _execute(pool: LocalExecutor | RayExecutor, tasks: list[Task], sweep: Sweep, total: int,
             progress: bool) -> None:
    """Keep `pool.workers` jobs in flight; record each as done (result.json exists) or failed."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, \
        TimeRemainingColumn

    queue, running = list(tasks), {}
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("running {task.fields[running]} · failed {task.fields[failed]}"),
               TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn())
    with Progress(*columns, disable=not progress, transient=False) as bar:
        sweep_bar = bar.add_task("jobs", total=total, completed=len(sweep.skipped), running=0, failed=0)
        try:
            while queue or running:
                while queue and len(running) < pool.workers:
                    task = queue.pop(0)
                    running[pool.submit(task)] = task
                for handle in pool.wait(list(running), timeout=1.0):
                    task = running.pop(handle)
                    if (Path(task.run_dir) / RESULT).exists():
                        sweep.done.append(task.job.key)
                    else:
                        sweep.failed[task.job.key] = str(Path(task.run_dir) / LOG)
                        bar.console.print(f"[red]failed[/] {task.job.key}: see {task.run_dir}/{LOG}")
                    bar.advance(sweep_bar)
                bar.update(sweep_bar, running=len(running), failed=len(sweep.failed))
        finally:
            pool.close(list(running))
