"""Entry point of the `owbench` console script."""
from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

import click

from datasets_cli.check import check
from datasets_cli.collect import collect
from datasets_cli.common import OwbenchGroup
from datasets_cli.datasets import datasets
from datasets_cli.envs import envs
from datasets_cli.index import index
from datasets_cli.perf import perf
from datasets_cli.pretrain import pretrain
from datasets_cli.run import report, run, suites

try:
    __version__ = version("owbench")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"


@click.group(cls=OwbenchGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="owbench")
def cli() -> None:
    """owbench: offline visual-RL datasets and benchmarks (CoWorld, Vid2Act, WPT and baselines)."""


cli.add_command(envs)
cli.add_command(collect)
cli.add_command(datasets)
cli.add_command(pretrain)
cli.add_command(index)
cli.add_command(perf)
for command in (suites, run, report, check):
    cli.add_command(command)

if __name__ == "__main__":
    cli()
