"""`owbench perf`: each figure measured the project's way and the naive way in one run, with the ratio.

Every ratio is between two measurements of the same run. A figure recorded elsewhere (another program's
speed taken on another day, a paper's) is never a ratio's side: it is printed beside the measured figure,
labelled as recorded, with where and when (`Recorded`).

Sections (GitHub issues 3, 4 and 9):
- collect: frames/s of `collectors.collect.collect` (1 worker, 2 workers with start-up, fast render)
  against a plain dm_control loop (`env.step` twice + `physics.render` per stored frame);
- store: write MB/s and bytes per frame of the Zarr store against `numpy.savez_compressed` per episode;
- sampler: batches/s and peak RSS of `SequenceSampler` against per-window Zarr reads and an
  in-memory dict of npz episodes, each in a fresh process (so peak RSS is its own);
- world-model: updates/s of the RSSM training step with and without the project's optimisations
  (`benchmark.perf_wm`); at dreamer-torch's DMC shape, dreamer-torch's recorded seconds beside them;
- faiss: IVF index build and query time and recall@10 against numpy brute force on the same vectors.

Every section builds its own temporary data. Timings depend on what else runs on the machine.
"""
from __future__ import annotations

import io
import os
import pickle
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from collectors.errors import OwbenchError, unknown

SECTIONS = ("collect", "store", "sampler", "world-model", "faiss")
ENV_ID = "walker_walk"  # the task of benchmark/naive_collect.py's plain loop


@dataclass(frozen=True)
class PerfConfig:
    """Sizes of a perf run (presets `full`, `quick`, `smoke`)."""

    collect_episodes: int = 2  # episodes per collection measurement (2 workers: twice as many)
    command_episodes: int = 8  # episodes of the whole-command comparison (`owbench collect` vs a plain script)
    command_rounds: int = 3  # alternating rounds of that comparison (the median of each side counts)
    episode_steps: int | None = None  # agent steps per episode (None: the task's 500)
    store_episodes: int = 10  # episodes written by each store writer
    sampler_frames: int = 100_000  # rows of the sampler's dataset
    sampler_seconds: float = 10.0  # sampling time per sampler
    batch_size: int = 16
    length: int = 50
    wm_presets: tuple[str, ...] = ("smoke", "code", "paper")
    wm_iters: int = 3  # timed world-model updates per preset and variant
    wm_shape: tuple[int, int] | None = None  # (batch, sequence length) for every world-model preset; None: the preset's
    faiss_vectors: int = 1_000_000
    faiss_dim: int = 64
    faiss_queries: int = 1000
    seed: int = 0

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> "PerfConfig":
        presets = {
            "full": cls(),
            "quick": cls(collect_episodes=1, command_episodes=2, command_rounds=1, episode_steps=100,
                         store_episodes=4, sampler_frames=10_000, sampler_seconds=3.0, wm_presets=("code",),
                         wm_iters=2, wm_shape=(16, 16), faiss_vectors=100_000, faiss_queries=200),
            "smoke": cls(collect_episodes=1, command_episodes=1, command_rounds=1, episode_steps=8, store_episodes=2,
                         sampler_frames=300, sampler_seconds=0.3, batch_size=2, length=5, wm_presets=("smoke",),
                         wm_iters=1, faiss_vectors=2000, faiss_dim=16, faiss_queries=20),
        }
        if name not in presets:
            raise unknown("perf preset", name, presets)
        return replace(presets[name], **overrides)


def format_number(value: float | None) -> str:
    """3 significant digits, thousands separators from 100 up; '-' for a missing value."""
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


@dataclass(frozen=True)
class Recorded:
    """A figure this run did not measure: a range recorded elsewhere, with where, when and how."""

    low: float
    high: float
    where: str
    when: str
    how: str

    @property
    def text(self) -> str:
        low, high = (f"{v:.2f}" if abs(v) < 100 else format_number(v) for v in (self.low, self.high))
        value = low if low == high else f"{low}-{high}"
        return f"{value} (recorded, not measured here: {self.where}, {self.when}; {self.how})"


@dataclass(frozen=True)
class Figure:
    """One measured figure: the project's value, the naive value measured in the same run, and the
    target on their ratio (or on the project's value when there is no naive side). `recorded` is a
    figure from elsewhere shown beside it: never a side of the ratio or of the verdict."""

    section: str
    name: str
    unit: str
    project: float | None
    naive: float | None = None
    target: float | None = None
    higher_is_better: bool = True
    note: str = ""
    recorded: Recorded | None = None

    @property
    def recorded_text(self) -> str:
        return "" if self.recorded is None else self.recorded.text

    @property
    def ratio(self) -> float | None:
        if self.project is None or not self.naive:
            return None
        return self.project / self.naive

    @property
    def passed(self) -> bool | None:
        value = self.ratio if self.naive is not None else self.project
        if self.target is None or value is None:
            return None
        return value >= self.target if self.higher_is_better else value <= self.target

    @property
    def target_text(self) -> str:
        if self.target is None:
            return ""
        sign = ">=" if self.higher_is_better else "<="
        return f"{sign} {self.target:g}" + ("x" if self.naive is not None else f" {self.unit}")

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ratio": self.ratio, "passed": self.passed, "target_text": self.target_text,
                "recorded_text": self.recorded_text}


@dataclass
class PerfReport:
    machine: dict[str, Any]
    config: dict[str, Any]
    figures: list[Figure] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"machine": self.machine, "config": self.config, "figures": [f.as_dict() for f in self.figures]}

    def markdown(self) -> str:
        """The figures as one markdown table (docs/performance.md), then the footer."""
        lines = ["| section | figure | unit | project | naive | ratio | target | pass | recorded elsewhere | note |",
                 "|---|---|---|---:|---:|---:|---|---|---|---|"]
        for f in self.figures:
            ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
            verdict = {True: "yes", False: "**no**", None: ""}[f.passed]
            lines.append(f"| {f.section} | {f.name} | {f.unit} | {format_number(f.project)} | {format_number(f.naive)} | {ratio} | "
                         f"{f.target_text} | {verdict} | {f.recorded_text} | {f.note} |")
        return "\n".join(lines + ["", *self.footer()])

    def footer(self) -> list[str]:
        """What the figures are, in words that claim no more than this run measured."""
        m = self.machine
        loads = " -> ".join(f"{m[k][0]:.2f}" for k in ("load_average", "load_average_end") if k in m)
        lines = [f"Measured in this run: the project and naive columns, every ratio and verdict "
                 f"({m.get('cpu', '?')}, {m.get('cores', '?')} cores, device {m.get('device', '?')}, "
                 f"1-minute load average {loads} from start to end)."]
        if any(f.recorded is not None for f in self.figures):
            lines.append("Not measured in this run: the 'recorded elsewhere' figures (another program, run and day); "
                         "no ratio or verdict is computed from them.")
        return lines


def machine_info(device: str) -> dict[str, Any]:
    model = ""
    if Path("/proc/cpuinfo").exists():
        model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                      if line.startswith("model name")), "")
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(), "load_average": os.getloadavg(),
            "python": platform.python_version(), "platform": platform.platform(), "device": device}


def _peak_rss_mb() -> float:
    """Peak resident memory of this process. VmHWM resets on exec; ru_maxrss survives it on Linux
    (a spawned child would report its parent's peak), so it is only the fallback."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _in_child(fn: Callable[..., Any], *args: Any) -> Any:
    """Run `fn(*args)` in a fresh interpreter that imports only what `fn` needs (not the CLI), so its
    peak RSS is its own and no GL context is inherited; `fn` may start worker processes itself."""
    with tempfile.TemporaryDirectory(prefix="owbench-perf-child-") as tmp:
        result = Path(tmp) / "result.pkl"
        done = subprocess.run([sys.executable, "-c", "from benchmark.perf import child_main; child_main()",
                               str(result)], input=pickle.dumps((fn, args)), capture_output=True)
        if done.returncode != 0:
            lines = done.stderr.decode(errors="replace").strip().splitlines() or ["no output"]
            raise RuntimeError(f"{fn.__name__} failed in its child process: {lines[-1]}")
        return pickle.loads(result.read_bytes())


def child_main() -> None:
    """Entry point of `_in_child`'s interpreter: (function, args) pickled on stdin, result to argv[1]."""
    fn, args = pickle.loads(sys.stdin.buffer.read())
    Path(sys.argv[1]).write_bytes(pickle.dumps(fn(*args)))


# ---------------------------------------------------------------- collection

def naive_collect(episodes: int, steps: int, image_size: int = 64) -> float:
    """Frames/s of the plain loop (benchmark/naive_collect.py, no files written), in this process, on the GL
    backend owbench would choose."""
    from benchmark import naive_collect as naive
    from collectors.envs import select_backend

    select_backend()

    started = time.perf_counter()
    frames = naive.collect(None, episodes, steps, image_size)
    return frames / (time.perf_counter() - started)


def whole_command(argv: list[str], frames: int) -> float:
    """Frames/s of a command run as a user runs it: a fresh interpreter, start-up and writes included."""
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        lines = done.stderr.strip().splitlines() or ["no output"]
        raise RuntimeError(f"{' '.join(argv[:3])} ... failed: {lines[-1]}")
    return frames / seconds


def project_collect(out: str, episodes: int, steps: int | None, workers: int, fast_render: bool) -> float:
    """Frames/s of `collect(...)`, start-up (worker spawn, store creation) included."""
    from collectors.collect import collect

    started = time.perf_counter()
    summary = collect(ENV_ID, "random", out=out, episodes=episodes, workers=workers, fast_render=fast_render,
                      max_episode_steps=steps, overwrite=True)
    return (summary.steps + summary.episodes) / (time.perf_counter() - started)


def measure_collect(cfg: PerfConfig, tmp: Path) -> list[Figure]:
    from collectors.envs import select_backend, spec

    steps = cfg.episode_steps or spec(ENV_ID).episode_length
    naive = _in_child(naive_collect, cfg.collect_episodes, steps)
    one = _in_child(project_collect, str(tmp / "c1.zarr"), cfg.collect_episodes, cfg.episode_steps, 1, False)
    two = _in_child(project_collect, str(tmp / "c2.zarr"), 2 * cfg.collect_episodes, cfg.episode_steps, 2, False)
    fast = _in_child(project_collect, str(tmp / "cf.zarr"), cfg.collect_episodes, cfg.episode_steps, 1, True)
    select_backend()  # the plain script inherits owbench's GL backend choice (MUJOCO_GL)
    n, frames = cfg.command_episodes, cfg.command_episodes * (steps + 1)
    script = Path(__file__).with_name("naive_collect.py")
    owbench = shutil.which("owbench") or str(Path(sys.executable).with_name("owbench"))
    commands = {"naive": lambda r: [sys.executable, str(script), str(tmp / f"naive-npz-{r}"), str(n), str(steps)],
                "owbench": lambda r: [owbench, "collect", "--env", ENV_ID, "--quality", "random", "--episodes", str(n),
                                      "--workers", "2", "--max-episode-steps", str(steps),
                                      "--out", str(tmp / f"cmd-{r}.zarr")]}
    rates: dict[str, list[float]] = {"naive": [], "owbench": []}
    for r in range(cfg.command_rounds):  # taking turns, each going first in every other round
        for name in ("naive", "owbench") if r % 2 == 0 else ("owbench", "naive"):
            rates[name].append(whole_command(commands[name](r), frames))
    naive_command, command = (float(np.median(rates[name])) for name in ("naive", "owbench"))
    note = f"{ENV_ID} 64x64, {steps}-step episodes"
    return [Figure("collect", "frames/s, 1 worker (identical pixels)", "frames/s", one, naive, 0.95, note=note),
            Figure("collect", "frames/s, --workers 2 (start-up included)", "frames/s", two, naive, 1.5, note=note),
            Figure("collect", "frames/s, --fast-render, 1 worker", "frames/s", fast, naive, 4.0,
                   note="fast render profile (different pixels)"),
            Figure("collect", f"frames/s, `owbench collect --workers 2` whole command, {n} episodes", "frames/s",
                   command, naive_command, 1.5,
                   note="both as fresh processes, start-up included, median of "
                        f"{cfg.command_rounds} alternating round{'s' if cfg.command_rounds > 1 else ''}; naive: "
                        "benchmark/naive_collect.py, which also writes one compressed npz per episode")]


# ---------------------------------------------------------------- source episodes, store

def source_episodes(cfg: PerfConfig, tmp: Path) -> list[dict[str, np.ndarray]]:
    """Real rendered episodes (random policy), collected once per run and reused by store and sampler."""
    from collectors.store import open_dataset

    location = tmp / "c1.zarr"  # the collection section's dataset when it ran
    if not location.exists():
        location = tmp / "source.zarr"
        _in_child(project_collect, str(location), 2, cfg.episode_steps, 1, False)
    ds = open_dataset(str(location))
    return [ds.episode(i) for i in range(ds.n_episodes)]


def _npz_name(index: int, length: int) -> str:
    # DreamerV2 / CoWorld / V-D4RL convention: {YYYYmmddTHHMMSS}-{uuid hex}-{length}.npz
    return f"20260101T000000-{index:032x}-{length}.npz"


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def write_npz(episodes: list[dict[str, np.ndarray]], folder: Path, compressed: bool = True) -> float:
    """Seconds to write each episode as one npz file (the naive store)."""
    folder.mkdir(parents=True, exist_ok=True)
    save = np.savez_compressed if compressed else np.savez
    started = time.perf_counter()
    for i, ep in enumerate(episodes):
        buf = io.BytesIO()
        save(buf, **ep)
        (folder / _npz_name(i, len(ep["reward"]))).write_bytes(buf.getvalue())
    return time.perf_counter() - started


def write_store(episodes: list[dict[str, np.ndarray]], location: Path) -> float:
    """Seconds to append the episodes to a new owbench Zarr store (the project's way)."""
    from collectors.store import create_dataset  # imported before the clock starts, like numpy for npz

    first = episodes[0]
    shapes = {k: first[k].shape[1:] for k in ("image", "state", "action", "physics")}
    started = time.perf_counter()
    writer = create_dataset(str(location), {"env_id": ENV_ID, "quality": "random", "image_size": first["image"].shape[1],
                                            "action_dim": first["action"].shape[1]}, shapes, overwrite=True)
    for i, ep in enumerate(episodes):
        writer.append_episode(ep, {"return": float(ep["reward"].sum()), "seed": i})
    return time.perf_counter() - started


def measure_store(cfg: PerfConfig, tmp: Path) -> list[Figure]:
    source = source_episodes(cfg, tmp)
    return compare_store([source[i % len(source)] for i in range(cfg.store_episodes)], tmp)


def compare_store(episodes: list[dict[str, np.ndarray]], tmp: Path, rounds: int = 3) -> list[Figure]:
    """Write the same episodes both ways: throughput and bytes per frame.

    The two writers take turns for `rounds` rounds (each going first in every other round) and each
    one's median time counts, so a burst of load from other processes does not decide the ratio.
    """
    raw_mb = sum(v.nbytes for ep in episodes for v in ep.values()) / 2**20
    frames = sum(len(ep["reward"]) for ep in episodes)
    writers = {"npz": lambda r: write_npz(episodes, tmp / f"store-npz-{r}"),
               "zarr": lambda r: write_store(episodes, tmp / f"store-{r}.zarr")}
    seconds: dict[str, list[float]] = {"npz": [], "zarr": []}
    for r in range(rounds):
        for name in ("npz", "zarr") if r % 2 == 0 else ("zarr", "npz"):
            seconds[name].append(writers[name](r))
    npz_s, zarr_s = (float(np.median(seconds[name])) for name in ("npz", "zarr"))
    npz_bytes, zarr_bytes = _dir_bytes(tmp / "store-npz-0"), _dir_bytes(tmp / "store-0.zarr")
    note = f"{frames} frames, all arrays (image, state, action, physics, ...); median of {rounds} alternating rounds"
    return [Figure("store", "write throughput", "MB/s", raw_mb / zarr_s, raw_mb / npz_s, 1.5, note=note),
            Figure("store", "bytes per frame on disk", "B/frame", zarr_bytes / frames, npz_bytes / frames, 1.1,
                   higher_is_better=False, note="incl. manifest and episode index")]


# ---------------------------------------------------------------- sampler

def build_sampler_data(cfg: PerfConfig, source: list[dict[str, np.ndarray]], tmp: Path) -> tuple[Path, Path]:
    """A `sampler_frames`-row Zarr store and the same episodes as npz files, tiled from `source`."""
    episodes, rows = [], 0
    while rows < cfg.sampler_frames:
        episodes.append(source[len(episodes) % len(source)])
        rows += len(episodes[-1]["reward"])
    write_store(episodes, tmp / "sampler.zarr")
    write_npz(episodes, tmp / "sampler-npz", compressed=False)  # loaded whole: compression does not matter
    return tmp / "sampler.zarr", tmp / "sampler-npz"


def _window_starts(lengths: list[int], length: int, rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    """(episode, offset) of n windows drawn uniformly among windows inside one episode."""
    counts = np.maximum(np.asarray(lengths) - length + 1, 0)
    flat = rng.integers(0, counts.sum(), n)
    cumulative = np.cumsum(counts)
    episode = np.searchsorted(cumulative, flat, side="right")
    return [(int(e), int(k - (cumulative[e] - counts[e]))) for e, k in zip(episode, flat)]


def _timed_batches(sample: Callable[[], Any], seconds: float) -> float:
    sample()  # warm-up: threads started, first chunks read
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        sample()
        count += 1
    return count / (time.perf_counter() - started)


SAMPLE_KEYS = ("image", "action", "reward", "discount", "is_first", "is_last", "is_terminal", "state")


def sampler_child(kind: str, path: str, cfg: PerfConfig) -> tuple[float, float]:
    """(batches/s, peak RSS MB) of one sampler, in its own process."""
    rng = np.random.default_rng(cfg.seed)
    B, T = cfg.batch_size, cfg.length
    if kind == "project":
        from collectors.sampler import SequenceSampler

        with SequenceSampler(path, batch_size=B, length=T, seed=cfg.seed) as sampler:
            rate = _timed_batches(sampler.sample, cfg.sampler_seconds)
    elif kind == "zarr-per-window":
        from collectors.store import open_dataset

        ds = open_dataset(path)
        starts, lengths = ds.episodes["start"], [int(n) for n in ds.episodes["length"]]

        def sample() -> dict[str, np.ndarray]:
            windows = _window_starts(lengths, T, rng, B)
            return {k: np.stack([ds.arrays[k][starts[e] + o:starts[e] + o + T] for e, o in windows])
                    for k in SAMPLE_KEYS}

        rate = _timed_batches(sample, cfg.sampler_seconds)
    else:  # in-memory dict of npz episodes
        files = sorted(Path(path).glob("*.npz"))
        episodes = {}
        for f in files:
            with np.load(f) as npz:
                episodes[f.name] = dict(npz)
        names = list(episodes)
        lengths = [len(episodes[n]["reward"]) for n in names]

        def sample() -> dict[str, np.ndarray]:
            windows = _window_starts(lengths, T, rng, B)
            return {k: np.stack([episodes[names[e]][k][o:o + T] for e, o in windows]) for k in SAMPLE_KEYS}

        rate = _timed_batches(sample, cfg.sampler_seconds)
    return rate, _peak_rss_mb()


def measure_sampler(cfg: PerfConfig, tmp: Path) -> list[Figure]:
    store_path, npz_path = build_sampler_data(cfg, source_episodes(cfg, tmp), tmp)
    project, project_rss = _in_child(sampler_child, "project", str(store_path), cfg)
    naive, _ = _in_child(sampler_child, "zarr-per-window", str(store_path), cfg)
    memory, memory_rss = _in_child(sampler_child, "in-memory", str(npz_path), cfg)
    shape = f"{cfg.batch_size}x{cfg.length} windows of {cfg.sampler_frames} frames"
    return [Figure("sampler", "batches/s vs per-window Zarr reads", "batches/s", project, naive, 3.0, note=shape),
            Figure("sampler", "batches/s sustained", "batches/s", project, None, 40.0, note="2 prefetch threads"),
            Figure("sampler", "batches/s vs in-memory npz dict", "batches/s", project, memory, note="reference"),
            Figure("sampler", "peak RSS vs in-memory npz dict", "MB", project_rss, memory_rss, 0.25,
                   higher_is_better=False, note=shape)]


# ---------------------------------------------------------------- world model

# dreamer-torch (jsikyoon/dreamer-torch, its dmc config) is not run by owbench perf: its seconds per
# world-model + behaviour update at 16 x 50, 64 px, on 2 CPU threads are a recorded figure.
DREAMER_TORCH_CPU = Recorded(
    2.20, 2.31, where="GitHub issue 19 (dreamer-torch dmc config, 16x50 at 64 px, 2 torch threads)",
    when="filed 2026-11-22..28 on the project's 2-core VM",
    how="side by side with owbench, 3 alternating rounds, quiet machine; issue 4 had noted 'about 4.2 s'")
DREAMER_TORCH_SHAPE = ("code", 16, 50, 64)  # the owbench preset and batch x sequence x pixels of that shape


def world_model_overrides(cfg: PerfConfig) -> dict[str, int]:
    """Config overrides of every world-model measurement: the run's (batch, sequence length) if it sets one."""
    return {} if cfg.wm_shape is None else {"batch_size": cfg.wm_shape[0], "seq_len": cfg.wm_shape[1]}


def measure_world_model(cfg: PerfConfig, device: str) -> list[Figure]:
    from benchmark import perf_wm

    overrides = world_model_overrides(cfg)
    figures = []
    for preset in cfg.wm_presets:
        fast = perf_wm.measure_world_model_updates(preset, device, cfg.wm_iters, optimized=True, overrides=overrides)
        plain = perf_wm.measure_world_model_updates(preset, device, cfg.wm_iters, optimized=False, overrides=overrides)
        shape = (f"{device}, batch {fast['batch']}x{fast['seq_len']} at {fast['image_size']} px, {fast['threads']} "
                 f"torch threads, {fast['iters']} timed updates; plain = no channels-last/bf16/prefetch")
        figures += [Figure("world-model", f"world-model updates/s, preset {preset}", "updates/s",
                           fast["updates_per_s"], plain["updates_per_s"], note=shape),
                    Figure("world-model", f"agent updates/s (+ actor-critic), preset {preset}", "updates/s",
                           fast["agent_updates_per_s"], plain["agent_updates_per_s"], note=shape)]
        if device == "cpu" and (preset, fast["batch"], fast["seq_len"], fast["image_size"]) == DREAMER_TORCH_SHAPE:
            figures.append(Figure(
                "world-model", f"agent update seconds at dreamer-torch's DMC shape, preset {preset}", "s/update",
                fast["agent_seconds_per_update"], higher_is_better=False,
                note=f"dreamer-torch itself is not run here ({shape})",
                recorded=DREAMER_TORCH_CPU))
    return figures


# ---------------------------------------------------------------- faiss

def retrieval_vectors(n: int, dim: int, seed: int) -> np.ndarray:
    """Random-projection-like embeddings: a low-dimensional clustered latent projected to `dim` plus noise."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(256, 8))
    latent = centres[rng.integers(0, len(centres), n)] + 0.3 * rng.normal(size=(n, 8))
    projection = rng.normal(size=(8, dim)) / np.sqrt(8)
    return (latent @ projection + 0.05 * rng.normal(size=(n, dim))).astype(np.float32)


def brute_force_knn(base: np.ndarray, queries: np.ndarray, k: int, block: int = 65536) -> np.ndarray:
    """Exact k nearest neighbours (squared L2) with numpy, in blocks of the base to bound memory."""
    best_d = np.full((len(queries), k), np.inf, np.float32)
    best_i = np.zeros((len(queries), k), np.int64)
    q_norm = (queries**2).sum(1, keepdims=True)
    for lo in range(0, len(base), block):
        part = base[lo:lo + block]
        d = q_norm - 2 * queries @ part.T + (part**2).sum(1)
        kk = min(k, d.shape[1])
        top = np.argpartition(d, kk - 1, axis=1)[:, :kk]
        all_d = np.concatenate([best_d, np.take_along_axis(d, top, 1)], 1)
        all_i = np.concatenate([best_i, top + lo], 1)
        order = np.argsort(all_d, 1)[:, :k]
        best_d, best_i = np.take_along_axis(all_d, order, 1), np.take_along_axis(all_i, order, 1)
    return best_i


def measure_faiss(cfg: PerfConfig, k: int = 10) -> list[Figure]:
    import faiss

    base = retrieval_vectors(cfg.faiss_vectors, cfg.faiss_dim, cfg.seed)
    queries = retrieval_vectors(cfg.faiss_queries, cfg.faiss_dim, cfg.seed + 1)
    started = time.perf_counter()
    exact = brute_force_knn(base, queries, k)
    numpy_s = time.perf_counter() - started

    nlist = max(1, int(np.sqrt(len(base))))  # sqrt(N) lists, k-means on 50 points per list
    started = time.perf_counter()
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(cfg.faiss_dim), cfg.faiss_dim, nlist)
    train = base[np.random.default_rng(cfg.seed).choice(len(base), min(len(base), 50 * nlist), replace=False)]
    index.train(train)
    index.add(base)
    build_s = time.perf_counter() - started
    index.nprobe = max(1, nlist // 32)
    started = time.perf_counter()
    _, approx = index.search(queries, k)
    query_s = time.perf_counter() - started
    recall = float(np.mean([len(set(a) & set(e)) / k for a, e in zip(approx, exact)]))

    flat = faiss.IndexFlatL2(cfg.faiss_dim)
    flat.add(base)
    started = time.perf_counter()
    flat.search(queries, k)
    flat_s = time.perf_counter() - started
    size = f"{cfg.faiss_vectors}x{cfg.faiss_dim} float32, {cfg.faiss_queries} queries"
    return [Figure("faiss", f"IVF{nlist} build (train + add)", "s", build_s, None, note=size),
            Figure("faiss", f"IVF query vs numpy brute force (nprobe {index.nprobe})", "queries/s",
                   cfg.faiss_queries / query_s, cfg.faiss_queries / numpy_s, note=size),
            Figure("faiss", "IndexFlatL2 exact query vs numpy brute force", "queries/s",
                   cfg.faiss_queries / flat_s, cfg.faiss_queries / numpy_s, note=size),
            Figure("faiss", f"IVF recall@{k} vs exact", "recall", recall, None, 0.9, note=size)]


# ---------------------------------------------------------------- entry point

def run_perf(sections: tuple[str, ...] = SECTIONS, preset: str = "full", device: str = "auto",
             on_figures: Callable[[list[Figure]], None] | None = None, **overrides: Any) -> PerfReport:
    """Measure the chosen sections; `on_figures` is called as each section finishes."""
    from agents.contract import resolve_device

    for s in sections:
        if s not in SECTIONS:
            raise unknown("perf section", s, SECTIONS, f"choose from {', '.join(SECTIONS)}")
    cfg = PerfConfig.preset(preset, **overrides)
    device = resolve_device(device)
    report = PerfReport(machine_info(device), {"preset": preset, **asdict(cfg)})
    tmp = Path(tempfile.mkdtemp(prefix="owbench-perf-"))
    measures: dict[str, Callable[[], list[Figure]]] = {
        "collect": lambda: measure_collect(cfg, tmp), "store": lambda: measure_store(cfg, tmp),
        "sampler": lambda: measure_sampler(cfg, tmp), "world-model": lambda: measure_world_model(cfg, device),
        "faiss": lambda: measure_faiss(cfg)}
    try:
        for section in SECTIONS:
            if section in sections:
                try:
                    figures = measures[section]()
                except OwbenchError:
                    raise
                except Exception as exc:  # one broken section must not lose the others' measurements
                    figures = [Figure(section, "section failed", "", None, note=f"{type(exc).__name__}: {exc}")]
                report.figures.extend(figures)
                if on_figures is not None:
                    on_figures(figures)
    except OSError as exc:
        raise OwbenchError(f"perf could not write its temporary data in {tmp} ({exc}); free disk space or set TMPDIR") from exc
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    report.machine["load_average_end"] = os.getloadavg()
    return report
