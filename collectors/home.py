"""Where owbench keeps datasets, indexes and runs: `$OWBENCH_HOME` (default `~/.owbench`)."""
from __future__ import annotations

import os
from pathlib import Path


def owbench_home() -> Path:
    """The root folder for datasets, artefacts and runs."""
    return Path(os.environ.get("OWBENCH_HOME", "~/.owbench")).expanduser()


def datasets_home() -> Path:
    return owbench_home() / "datasets"
