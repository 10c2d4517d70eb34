"""Shared fixtures: every test runs with a private OWBENCH_HOME."""
from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def owbench_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.mktemp("owbench_home")
    monkeypatch.setenv("OWBENCH_HOME", str(home))
    return home


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one intra-op thread; two threads spin against each other on 2 cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
