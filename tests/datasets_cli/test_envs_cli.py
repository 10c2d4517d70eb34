"""`owbench envs` and the CLI's error contract: one line, exit code 2."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
from click.testing import CliRunner
from PIL import Image

from datasets_cli.main import cli


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and "owbench" in result.output


def test_envs_list_filters_by_suite():
    result = CliRunner().invoke(cli, ["envs", "--suite", "transfer"])
    assert result.exit_code == 0
    assert "walker_downhill" in result.output and "walker_walk" not in result.output


def test_envs_show_writes_frame(tmp_path):
    out = tmp_path / "frame.png"
    result = CliRunner().invoke(cli, ["envs", "show", "walker_uphill", "--frame", str(out)])
    assert result.exit_code == 0, result.output
    frame = np.asarray(Image.open(out))
    assert frame.shape == (64, 64, 3) and frame.std() > 5


def _run(*args):
    return subprocess.run([sys.executable, "-m", "datasets_cli.main", *args], capture_output=True, text=True)


def test_unknown_env_is_one_line_exit_2():
    proc = _run("envs", "show", "walker_dowhill")
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "walker_downhill" in lines[0] and "Traceback" not in proc.stderr


def test_bad_flag_is_one_line_exit_2():
    proc = _run("envs", "--bogus")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
