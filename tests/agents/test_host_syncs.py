"""An update asks no tensor for a Python truth value: on CUDA each such test (`if t:`, `if not t.all():`,
a distribution's argument check) waits for the GPU. scripts/gpu_check.sh counted 30 per paper-preset
update of the world-model methods before ActionDist stopped validating its arguments; on a CPU the same
calls are counted here through `torch.Tensor.__bool__`."""
from __future__ import annotations

import pytest
import torch

from benchmark import gpu_check


@pytest.mark.parametrize("method", ["dreamerv2", "coworld", "wpt", "lompo", "cql"])
def test_an_update_makes_no_tensor_truth_tests(method, monkeypatch):
    agent, config, kind = gpu_check.build(method, "smoke", "cpu", {})
    batch = gpu_check.device_batch(kind, config, "cpu")
    agent.update(batch)  # lazy state first
    calls = []
    original = torch.Tensor.__bool__

    def counted(self):
        calls.append(tuple(self.shape))
        return original(self)

    monkeypatch.setattr(torch.Tensor, "__bool__", counted)
    agent.update(batch)
    assert calls == []
