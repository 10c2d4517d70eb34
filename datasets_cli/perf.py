"""`owbench perf`: the project's way against the naive way, figure by figure, with the ratio."""
from __future__ import annotations

import json

import click
from rich.table import Table

from benchmark.perf import SECTIONS, Figure, format_number, run_perf
from datasets_cli.common import console


def _table(figures: list[Figure], title: str) -> Table:
    notes = "; ".join(dict.fromkeys(f.note for f in figures if f.note))
    table = Table(title=title, caption=notes or None)
    recorded = any(f.recorded is not None for f in figures)
    for col in ("figure", "project", "naive", "ratio", "target", "pass") + (("recorded elsewhere",) if recorded else ()):
        table.add_column(col, justify="left" if col in ("figure", "recorded elsewhere") else "right")
    for f in figures:
        verdict = {True: "[green]yes[/]", False: "[red]no[/]", None: ""}[f.passed]
        ratio = "-" if f.ratio is None else f"{f.ratio:.2f}x"
        table.add_row(f"{f.name} ({f.unit})", format_number(f.project), format_number(f.naive), ratio, f.target_text,
                      verdict, *((f.recorded_text,) if recorded else ()))
    return table


@click.command("perf")
@click.option("--only", default=",".join(SECTIONS), show_default=True,
              help="Comma-separated sections to measure.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document (machine, config, figures) instead.")
@click.option("--markdown", is_flag=True, help="Also print the figures as one markdown table at the end.")
@click.option("--quick", is_flag=True,
              help="Smaller sizes (10k-frame sampler data, 100-step episodes, world model at 16x16): about a minute.")
@click.option("--device", default="auto", show_default=True, help="Device for the world-model figures.")
def perf(only: str, as_json: bool, markdown: bool, quick: bool, device: str) -> None:
    """Benchmark collection, the store, the sampler, world-model updates and Faiss retrieval."""
    sections = tuple(s.strip() for s in only.split(",") if s.strip())
    show = None if as_json else (lambda figs: console.print(_table(figs, figs[0].section)))
    report = run_perf(sections, "quick" if quick else "full", device, on_figures=show)
    if as_json:
        click.echo(json.dumps(report.as_dict(), indent=2))
    elif markdown:
        click.echo(report.markdown())  # the table, then the footer
    else:
        for line in report.footer():
            console.print(line, soft_wrap=True)
