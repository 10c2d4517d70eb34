"""`owbench perf`: the project's way against the naive way, figure by figure, with the ratio."""
from __future__ import annotations

import json

import click
from rich.table import Table

from benchmark.perf import SECTIONS, Figure, run_perf
from datasets_cli.common import console


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def _table(figures: list[Figure], title: str) -> Table:
    table = Table(title=title)
    for col in ("figure", "unit", "project", "naive", "ratio", "target", "pass", "note"):
        table.add_column(col, justify="right" if col in ("project", "naive", "ratio") else "left")
    for f in figures:
        verdict = {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[f.passed]
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        table.add_row(f.name, f.unit, _number(f.project), _number(f.naive), ratio, f.target_text, verdict, f.note)
    return table


@click.command("perf")
@click.option("--only", default=",".join(SECTIONS), show_default=True,
              help="Comma-separated sections to measure.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (machine, config, figures) instead.")
@click.option("--quick", is_flag=True, help="Smaller sizes (10k-frame sampler data, 100-step episodes): ~minutes.")
@click.option("--device", default="auto", show_default=True, help="Device for the world-model figures.")
def perf(only: str, as_json: bool, quick: bool, device: str) -> None:
    """Benchmark collection, the store, the sampler, world-model updates and Faiss retrieval."""
    sections = tuple(s.strip() for s in only.split(",") if s.strip())
    show = None if as_json else (lambda figs: console.print(_table(figs, figs[0].section)))
    report = run_perf(sections, "quick" if quick else "full", device, on_figures=show)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    else:
        m = report.machine
        console.print(f"machine: {m['cpu']}, {m['cores']} cores, load average {m['load_average'][0]:.2f} "
                      f"at the end, device {m['device']}")
