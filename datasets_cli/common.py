"""What every command shares: the rich console, one-line errors with exit code 2, the collection summary."""
from __future__ import annotations

import errno
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from collectors.errors import OwbenchError

console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> "NoReturn":  # noqa: F821
    """Print one line on stderr and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


# what the disk refuses, and what the user can do about it
DISK_ERRORS = {errno.ENOSPC: "free some space or choose another --out", errno.EDQUOT: "free some space or choose "
               "another --out", errno.EROFS: "the filesystem is read-only: choose another --out",
               errno.EACCES: "choose an --out you may write to", errno.EPERM: "choose an --out you may write to",
               errno.ENAMETOOLONG: "choose a shorter --out"}


def disk_error(exc: OSError) -> "NoReturn":  # noqa: F821
    fail(f"cannot write {exc.filename or 'the output'}: {exc.strerror}; {DISK_ERRORS[exc.errno]}")


class OwbenchGroup(click.Group):
    """A click group that turns user mistakes into one line on stderr and exit code 2."""

    def main(self, *args: Any, **kwargs: Any) -> Any:
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.Abort:
            fail("aborted")
        except click.UsageError as exc:
            cmd = exc.ctx.command_path if exc.ctx else "owbench"
            fail(f"{exc.format_message()} (see `{cmd} --help`)")
        except click.ClickException as exc:
            fail(exc.format_message())
        except OwbenchError as exc:
            fail(str(exc))
        except OSError as exc:
            if exc.errno not in DISK_ERRORS:
                raise
            disk_error(exc)
        if isinstance(rv, int) and rv:
            sys.exit(rv)
        return rv

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OwbenchError as exc:
            fail(str(exc))
        except OSError as exc:  # a full or read-only disk, a name too long
            if exc.errno not in DISK_ERRORS:
                raise
            disk_error(exc)


def print_written(summary: Any) -> None:
    """Where a collection wrote, whether it resumed, and the dataset's size and returns."""
    resumed = f", resumed after {summary.resumed_from} committed episodes" if summary.resumed_from else ""
    console.print(f"wrote {summary.location}{resumed}", markup=False)
    console.print(f"{summary.episodes} episodes, {summary.steps} steps, return {summary.mean_return:.1f} "
                  f"± {summary.std_return:.1f}, {summary.seconds:.1f} s")
