"""`owbench index build|query`: the Faiss retrieval index over a pool of datasets (WPT §3.3)."""
from __future__ import annotations

import click
from rich.table import Table
from rich.text import Text

from datasets_cli.common import console


@click.group("index")
def index() -> None:
    """Build and query trajectory-retrieval indices (first observation of every trajectory)."""


@index.command("build")
@click.option("--datasets", "datasets", multiple=True, required=True,
              help="Dataset ids, paths or URLs; repeat the option or separate with commas.")
@click.option("--encoder", required=True,
              help="pixels (pooled 16x16), random-proj (128-d projection) or wpt:PATH (a pretrained WPT encoder).")
@click.option("--every", type=click.IntRange(0), default=0, show_default=True,
              help="Also key every k-th frame of each trajectory (0: first observations only).")
@click.option("--kind", type=click.Choice(["auto", "flat", "ivf", "hnsw"]), default="auto", show_default=True,
              help="Faiss index; auto = exact flat for small pools, IVF for large ones.")
@click.option("--nprobe", type=click.IntRange(1), default=None, help="IVF lists searched per query [nlist/32, >= 8].")
@click.option("--out", type=click.Path(dir_okay=False), required=True, help="Index file to write (atomically).")
@click.option("--device", default="cpu", show_default=True, help="Device of a wpt:PATH encoder.")
def build(datasets: tuple[str, ...], encoder: str, every: int, kind: str, nprobe: int | None, out: str,
          device: str) -> None:
    """Embed the pool with ENCODER and save a Faiss index with its id -> (dataset, episode, step) map."""
    from agents import retrieval

    names = [d.strip() for item in datasets for d in item.split(",") if d.strip()]
    extractor = retrieval.make_extractor(encoder, device)
    idx = retrieval.build_retrieval_index(names, extractor, every=every, kind=kind, nprobe=nprobe)
    path = idx.save(out)
    meta = idx.meta
    console.print(f"indexed {meta['count']} keys of {len(idx.datasets)} datasets with {meta['encoder']} "
                  f"(dim {meta['dim']}, {meta['kind']}, hash {meta['encoder_hash']}) -> {path}", markup=False)


@index.command("query")
@click.argument("index_path", metavar="INDEX", type=click.Path(dir_okay=False))
@click.option("--image", type=click.Path(dir_okay=False), default=None, help="Query image (PNG).")
@click.option("--from-env", "env_id", default=None, help="Query with the first observation of this environment.")
@click.option("--seed", type=int, default=0, show_default=True, help="Reset seed for --from-env.")
@click.option("-k", "k", type=click.IntRange(1), default=5, show_default=True, help="Trajectories to return.")
@click.option("--encoder", default=None, help="Encoder to embed the query [the one the index was built with].")
@click.option("--device", default="cpu", show_default=True, help="Device of a wpt:PATH encoder.")
def query(index_path: str, image: str | None, env_id: str | None, seed: int, k: int, encoder: str | None,
          device: str) -> None:
    """The K trajectories whose key frames are nearest to a query image."""
    from agents import retrieval

    if (image is None) == (env_id is None):
        raise click.UsageError("give exactly one of --image PNG or --from-env ID")
    idx = retrieval.RetrievalIndex.load(index_path)
    extractor = retrieval.make_extractor(encoder or idx.meta["encoder"], device)
    size = idx.meta["image_size"]
    frame = retrieval.load_png(image, size) if image else retrieval.first_observation(env_id, size, seed)
    hits = idx.query(frame, extractor, k)[0]
    table = Table(title=f"{len(hits)} nearest trajectories ({idx.meta['encoder']}, {idx.meta['kind']})")
    for col in ("rank", "env", "episode", "step", "distance"):
        table.add_column(col, no_wrap=True)
    table.add_column("dataset", overflow="fold")
    env_of = dict(zip(idx.datasets, idx.meta["env_ids"]))
    for rank, hit in enumerate(hits, 1):
        table.add_row(str(rank), env_of[hit.dataset], str(hit.episode), str(hit.step), f"{hit.distance:.4f}",
                      Text(hit.dataset))
    console.print(table)
