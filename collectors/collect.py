"""Collection: a behaviour policy acts on the state, frames are rendered, episodes are committed one by one.

`collect(...)` writes (or resumes) one dataset at an explicit location; `ensure_dataset(...)` does the same
under `$OWBENCH_HOME/datasets/<suite>/<env>/<quality>[-<variant>]-v<N>.zarr` and returns the location.

Resume: every episode is derived from (seed, episode index) alone, except in `medium-replay`, where the
episodes are the SAC agent's own training episodes. There, after each training episode and before its
commit, `<dataset>.policy/train_state.pt` is replaced atomically with the trainer's networks, optimisers,
RNGs, step count and the not-yet-committed episode (physics rows). A resumed run commits that pending
episode if the kill came before its commit, rebuilds the replay buffer from the committed rows, and
trains on. The frozen policies a dataset was collected with (`medium.pt`, `expert.pt`) sit in the same
folder, so every dataset can be regenerated.
"""
from __future__ import annotations

import functools
import io
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec
import numpy as np

from collectors import store
from collectors.envs import Env, gl_info, make, spec
from collectors.errors import OwbenchError
from collectors.policies.scripted import BehaviourPolicy, FrozenSAC, NoisyPolicy, RandomPolicy, ScriptedExpert
from collectors.qualities import MEDIUM_FRACTION, NOISE_SCHEDULE, Quality, episode_noise, episode_policy, get_quality
from collectors.reference import Reference, episode_return, reference_returns
from collectors.render_pool import RenderPool, render_states
from collectors.seeds import behaviour_check_seeds, episode_seed

if TYPE_CHECKING:  # torch is imported only by qualities that train or load a SAC policy (a random
    from collectors.policies.sac import SACConfig, SACTrainer  # collection, and its render workers, never)

DEFAULT_EPISODES = 100  # when neither --episodes nor --steps is given (not for medium-replay)
PACKAGES = ("owbench", "mujoco", "dm-control", "metaworld", "torch", "numpy", "zarr")


@dataclass(frozen=True)
class CollectArgs:
    """Everything that determines a dataset's content (the identity checked on resume)."""

    env_id: str
    quality: str
    episodes: int | None
    steps: int | None
    seed: int
    image_size: int
    camera: str | int | None
    fast_render: bool
    max_episode_steps: int | None  # shorter episodes than the task's time limit (tests, smoke data)
    max_train_steps: int | None  # cap on behaviour-agent training (agent steps)
    sac_preset: str


@dataclass(frozen=True)
class Progress:
    """What a progress display needs; sent after every committed episode and every evaluation."""

    phase: str  # "training" or "collecting"
    episodes: int  # committed episodes
    episodes_target: int | None
    steps: int  # committed agent steps
    steps_target: int | None
    frames_per_s: float
    last_return: float | None
    eval_return: float | None = None


@dataclass(frozen=True)
class CollectSummary:
    location: str
    env_id: str
    quality: str
    episodes: int
    steps: int
    mean_return: float
    std_return: float
    resumed_from: int  # committed episodes found on disk when this call started
    seconds: float
    behaviour: dict[str, Any]


@dataclass
class Episode:
    """One episode's rows (dataset convention) plus its index entry."""

    index: int
    seed: int
    noise_std: float
    rows: dict[str, np.ndarray]
    ret: float
    success: bool

    @property
    def meta(self) -> dict[str, Any]:
        return {"return": self.ret, "success": self.success, "noise_std": self.noise_std, "seed": self.seed}

    def to_saved(self) -> dict[str, Any]:
        """Tensors and plain values, loadable with `weights_only=True`."""
        import torch

        return {"index": int(self.index), "seed": int(self.seed), "noise_std": float(self.noise_std),
                "ret": float(self.ret), "success": bool(self.success), "rows": {k: torch.from_numpy(np.ascontiguousarray(v))
                                                  for k, v in self.rows.items()}}

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> "Episode":
        rows = {k: v.numpy() for k, v in saved["rows"].items()}
        return cls(saved["index"], saved["seed"], saved["noise_std"], rows, saved["ret"], saved["success"])


def rollout(env: Env, act: Callable[[Env], np.ndarray], seed: int, *, render: bool,
            max_steps: int | None = None, on_row: Callable[..., None] | None = None) -> tuple[dict, float, bool]:
    """Run one episode; rows follow the dataset convention. `on_row(state, action, reward, discount, first)`."""
    obs = env.reset(seed=seed)
    limit = env.spec.episode_length if max_steps is None else min(max_steps, env.spec.episode_length)
    zeros = np.zeros(env.spec.action_dim, np.float32)
    rows: dict[str, list] = {k: [] for k in store.STEP_ARRAYS}

    def add(state, action, reward, discount, first, last, terminal, image) -> None:
        for key, value in (("state", state), ("action", action), ("reward", reward), ("discount", discount),
                           ("is_first", first), ("is_last", last), ("is_terminal", terminal),
                           ("physics", env.physics_state())):
            rows[key].append(value)
        if render:
            rows["image"].append(image)
        if on_row is not None:
            on_row(state, action, reward, discount, first)

    add(obs["state"], zeros, 0.0, 1.0, True, False, False, obs.get("image"))
    total, success = 0.0, False
    for t in range(1, limit + 1):
        action = np.asarray(act(env), np.float32)
        reward, terminated, truncated, info = env.step_physics(action)
        total += reward
        success |= bool(info["success"])
        last = terminated or truncated or t == limit
        add(env.state(), action, reward, info["discount"], False, last, terminated, env.render() if render else None)
        if last:
            break
    out = {k: np.asarray(v) for k, v in rows.items() if v}
    return out, total, success


def evaluate_policy(env: Env, act: Callable[[Env], np.ndarray], seeds: list[int]) -> float:
    """Mean return of physics-only episodes (no rendering)."""
    return float(np.mean([episode_return(env, act, s)[0] for s in seeds]))


# -- files beside the dataset (`<location>.policy/`) ---------------------------------------------------------
def _policy_path(location: str, name: str) -> str:
    return f"{location}.policy/{name}"


def save_beside(location: str, name: str, obj: Any) -> None:
    """torch.save next to the dataset; atomic (temp file + rename) on local disks."""
    import torch

    path = _policy_path(location, name)
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    if "://" in path:
        with fsspec.open(path, "wb") as f:
            f.write(buffer.getvalue())
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load_beside(location: str, name: str) -> Any | None:
    """A file saved by `save_beside`, loaded safely (tensors and plain values only), or None if absent."""
    from collectors.safeio import load_tensors

    path = _policy_path(location, name)
    fs, p = fsspec.core.url_to_fs(path)
    if not fs.exists(p):
        return None
    with fs.open(p, "rb") as f:
        return load_tensors(io.BytesIO(f.read()), path,
                            f"delete it, or re-create the dataset with `owbench collect --overwrite --out {location}`")


POLICY_FILES = ("medium.pt", "expert.pt", "train_state.pt")


def _remove_policies(location: str) -> None:
    """Delete the policy files owbench saved beside a dataset (and their temporary files), nothing else."""
    fs, folder = fsspec.core.url_to_fs(_policy_path(location, ""))
    for name in POLICY_FILES:
        for path in (f"{folder.rstrip('/')}/{name}", f"{folder.rstrip('/')}/{name}.tmp"):
            if fs.exists(path):
                fs.rm(path)


@contextmanager
def one_torch_thread(needed: bool = True) -> Iterator[None]:
    """One torch thread inside the block (here: while the tiny behaviour MLPs run, where more threads only
    contend with rendering; `owbench run --dry-run`'s CPU timings); torch is not imported when not `needed`."""
    if not needed:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# -- behaviour policies ------------------------------------------------------------------------------------
class Behaviour:
    """Trains or loads the policies a quality needs, for one dataset."""

    def __init__(self, args: CollectArgs, location: str, reference: Reference):
        self.args, self.location, self.reference = args, location, reference
        self.spec = spec(args.env_id)
        self.info: dict[str, Any] = {}

    @functools.cached_property
    def sac_config(self) -> SACConfig:
        from collectors.policies.sac import SACConfig

        overrides = {} if self.args.max_train_steps is None else {"max_train_steps": self.args.max_train_steps}
        return SACConfig.preset(self.args.sac_preset, **overrides)

    def trainer(self) -> SACTrainer:
        from collectors.policies.sac import SACTrainer

        return SACTrainer(self.spec.state_dim, self.spec.action_dim, self.sac_config, seed=self.args.seed)

    def frozen(self, kind: str, env: Env, progress: Callable[[Progress], None] | None) -> BehaviourPolicy:
        """The frozen `medium` or `expert` policy: loaded from beside the dataset, else trained and saved."""
        if kind == "expert" and self.spec.suite == "metaworld":
            policy = ScriptedExpert(self.spec.id)
            self.info[kind] = {"description": policy.description, "eval_return": self.reference.expert}
            return policy
        saved = load_beside(self.location, f"{kind}.pt") or self._train(kind, env, progress)
        trainer = self.trainer()
        trainer.agent.load_state_dict(saved["agent"])
        description = (f"state-based SAC ({self.args.sac_preset} preset), frozen after {saved['train_steps']} "
                       f"agent steps, deterministic actions")
        self.info[kind] = {"description": description, "eval_return": saved["eval_return"],
                           "reached_target": saved["reached"], "train_steps": saved["train_steps"]}
        return FrozenSAC(trainer.agent, description)

    def _train(self, kind: str, env: Env, progress: Callable[[Progress], None] | None) -> dict[str, Any]:
        """Train SAC without recording: to the medium level, then on to the expert level if `kind` asks for it.
        Each level's snapshot is saved beside the dataset (`medium.pt`, `expert.pt`)."""
        trainer, status = self.trainer(), TrainStatus()
        for stage in ("medium", "expert")[: 1 if kind == "medium" else 2]:
            fraction = MEDIUM_FRACTION if stage == "medium" else self.sac_config.expert_fraction
            status.reached = status.eval_return is not None and status.eval_return >= fraction * self.reference.expert
            status.done = status.reached or trainer.steps >= self.sac_config.max_train_steps
            while not status.done:
                rollout(env, lambda e: trainer.explore(e.state()), self._train_seed(status.episodes), render=False,
                        max_steps=self.args.max_episode_steps, on_row=trainer.observe)
                self.after_training_episode(trainer, status, env, fraction, progress)
            saved = {"agent": trainer.agent.state_dict(), "config": asdict(self.sac_config), **asdict(status)}
            save_beside(self.location, f"{stage}.pt", saved)
        return saved

    def _train_seed(self, episode: int) -> int:
        return episode_seed(self.args.seed + 7919, episode)  # training seeds apart from the dataset's

    def after_training_episode(self, trainer: SACTrainer, status: "TrainStatus", env: Env, fraction: float,
                               progress: Callable[[Progress], None] | None) -> None:
        """Count the episode; evaluate when due; decide whether training is finished."""
        status.episodes += 1
        status.train_steps = trainer.steps
        if trainer.steps >= status.next_eval and trainer.steps >= self.sac_config.random_steps:
            seeds = behaviour_check_seeds(self.sac_config.eval_episodes, self.args.seed)  # not the benchmark's
            status.eval_return = evaluate_policy(env, lambda e: trainer.agent.act(e.state(), True), seeds)
            status.next_eval = trainer.steps + self.sac_config.eval_every
            status.reached = status.eval_return >= fraction * self.reference.expert
            if progress:
                progress(Progress("training", status.episodes, None, trainer.steps, self.sac_config.max_train_steps,
                                  0.0, None, status.eval_return))
        status.done = status.reached or trainer.steps >= self.sac_config.max_train_steps


@dataclass
class TrainStatus:
    episodes: int = 0
    train_steps: int = 0
    next_eval: int = 0
    eval_return: float | None = None
    reached: bool = False
    done: bool = False


# -- the collection ----------------------------------------------------------------------------------------
def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a dataset or a result (recorded in dataset and job metadata)."""
    out = {}
    for name in PACKAGES:
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


def _dataset_attrs(args: CollectArgs, quality: Quality, reference: Reference, location: str) -> dict[str, Any]:
    s = spec(args.env_id)
    return {
        "id": location, "env_id": s.id, "suite": s.suite, "quality": quality.name,
        "quality_description": quality.description, "image_size": args.image_size,
        "camera": s.camera if args.camera is None else args.camera, "action_repeat": s.action_repeat,
        "time_limit": s.time_limit, "max_episode_steps": args.max_episode_steps or s.episode_length,
        "action_dim": s.action_dim, "state_dim": s.state_dim, "seed": args.seed,
        "seeds": "episode i resets with SeedSequence([seed, i]) mod 1e6 (disjoint from evaluation seeds)",
        "noise_schedule": list(NOISE_SCHEDULE) if quality.noisy else None,
        "render": {**gl_info(), "fast_render": args.fast_render,
                   "profile": "fast: no shadows, no reflections" if args.fast_render else "default"},
        "packages": package_versions(), "reference_returns": reference.as_attrs(),
        "collect_args": asdict(args), "complete": False,
    }


def _writer(args: CollectArgs, q: Quality, location: str, env: Env, overwrite: bool) -> store.DatasetWriter:
    """Resume the dataset at `location` if it was collected with the same arguments, else start it afresh:
    over an owbench store without a committed episode (a failed or killed start), or with --overwrite over
    any owbench dataset. Anything that is not an owbench dataset is refused, with or without --overwrite."""
    state = store.probe(location)
    store.refuse_foreign(location)
    if state != "absent":
        old = store.attributes(location)
        diff = [f"{k}={old.get('collect_args', {}).get(k)!r} (now {v!r})" for k, v in asdict(args).items()
                if old.get("collect_args", {}).get(k) != v]
        if state == "dataset" and not diff and not overwrite:
            return store.open_writer(location)
        if diff and int(old.get("committed_episodes", 0)) and not overwrite:
            raise OwbenchError(f"{location} was collected with other arguments: {', '.join(diff)}; "
                               "re-run with the same arguments to resume, or pass --overwrite to replace it")
        if diff or overwrite:
            _remove_policies(location)  # trained for other arguments
    return store.create_dataset(location, _dataset_attrs(args, q, reference_returns(args.env_id), location),
                                _row_shapes(args, env), overwrite=True)


def collect(env_id: str, quality: str, *, out: str | Path, episodes: int | None = None, steps: int | None = None,
            seed: int = 0, image_size: int = 64, camera: str | int | None = None, workers: int = 1,
            fast_render: bool = False, overwrite: bool = False, max_episode_steps: int | None = None,
            max_train_steps: int | None = None, sac_preset: str = "quick",
            progress: Callable[[Progress], None] | None = None) -> CollectSummary:
    """Collect (or resume) a dataset at `out`. Stops after `episodes` episodes or `steps` agent steps
    (medium-replay: when its SAC agent first reaches 1/3 of the expert reference; the counts then cap it)."""
    s = spec(env_id)
    q = get_quality(quality)
    if episodes is not None and steps is not None:
        raise OwbenchError("give --episodes or --steps, not both")
    if workers < 1:
        raise OwbenchError(f"--workers must be at least 1, got {workers}")
    if seed < 0:
        raise OwbenchError(f"--seed must be 0 or more, got {seed}")
    if episodes is None and steps is None and not q.replay:
        episodes = DEFAULT_EPISODES
    args = CollectArgs(s.id, q.name, episodes, steps, seed, image_size, camera, fast_render, max_episode_steps,
                       max_train_steps, sac_preset)
    location = store.resolve_location(out)
    store.refuse_foreign(location)  # before a lock file is put beside it
    with make(s.id, image_size=image_size, camera=camera, fast_render=fast_render) as env:
        env.render()  # a camera the task lacks is an error before anything is written
        # one collector per local dataset: a second one (e.g. two harness jobs needing the same data) waits,
        # then resumes or finds the dataset complete
        with store.writer_lock(location):
            return _collect_locked(args, q, location, env, workers, overwrite, progress)


def _collect_locked(args: CollectArgs, q: Quality, location: str, env: Env, workers: int, overwrite: bool,
                    progress: Callable[[Progress], None] | None) -> CollectSummary:
    s = spec(args.env_id)
    started = time.perf_counter()
    writer = _writer(args, q, location, env, overwrite)
    resumed_from = writer.committed_episodes
    behaviour = Behaviour(args, location, Reference(**writer.attrs["reference_returns"]))
    with one_torch_thread(any(kind != "random" for kind in q.policies)):
        if not writer.attrs.get("complete"):
            _run(args, q, behaviour, writer, env, workers, progress)
    ds = store.open_dataset(location)
    returns = ds.episodes["return"]
    return CollectSummary(location, s.id, q.name, ds.n_episodes, ds.n_steps - ds.n_episodes,
                          float(np.mean(returns)) if len(returns) else 0.0,
                          float(np.std(returns)) if len(returns) else 0.0, resumed_from,
                          time.perf_counter() - started, ds.attrs.get("behaviour", {}))


def _run(args: CollectArgs, q: Quality, behaviour: Behaviour, writer: store.DatasetWriter, env: Env, workers: int,
         progress: Callable[[Progress], None] | None) -> None:
    pool = RenderPool(env, workers) if workers > 1 else None
    try:
        loop = _collect_replay if q.replay else _collect_frozen
        loop(args, q, behaviour, writer, env, pool, progress)
    finally:
        if pool is not None:
            pool.close()
    writer.trim()
    writer.set_attrs(behaviour=behaviour.info, complete=True, completed=datetime.now(timezone.utc).isoformat())


def _row_shapes(args: CollectArgs, env: Env) -> dict[str, tuple[int, ...]]:
    return {"image": (args.image_size, args.image_size, 3), "state": (env.spec.state_dim,),
            "action": (env.spec.action_dim,), "physics": env.physics_state().shape}


class _Committer:
    """Renders (pool) or takes (inline) an episode's frames and commits it; reports progress."""

    def __init__(self, args: CollectArgs, writer: store.DatasetWriter, env: Env, pool: RenderPool | None,
                 progress: Callable[[Progress], None] | None, phase: str):
        self.args, self.writer, self.env, self.pool = args, writer, env, pool
        self.progress, self.phase = progress, phase
        self.started, self.frames = time.perf_counter(), 0
        self.steps = writer.committed_steps - writer.committed_episodes

    def submit(self, episode: Episode) -> Callable[[], None]:
        """Start rendering (pool); the returned function finishes and commits the episode."""
        wait = None
        if "image" not in episode.rows and self.pool is not None:
            wait = self.pool.submit(episode.seed, episode.rows["physics"])
        elif "image" not in episode.rows:  # a pending episode restored on resume, without a pool
            episode.rows["image"] = render_states(self.env, episode.seed, episode.rows["physics"])

        def finish() -> None:
            if wait is not None:
                episode.rows["image"] = wait()
            assert self.writer.committed_episodes == episode.index, (self.writer.committed_episodes, episode.index)
            self.writer.append_episode(episode.rows, episode.meta)
            self.frames += len(episode.rows["reward"])
            self.steps += len(episode.rows["reward"]) - 1
            if self.progress:
                fps = self.frames / max(time.perf_counter() - self.started, 1e-9)
                self.progress(Progress(self.phase, self.writer.committed_episodes, self.args.episodes, self.steps,
                                       self.args.steps, fps, episode.ret))
        return finish

    def commit(self, episode: Episode) -> None:
        self.submit(episode)()


def _target_reached(args: CollectArgs, episodes: int, steps: int) -> bool:
    return (args.episodes is not None and episodes >= args.episodes) or \
        (args.steps is not None and steps >= args.steps)


def _collect_frozen(args: CollectArgs, q: Quality, behaviour: Behaviour, writer: store.DatasetWriter, env: Env,
                    pool: RenderPool | None, progress: Callable[[Progress], None] | None) -> None:
    """Episodes of frozen policies; with a pool, episode i renders while episode i+1 runs its physics."""
    s = behaviour.spec
    # expert first: its training passes the medium level and saves that snapshot on the way
    policies = {kind: behaviour.frozen(kind, env, progress) for kind in reversed(q.policies) if kind != "random"}
    if "random" in q.policies:
        behaviour.info["random"] = {"description": RandomPolicy.description}
    writer.set_attrs(behaviour=behaviour.info)  # known before the first episode, for partial datasets too
    committer = _Committer(args, writer, env, pool, progress, "collecting")
    index, produced_steps = writer.committed_episodes, committer.steps
    finish_previous: Callable[[], None] | None = None
    while not _target_reached(args, index, produced_steps):
        seed, kind, sigma = episode_seed(args.seed, index), episode_policy(q, index), episode_noise(q, index)
        rng = np.random.default_rng(seed)
        policy = RandomPolicy(s.action_dim, rng) if kind == "random" else policies[kind]
        if sigma:
            policy = NoisyPolicy(policy, sigma, rng)
        rows, ret, success = rollout(env, policy.act, seed, render=pool is None, max_steps=args.max_episode_steps)
        episode = Episode(index, seed, sigma, rows, ret, success)
        finish = committer.submit(episode)
        if finish_previous is not None:
            finish_previous()
        finish_previous = finish
        index, produced_steps = index + 1, produced_steps + len(rows["reward"]) - 1
    if finish_previous is not None:
        finish_previous()


def _collect_replay(args: CollectArgs, q: Quality, behaviour: Behaviour, writer: store.DatasetWriter, env: Env,
                    pool: RenderPool | None, progress: Callable[[Progress], None] | None) -> None:
    """medium-replay: every training episode of the SAC agent, committed as it completes."""
    trainer, status = behaviour.trainer(), TrainStatus()
    committer = _Committer(args, writer, env, pool, progress, "training")
    saved = load_beside(writer.location, "train_state.pt")
    if saved is not None:
        trainer.load_state_dict(saved["trainer"])
        status = TrainStatus(**saved["status"])
        pending = Episode.from_saved(saved["pending"])
        if pending.index == writer.committed_episodes:  # killed between checkpoint and commit
            committer.commit(pending)
        elif pending.index != writer.committed_episodes - 1:
            raise OwbenchError(f"{writer.location}.policy/train_state.pt does not match the dataset's commit record; "
                               "re-create the dataset with --overwrite")
        trainer.buffer.add_rows({k: writer.group[k][:writer.committed_steps]
                                 for k in ("state", "action", "reward", "discount", "is_first")})
    elif writer.committed_episodes:
        raise OwbenchError(f"{writer.location} has episodes but no training state beside it to resume from; "
                           "re-create it with --overwrite")
    while not status.done and not _target_reached(args, writer.committed_episodes, committer.steps):
        index = writer.committed_episodes
        seed = episode_seed(args.seed, index)
        rows, ret, success = rollout(env, lambda e: trainer.explore(e.state()), seed, render=pool is None,
                                     max_steps=args.max_episode_steps, on_row=trainer.observe)
        episode = Episode(index, seed, 0.0, rows, ret, success)
        behaviour.after_training_episode(trainer, status, env, MEDIUM_FRACTION, progress)
        saved_rows = {k: v for k, v in rows.items() if k != "image"}  # frames are re-rendered from physics
        save_beside(writer.location, "train_state.pt",
                    {"trainer": trainer.state_dict(), "status": asdict(status),
                     "pending": Episode(index, seed, 0.0, saved_rows, ret, success).to_saved()})
        committer.commit(episode)
    medium = {"agent": trainer.agent.state_dict(), "config": asdict(behaviour.sac_config), **asdict(status)}
    save_beside(writer.location, "medium.pt", medium)
    behaviour.info["medium"] = {
        "description": f"state-based SAC ({args.sac_preset} preset) trained online from scratch; its replay buffer",
        "eval_return": status.eval_return, "reached_target": status.reached, "train_steps": status.train_steps,
        "target_return": MEDIUM_FRACTION * behaviour.reference.expert}


# -- the dataset home --------------------------------------------------------------------------------------
def dataset_id(env_id: str, quality: str, variant: str = "", image_size: int = 64) -> str:
    """`<suite>/<env>/<quality>[-<variant>][-<size>px]-v<N>`; the image size shows when it is not 64, N is the
    quality's recipe version."""
    s = spec(env_id)
    q = get_quality(quality)
    size = f"-{image_size}px" if image_size != 64 else ""
    return f"{s.suite}/{s.id}/{q.name}{'-' + variant if variant else ''}{size}-v{q.version}"


def ensure_dataset(env_id: str, quality: str, *, episodes: int | None = None, steps: int | None = None,
                   seed: int = 0, image_size: int = 64, camera: str | int | None = None, variant: str = "",
                   workers: int = 1, max_train_steps: int | None = None,
                   max_episode_steps: int | None = None) -> str:
    """The location of dataset `dataset_id(...)`, collected if missing, resumed if partial.

    The variant "smoke" uses the SAC `smoke` preset so that tiny trained-policy datasets finish in seconds."""
    location = store.resolve_location(dataset_id(env_id, quality, variant, image_size))
    collect(env_id, quality, out=location, episodes=episodes, steps=steps, seed=seed, image_size=image_size,
            camera=camera, workers=workers, max_train_steps=max_train_steps, max_episode_steps=max_episode_steps,
            sac_preset="smoke" if variant == "smoke" else "quick")
    return location
