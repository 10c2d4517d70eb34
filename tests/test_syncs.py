"""No host syncs in any method's update (issue 21, item 5), and the precision rules of item 6, checked on CPU.

On a GPU every read of a tensor's value by the host (`.item()`, `float(t)`, `int(t)`, `if t:`, `.tolist()`,
boolean-mask indexing, `.nonzero()`, `.cpu()`) waits for the device to finish all queued work. On CPU the
same calls are counted with a TorchFunctionMode, attributed to the line of owbench code that made them
(torch's own, e.g. Adam reading its CPU-resident `step`, are not the project's to avoid).
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import torch
from torch.overrides import TorchFunctionMode

from agents import devices, training
from test_contract import METHODS, build, synthetic_batch

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tuple(str(ROOT / p) for p in ("agents", "baselines", "collectors", "benchmark"))
HOST_READS = {"item", "tolist", "__bool__", "__int__", "__float__", "__index__", "nonzero", "argwhere",
              "masked_select", "cpu", "numpy", "unique"}


class HostReads(TorchFunctionMode):
    """Records `file:line` of every host read of a tensor made by owbench code (or `also`) inside the block."""

    def __init__(self, also: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.sites: list[str] = []
        self.files = PROJECT + also

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        name = getattr(func, "__name__", "")
        mask_index = name in ("__getitem__", "__setitem__") and _has_bool_index(args[1] if len(args) > 1 else None)
        if name in HOST_READS or mask_index:
            caller = sys._getframe(1)
            if caller.f_code.co_filename.startswith(self.files):
                self.sites.append(f"{Path(caller.f_code.co_filename).relative_to(ROOT)}:{caller.f_lineno} {name}")
        return func(*args, **(kwargs or {}))


def _has_bool_index(index: Any) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in items)


def test_the_counter_sees_the_syncs_it_is_meant_to_catch():
    with HostReads(also=(__file__,)) as reads:
        x = torch.randn(4)
        training.to_floats({"a": x.sum()})  # tolist: one read
        x[x > 0].sum()  # boolean mask
        x[:2].sum()  # a slice: no read
        if x.sum() > 0:  # __bool__
            float(x[0])
    assert [s.split()[-1] for s in reads.sites][:3] == ["tolist", "__getitem__", "__bool__"]


@pytest.mark.parametrize("name", METHODS)
def test_update_makes_no_host_reads(name):
    agent, config, env, kind = build(name)
    agent.update(synthetic_batch(kind, config, env, seed=0))  # first update: lazy state (optimiser, buffers)
    with HostReads() as reads:
        for i in range(1, 4):  # past LOMPO's model phase (2 smoke updates) and every SAC schedule
            agent.update(synthetic_batch(kind, config, env, seed=i))
    assert reads.sites == [], f"{name}: host reads in update at {reads.sites}"


def test_coworld_source_update_with_relabelled_target_rewards_makes_no_host_reads():
    agent, config, env, kind = build("coworld")
    agent.update_source(0, synthetic_batch(kind, config, env, 1), synthetic_batch(kind, config, env, 2))
    with HostReads() as reads:
        agent.update(synthetic_batch(kind, config, env, 3))
        agent.update_source(0, synthetic_batch(kind, config, env, 4), synthetic_batch(kind, config, env, 5))
    assert reads.sites == []


def test_metrics_logger_reads_the_device_once_per_row(tmp_path):
    logger = training.MetricsLogger(tmp_path, every=5, tensorboard=False)
    with HostReads() as reads:
        rows = [logger.log(step, {"loss": torch.tensor(float(step)), "steps": step}) for step in range(1, 11)]
    assert [s.split()[-1] for s in reads.sites] == ["tolist", "tolist"]  # two rows, one read each
    assert rows[4] == {"loss": 3.0, "steps": 3.0} and rows[9] == {"loss": 8.0, "steps": 8.0}
    assert all(r is None for i, r in enumerate(rows) if i not in (4, 9))


# -- precision (item 6) ------------------------------------------------------------------------------------

@pytest.fixture
def bf16_on_cpu(monkeypatch):
    """Autocast as on an Ampere GPU: bfloat16 wherever a method asks for mixed precision."""
    monkeypatch.setattr(devices, "amp_dtype", lambda device, cpu=False: torch.bfloat16)


@pytest.mark.parametrize("name", ["dreamerv2", "coworld", "wpt", "vid2act", "lompo", "curl", "cql", "drq+bc", "bc",
                                  "offline-dv2", "dv2-finetune"])
def test_updates_run_under_bfloat16_autocast(bf16_on_cpu, name):
    agent, config, env, kind = build(name)
    for i in range(3):
        metrics = agent.update(synthetic_batch(kind, config, env, seed=i))
    assert all(torch.isfinite(v) for v in metrics.values()), name


def test_model_free_convs_run_in_bfloat16_and_hand_float32_features_on(bf16_on_cpu):
    agent, config, env, _ = build("cql")
    conv_dtypes = []
    agent.critic.encoder.trunk.convs[0].register_forward_hook(lambda m, args, out: conv_dtypes.append(out.dtype))
    obs = agent.frames(synthetic_batch("transition", config, env)["obs"])
    conv = agent.critic.encoder.trunk(obs)
    q1, q2 = agent.critic.q(agent.critic.encoder.head(conv), torch.zeros(len(obs), env.action_dim))
    assert conv_dtypes == [torch.bfloat16] and conv.dtype == q1.dtype == q2.dtype == torch.float32


def test_reward_head_and_critic_output_float32_under_bfloat16_autocast(bf16_on_cpu):
    agent, *_ = build("dreamerv2")
    feat = torch.full((2, agent.wm.feat_dim), 0.3)
    with agent.precision():
        hidden = agent.behavior.actor(feat)
        reward, value = agent.wm.heads["reward"](feat), agent.behavior.critic(feat)
        target = agent.behavior.target_critic(feat)
    assert hidden.dtype == torch.bfloat16  # autocast is on ...
    assert reward.dtype == value.dtype == target.dtype == torch.float32  # ... but not for rewards and values


@pytest.mark.parametrize("name", ["wpt", "lompo", "coworld", "vid2act"])
def test_every_world_model_reward_is_computed_in_float32_under_autocast(bf16_on_cpu, name):
    agent, *_ = build(name)
    target = getattr(agent, "target", agent)  # CoWorld: the target agent
    feat = torch.full((2, target.wm.feat_dim), 0.3)
    hooks = []  # the dtype the reward's output layer computes in (a .float() afterwards would hide bfloat16)
    reward_net = getattr(target.wm, "reward_model", None) or target.wm.heads["reward"]
    reward_net.net[-1].register_forward_hook(lambda m, args, out: hooks.append(out.dtype))
    with devices.autocast("cpu"):
        target.wm.reward(feat)
    assert hooks == [torch.float32], name


@pytest.mark.parametrize("capability, dtype", [((7, 5), None), ((8, 0), torch.bfloat16), ((9, 0), torch.bfloat16)])
def test_bfloat16_only_where_the_gpu_computes_it_natively(monkeypatch, capability, dtype):
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
    assert devices.amp_dtype("cuda") is dtype  # Turing (7.5) emulates bfloat16: float32 instead
    assert devices.amp_dtype("cpu") is None  # CPUs only when asked (cpu_amp) and native


def test_tf32_is_switched_on_for_cuda_jobs_only():
    before = torch.get_float32_matmul_precision()
    try:
        devices.set_tf32(False)
        devices.configure("cpu")
        assert torch.get_float32_matmul_precision() == "highest"
        devices.configure("cuda")
        assert torch.get_float32_matmul_precision() == "high" and torch.backends.cudnn.allow_tf32
    finally:
        torch.set_float32_matmul_precision(before)
