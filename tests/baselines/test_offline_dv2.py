"""V-D4RL's Offline DV2 on the shared world model: the ensemble's mean disagreement, the penalised imagined
reward, and the two training stages."""
from __future__ import annotations

import numpy as np
import torch

from baselines import offline_dv2
from collectors.envs import spec
from test_contract import synthetic_batch

SPEC = spec("walker_walk")


def make(**overrides) -> offline_dv2.OfflineDV2Agent:
    return offline_dv2.make_agent(SPEC, offline_dv2.Config.preset("smoke", **overrides), "cpu", seed=0)


def imagined_features(agent: offline_dv2.OfflineDV2Agent, n: int = 6) -> torch.Tensor:
    state = agent.wm.rssm.initial(n, "cpu")
    with torch.no_grad():
        state = agent.wm.rssm.img_step(state, torch.rand(n, SPEC.action_dim) * 2 - 1)
    return agent.wm.rssm.feat(state)


def test_disagreement_is_zero_for_identical_members_and_the_mean_distance_otherwise():
    agent = make(ensemble=3)
    feat = imagined_features(agent)
    members = agent.wm.rssm.img_out.members
    with torch.no_grad():
        u = agent.wm.disagreement(feat)
        probs = torch.stack([m(feat[:, -agent.config.wm.deter:]).unflatten(-1, (4, 4)).softmax(-1).flatten(-2)
                             for m in members])  # smoke: 4 latents x 4 classes
        expected = torch.stack([(p - probs.mean(0)).norm(dim=-1) for p in probs]).mean(0)
    assert torch.allclose(u, expected, atol=1e-6) and (u > 0).all()
    for m in members[1:]:
        m.load_state_dict(members[0].state_dict())
    with torch.no_grad():
        assert torch.allclose(agent.wm.disagreement(feat), torch.zeros(len(feat)), atol=1e-6)


def test_imagined_reward_is_the_reward_head_minus_lambda_times_disagreement():
    agent = make(penalty_scale=10.0)
    feat = imagined_features(agent)
    with torch.no_grad():
        expected = agent.wm.heads["reward"](feat) - 10.0 * agent.wm.disagreement(feat)
        assert torch.allclose(agent.wm.reward(feat), expected)


def snapshot(module: torch.nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def changed(before: list[torch.Tensor], module: torch.nn.Module) -> bool:
    return any(not torch.equal(a, b) for a, b in zip(before, module.parameters()))


def test_world_model_first_then_the_actor_critic_on_the_frozen_model():
    agent = make(model_steps=2, ensemble=4, free_nats=0.0)  # free nats would hide the KL's gradient at init
    config = agent.config
    members = agent.wm.rssm.img_out.members
    loss, _, _ = agent.wm.loss({k: torch.as_tensor(v) for k, v in synthetic_batch("sequence", config, SPEC).items()})
    loss.backward()  # the KL reaches the one prior member drawn for the call; the others get zero gradients
    assert sum(any(p.grad.abs().sum() > 0 for p in m.parameters()) for m in members) == 1
    agent.wm.opt.opt.zero_grad(set_to_none=True)
    for i in range(2):  # stage 1: world model only
        wm, behavior = snapshot(agent.wm), snapshot(agent.behavior)
        metrics = agent.update(synthetic_batch("sequence", config, SPEC, seed=i))
        assert "model_loss" in metrics and "actor_loss" not in metrics
        assert changed(wm, agent.wm) and not changed(behavior, agent.behavior)
    wm, actor = snapshot(agent.wm), snapshot(agent.behavior.actor)
    metrics = agent.update(synthetic_batch("sequence", config, SPEC, seed=2))  # stage 2
    assert "actor_loss" in metrics and "model_loss" not in metrics and np.isfinite(metrics["data_disagreement"])
    assert not changed(wm, agent.wm) and changed(actor, agent.behavior.actor)
    restored = make(model_steps=2, ensemble=4, free_nats=0.0)
    restored.load_state_dict(agent.state_dict())
    assert restored.updates == 3
