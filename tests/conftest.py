"""Shared fixtures: every test runs with a private OWBENCH_HOME."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def owbench_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("owbench_home")
    monkeypatch.setenv("OWBENCH_HOME", str(home))
    return home
