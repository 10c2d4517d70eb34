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


class Crash(Exception):
    """A simulated kill inside a collection (see `killed_before_commit`)."""


@pytest.fixture
def killed_before_commit(monkeypatch):
    """`killed_before_commit(when, run)`: call `run()` while `DatasetWriter.append_episode` raises Crash
    instead of committing the first episode for which `when(writer, meta)` holds (a kill after the agent's
    checkpoint, before the commit); asserts the crash and restores the writer."""
    from collectors import store

    append = store.DatasetWriter.append_episode

    def run_killed(when, run) -> None:
        def crashing(self, steps, meta):
            if when(self, meta):
                raise Crash
            append(self, steps, meta)

        monkeypatch.setattr(store.DatasetWriter, "append_episode", crashing)
        with pytest.raises(Crash):
            run()
        monkeypatch.setattr(store.DatasetWriter, "append_episode", append)

    return run_killed
