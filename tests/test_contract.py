"""The one contract test every method runs through (DESIGN.md §2, agents/contract.py).

For each method name: build it with its `smoke` preset on CPU, feed it a tiny synthetic batch of
its batch kind ("sequence" / "transition" / "none", benchmark/methods.py) and check that
- `update` returns finite scalar metrics kept as detached 0-d tensors (read by the logger, not by update),
- `act` returns an action in [-1, 1]^A and is deterministic in eval mode,
- a checkpoint (agents.training.Checkpointer: read back with weights_only=True) -> a fresh agent (other
  seed) gives identical actions.
To add a method, append its name to METHODS.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
import torch

from agents.contract import Agent
from agents.training import Checkpointer, to_floats
from benchmark.methods import get_method
from collectors.envs import EnvSpec, spec

METHODS = ["random", "dreamerv2", "vid2act", "wpt", "coworld", "curl", "cql", "curl+cql", "lompo", "drq+bc", "bc",
           "offline-dv2", "dv2-finetune"]
STOCHASTIC_IN_EVAL = {"random"}  # uniform random by definition; its determinism is its RNG state (round trip)
ENV_ID = "walker_walk"  # 6-dim actions, 24-dim state


def image_size(config: Any) -> int:
    return int(getattr(config, "image_size", 64))


def synthetic_batch(kind: str, config: Any, env: EnvSpec, seed: int = 0) -> dict[str, np.ndarray]:
    """A tiny batch in the dataset row convention for a batch kind, sized by the config's
    `batch_size`, `seq_len`, `frame_stack` and `image_size` where it has them."""
    rng = np.random.default_rng(seed)
    S, A, D = image_size(config), env.action_dim, env.state_dim
    B = int(getattr(config, "batch_size", 4))
    if kind == "none":
        return {}
    if kind == "sequence":
        T = int(getattr(config, "seq_len", 8))
        is_first = np.zeros((B, T), bool)
        is_first[:, 0] = True
        is_first[0, T // 2] = True  # an episode boundary inside a window
        action = rng.uniform(-1, 1, (B, T, A)).astype(np.float32) * ~is_first[..., None]
        return {"image": rng.integers(0, 256, (B, T, S, S, 3), dtype=np.uint8), "action": action,
                "reward": rng.random((B, T), dtype=np.float32), "discount": np.ones((B, T), np.float32),
                "is_first": is_first, "is_last": np.roll(is_first, -1, 1), "is_terminal": np.zeros((B, T), bool),
                "state": rng.normal(size=(B, T, D)).astype(np.float32)}
    if kind == "transition":
        C = 3 * int(getattr(config, "frame_stack", 3))
        return {"obs": rng.integers(0, 256, (B, S, S, C), dtype=np.uint8),
                "next_obs": rng.integers(0, 256, (B, S, S, C), dtype=np.uint8),
                "action": rng.uniform(-1, 1, (B, A)).astype(np.float32),
                "reward": rng.random(B, dtype=np.float32), "discount": np.full(B, 0.99, np.float32)}
    raise ValueError(f"unknown batch kind {kind!r}")


def observations(config: Any, env: EnvSpec, n: int = 3, seed: int = 1) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    S = image_size(config)
    return [{"image": rng.integers(0, 256, (S, S, 3), dtype=np.uint8),
             "state": rng.normal(size=env.state_dim).astype(np.float32)} for _ in range(n)]


def rollout(agent: Agent, obs_seq: list[dict[str, np.ndarray]], eval_mode: bool = True) -> np.ndarray:
    state, actions = None, []
    for obs in obs_seq:
        action, state = agent.act(obs, state, eval_mode=eval_mode)
        actions.append(np.asarray(action))
    return np.stack(actions)


def build(name: str, seed: int = 0) -> tuple[Agent, Any, EnvSpec, str]:
    method = get_method(name)
    module = method.load()
    env = spec(ENV_ID)
    config = module.Config.preset("smoke")
    return module.make_agent(env, config, "cpu", seed), config, env, method.batch


@pytest.fixture(autouse=True)
def _seeded():
    """Seeded (tests/conftest.py sets one intra-op thread)."""
    torch.manual_seed(0)


@pytest.mark.parametrize("name", METHODS)
def test_update_returns_finite_metrics_as_tensors(name):
    agent, config, env, kind = build(name)
    assert isinstance(agent, Agent)
    for i in range(2):
        metrics = agent.update(synthetic_batch(kind, config, env, seed=i))
        assert isinstance(metrics, dict)
        for key, value in metrics.items():
            assert isinstance(key, str) and isinstance(value, torch.Tensor), f"{name}: metric {key}={value!r}"
            assert value.ndim == 0 and not value.requires_grad, f"{name}: metric {key} is {value!r}"
        for key, value in to_floats(metrics).items():
            assert math.isfinite(value), f"{name}: metric {key} is {value}"


@pytest.mark.parametrize("name", METHODS)
def test_act_is_in_range_and_deterministic_in_eval_mode(name):
    agent, config, env, kind = build(name)
    agent.update(synthetic_batch(kind, config, env))
    obs = observations(config, env)
    first = rollout(agent, obs)
    assert first.shape == (len(obs), env.action_dim)
    assert np.all(np.abs(first) <= 1.0) and np.all(np.isfinite(first))
    explore = rollout(agent, obs, eval_mode=False)
    assert explore.shape == first.shape and np.all(np.abs(explore) <= 1.0)
    if name not in STOCHASTIC_IN_EVAL:
        np.testing.assert_array_equal(first, rollout(agent, obs), err_msg=f"{name}: eval-mode act is not deterministic")


@pytest.mark.parametrize("name", METHODS)
def test_checkpoint_round_trip_gives_identical_actions(name, tmp_path):
    agent, config, env, kind = build(name, seed=0)
    agent.update(synthetic_batch(kind, config, env))
    checkpoints = Checkpointer(tmp_path)
    checkpoints.save(1, agent)  # every state_dict holds only what weights_only=True reads back
    fresh, *_ = build(name, seed=1)
    assert checkpoints.load(fresh)["step"] == 1
    obs = observations(config, env)
    np.testing.assert_array_equal(rollout(agent, obs), rollout(fresh, obs),
                                  err_msg=f"{name}: a restored agent acts differently")
