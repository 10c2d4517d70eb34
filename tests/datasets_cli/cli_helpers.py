"""What the CLI tests share: invoke `owbench` in-process, and assert a one-line error with exit code 2."""
from __future__ import annotations

from click.testing import CliRunner

from datasets_cli.main import cli


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(result, *words: str) -> str:
    """The result is exit code 2 with one line, starting `error:` and naming every word; returns that line."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.output
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]
