"""`owbench datasets`: list, info (+ filmstrip), verify, export, import."""
from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from collectors import dataset_summary, store
from collectors.export import FORMATS, export_dataset, import_dataset
from datasets_cli.common import console, err_console


def _open(dataset: str) -> store.Dataset:
    return store.open_dataset(dataset)


@click.group("datasets")
def datasets() -> None:
    """Inspect, verify, export and import datasets."""


@datasets.command("list")
def list_datasets() -> None:
    """Local datasets under $OWBENCH_HOME/datasets with size, episodes, steps and quality."""
    table = Table(title=Text(f"datasets in {store.datasets_home()}"))
    entries = store.list_local()
    table.add_column("id", no_wrap=True, min_width=max((len(e.id) for e in entries), default=2))  # never cut
    for col in ("quality", "episodes", "steps", "size", "complete"):
        table.add_column(col)
    for entry in entries:
        table.add_row(Text(entry.id), Text(entry.quality), str(entry.episodes), str(entry.steps),
                      f"{entry.size_bytes / 2**20:.1f} MiB", "yes" if entry.complete else "no")
    console.print(table)


@datasets.command("info")
@click.argument("dataset")
@click.option("--filmstrip", type=click.Path(dir_okay=False), default=None, help="Write frames of an episode (PNG).")
@click.option("--episode", type=click.IntRange(0), default=0, show_default=True, help="Episode for the filmstrip.")
@click.option("--frames", type=click.IntRange(1, 64), default=8, show_default=True, help="Frames in the filmstrip.")
def info(dataset: str, filmstrip: str | None, episode: int, frames: int) -> None:
    """Attributes and return statistics of DATASET (an id, path or URL)."""
    ds = _open(dataset)
    table = Table(show_header=False, title=Text(ds.location))
    for key, value in sorted(ds.attrs.items()):
        table.add_row(Text(key), Text(str(value)))  # plain text: values such as "[seed, i]" are not markup
    console.print(table)
    stats = store.return_stats(ds)
    console.print(", ".join(f"{k} {v:.3g}" for k, v in stats.items()))
    console.print(", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                            for k, v in dataset_summary.summary(ds).items()), highlight=False)
    if filmstrip:
        from PIL import Image

        Image.fromarray(store.filmstrip(ds, episode, frames)).save(filmstrip)
        console.print(f"wrote {filmstrip} ({frames} frames of episode {episode})", markup=False)


@datasets.command("verify")
@click.argument("dataset")
def verify(dataset: str) -> None:
    """Check shapes, dtypes, the episode index, the commit record and every chunk's checksum."""
    location = store.resolve_location(dataset)
    problems = store.verify(location)
    if problems:
        for problem in problems:
            err_console.print(f"[bold red]corrupt:[/] {escape(f'{location}: {problem}')}", highlight=False,
                              soft_wrap=True)
        sys.exit(1)
    ds = _open(location)
    console.print(f"ok: {location} ({ds.n_episodes} episodes, {ds.n_steps} rows, all checksums match)", markup=False)


@datasets.command("export")
@click.argument("dataset")
@click.option("--format", "fmt", type=click.Choice(FORMATS), required=True,
              help="hdf5: V-D4RL shards; npz: DreamerV2/CoWorld episode folder.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: beside the dataset, <dataset>.<format>).")
@click.option("--image-size", type=click.IntRange(16, 1024), default=None,
              help="Re-render frames at this size from physics (e.g. 84 for V-D4RL); default: stored frames.")
@click.option("--episodes-per-shard", type=click.IntRange(1), default=100, show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace files in a non-empty output folder.")
def export(dataset: str, fmt: str, out: str | None, image_size: int | None, episodes_per_shard: int,
           overwrite: bool) -> None:
    """Export DATASET as V-D4RL hdf5 or DreamerV2/CoWorld npz."""
    location = store.resolve_location(dataset)
    out = out or f"{location.removesuffix('.zarr')}.{fmt}"
    files = export_dataset(location, out, fmt, image_size=image_size, episodes_per_shard=episodes_per_shard,
                           overwrite=overwrite)
    console.print(f"wrote {len(files)} {fmt} files to {out}", markup=False)


@datasets.command("import")
@click.argument("path", type=click.Path(exists=True))
@click.option("--out", default=None, help="Dataset id, path or URL (default: imported/<folder name>-v1).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None, help="Default: detected.")
@click.option("--env", "env_id", default=None, help="Task id, for data without owbench metadata.")
@click.option("--quality", default=None, help="Quality label, for data without owbench metadata.")
@click.option("--overwrite", is_flag=True, help="Replace an existing dataset at --out.")
def import_(path: str, out: str | None, fmt: str | None, env_id: str | None, quality: str | None,
            overwrite: bool) -> None:
    """Import an hdf5 or npz folder (PATH) into a dataset store."""
    out = out or f"imported/{Path(path).name.removesuffix('.hdf5')}-v1"
    ds = import_dataset(path, out, fmt=fmt, env_id=env_id, quality=quality, overwrite=overwrite)
    console.print(f"imported {ds.n_episodes} episodes ({ds.n_steps} rows) into {ds.location}", markup=False)
