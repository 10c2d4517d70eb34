"""LOMPO on the shared world model, with synthetic sequence batches."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from baselines import lompo
from benchmark.methods import get_method
from collectors.envs.base import EnvSpec

SPEC = EnvSpec(id="synthetic", suite="dmc", action_dim=2, state_dim=4, action_repeat=2, time_limit=20, camera=0)


def sequence_batch(rng: np.random.Generator, batch: int = 4, length: int = 8) -> dict:
    is_first = np.zeros((batch, length), bool)
    is_first[:, 0] = True
    is_first[0, length // 2] = True  # one window crosses into a new episode
    return {"image": rng.integers(0, 256, (batch, length, 32, 32, 3), dtype=np.uint8),
            "action": rng.uniform(-1, 1, (batch, length, 2)).astype(np.float32),
            "reward": rng.normal(size=(batch, length)).astype(np.float32),
            "discount": np.ones((batch, length), np.float32), "is_first": is_first,
            "is_last": np.zeros((batch, length), bool), "is_terminal": np.zeros((batch, length), bool)}


def make(**overrides) -> lompo.LOMPOAgent:
    config = lompo.Config.preset("smoke", image_size=32, **overrides)
    return get_method("lompo").load().make_agent(SPEC, config, "cpu", seed=0)


@pytest.mark.parametrize("classes", [0, 4])  # Gaussian (LOMPO) and discrete (DreamerV2) latents
def test_model_then_agent_updates_act_and_checkpoint(classes: int) -> None:
    rng = np.random.default_rng(0)
    agent = make(classes=classes)
    model_metrics = agent.update(sequence_batch(rng))
    assert {"model_loss", "ensemble_kl"} <= model_metrics.keys()
    agent.update(sequence_batch(rng))
    metrics = agent.update(sequence_batch(rng))  # past model_train_steps: the actor-critic phase
    assert {"critic_loss", "actor_loss", "imag_penalty", "real_reward"} <= metrics.keys()
    assert all(np.isfinite(v) for v in metrics.values()) and metrics["imag_penalty"] >= 0

    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    action, state = agent.act({"image": image})
    assert action.shape == (2,) and action.dtype == np.float32 and np.all(np.abs(action) <= 1)
    a1, _ = agent.act({"image": image}, state, eval_mode=True)
    buffer = io.BytesIO()
    torch.save(agent.state_dict(), buffer)
    buffer.seek(0)
    restored = make(classes=classes)
    restored.load_state_dict(torch.load(buffer, weights_only=False))
    assert restored.updates == agent.updates
    np.testing.assert_allclose(restored.act({"image": image}, state, eval_mode=True)[0], a1, rtol=1e-5, atol=1e-6)


def test_ensemble_disagrees_more_off_the_data() -> None:
    """The uncertainty penalty: heads fitted to the data's posterior agree there, not elsewhere."""
    agent = make(model_train_steps=10**6, ensemble=5)
    batch = sequence_batch(np.random.default_rng(1))
    for _ in range(60):
        agent.update(batch)
    with torch.no_grad():
        post, _, _ = agent.wm.observe(lompo.to_torch(batch, "cpu"))
        deter = post["deter"].reshape(-1, post["deter"].shape[-1])
        far = deter + 3 * torch.randn_like(deter)  # states the data never visited

        def disagreement(d: torch.Tensor) -> float:
            stats = agent.ensemble(d)
            stoch = agent.wm.rssm.sample(stats[0])
            return float(lompo.latent_log_prob(agent.wm, stats, stoch).std(0).mean())

        assert disagreement(far) > disagreement(deter)


def test_presets() -> None:
    paper = lompo.Config.preset("paper")
    assert (paper.ensemble, paper.penalty, paper.horizon, paper.wm.classes) == (7, 5.0, 5, 0)
    assert lompo.Config.preset("quick", deter=64).wm.deter == 64
