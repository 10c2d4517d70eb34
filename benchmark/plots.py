"""PNG figures: learning curves per pair, and filmstrips of one evaluation episode per (method, pair)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from benchmark.rundir import FRAMES  # noqa: E402

FILMSTRIP_FRAMES = 8
REFERENCE_COLOUR = "0.45"  # the random policy: grey, never one of the methods' colours


def learning_curves(results: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per pair: mean return over seeds vs update step per method, ± std across seeds shaded.

    Uses the periodic evaluations; a method without any (evaluation-only) shows its final evaluation as a
    dashed level with its band; the random policy is grey with its band labelled.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for (source, target), pair in results.groupby(["source", "target"], sort=False):
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
        for method, rows in pair.groupby("method", sort=False):
            periodic = rows[rows["phase"] == "eval"]
            rows = periodic if len(periodic) else rows[rows["phase"] == "final"]
            per_seed = rows.groupby(["step", "seed"])["return"].mean().groupby(level="step")
            mean, std = per_seed.mean(), per_seed.std(ddof=0).fillna(0.0)
            if len(mean) == 1:  # evaluated once, untrained (random policy): a reference level
                grey = {"color": REFERENCE_COLOUR} if method == "random" else {}
                line = ax.axhline(mean.iloc[0], linestyle="--", label=f"{method} (mean)", **grey)
                ax.axhspan(mean.iloc[0] - std.iloc[0], mean.iloc[0] + std.iloc[0], color=line.get_color(), alpha=0.15,
                           label=f"{method} ± std across seeds")
                continue
            (line,) = ax.plot(mean.index, mean.to_numpy(), marker="o", markersize=3, label=method)
            ax.fill_between(mean.index, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        ax.set(title=f"{source} → {target}", xlabel="update step", ylabel="evaluation return")
        paths.append(_save(fig, ax, out_dir / f"{source}__{target}.png"))
    return paths


def _save(fig: plt.Figure, ax: plt.Axes, path: Path) -> Path:
    """Grid, legend and tight layout, then write `path` and free the figure."""
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def sensitivity_plots(table: pd.DataFrame, out_dir: Path) -> list[Path]:
    """One PNG per swept method: mean final return (± std across seeds) against the swept value, a line per
    pair; a grid over several fields is plotted against its points in order."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fixed = {"method", "pair", "mean", "std across seeds", "seeds"}
    for method, rows in table.groupby("method", sort=False):
        keys = [c for c in rows.columns if c not in fixed and rows[c].notna().any()]
        fig, ax = plt.subplots(figsize=(5, 3.5), dpi=100)
        for pair, line in rows.groupby("pair", sort=False):
            line = line.sort_values(keys)
            numeric = len(keys) == 1 and pd.api.types.is_numeric_dtype(line[keys[0]])
            x = line[keys[0]].to_numpy(float) if numeric else np.arange(len(line))
            ax.errorbar(x, line["mean"], yerr=line["std across seeds"], marker="o", capsize=3, label=pair)
            if not numeric:
                ax.set_xticks(x, [", ".join(f"{k}={r[k]}" for k in keys) for _, r in line.iterrows()],
                              rotation=30, fontsize=7)
        ax.set(title=f"{method}: sensitivity", xlabel=keys[0] if len(keys) == 1 else "setting",
               ylabel="final evaluation return")
        paths.append(_save(fig, ax, out_dir / f"{method}.png"))
    return paths


def filmstrip(frames: np.ndarray, path: Path, title: str, n: int = FILMSTRIP_FRAMES) -> Path:
    """`n` frames evenly spaced over an episode, side by side with their time step."""
    steps = np.linspace(0, len(frames) - 1, min(n, len(frames))).round().astype(int)
    fig, axes = plt.subplots(1, len(steps), figsize=(1.4 * len(steps), 1.8), dpi=100, squeeze=False)
    for ax, t in zip(axes[0], steps):
        ax.imshow(frames[t])
        ax.set_title(f"t={t}", fontsize=7)
        ax.axis("off")
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def filmstrips(jobs: list[tuple[Path, dict]], out_dir: Path) -> list[Path]:
    """One filmstrip per (method, pair): the first evaluation episode of its lowest seed with frames."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    chosen: dict[tuple[str, str, str], tuple[Path, dict]] = {}
    for run_dir, rec in sorted(jobs, key=lambda j: j[1]["seed"]):
        key = (rec["method"], rec["source"], rec["target"])
        if key not in chosen and (run_dir / FRAMES).exists():
            chosen[key] = (run_dir, rec)
    paths = []
    for (method, source, target), (run_dir, rec) in chosen.items():
        with np.load(run_dir / FRAMES) as data:
            frames = data["frames"]
        title = f"{method}: {source} → {target}, seed {rec['seed']}, return {rec['returns'][0]:.1f}"
        paths.append(filmstrip(frames, out_dir / f"{method}__{source}__{target}.png", title))
    return paths
