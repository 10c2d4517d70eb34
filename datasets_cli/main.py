"""Entry point of the `owbench` console script."""
from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

import click

from datasets_cli.common import OwbenchGroup

# command -> its module in datasets_cli, imported only when the command runs (or help lists it), so that
# `owbench collect` and the render processes it spawns (which re-import this entry point) skip torch & co.
COMMANDS = {"envs": "envs", "collect": "collect", "datasets": "datasets", "pretrain": "pretrain", "index": "index",
            "perf": "perf", "suites": "run", "run": "run", "report": "run", "check": "check"}

try:
    __version__ = version("owbench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"


class LazyGroup(OwbenchGroup):
    """The owbench group, its subcommands loaded on first use (click's lazy-loading pattern)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        return getattr(importlib.import_module(f"datasets_cli.{COMMANDS[name]}"), name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="owbench")
def cli() -> None:
    """owbench: offline visual-RL datasets and benchmarks (CoWorld, Vid2Act, WPT and baselines)."""


if __name__ == "__main__":
    cli()
