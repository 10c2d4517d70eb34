"""Environments: transfer-task physics, pixels, seeding, re-rendering, Meta-World experts."""
from __future__ import annotations

import numpy as np
import pytest

from collectors.envs import gl_info, list_ids, make, scripted_expert, spec
from collectors.envs.transfer import TRANSFER_TASKS
from collectors.errors import OwbenchError


def _model(env_id):
    env = make(env_id)
    env.reset(seed=0)
    return env, env.physics.model


def test_registry_covers_all_suites():
    ids = list_ids()
    assert "walker_walk" in ids and "quadruped_run" in ids
    assert set(TRANSFER_TASKS) <= set(ids)
    assert len(list_ids("metaworld")) == 50
    assert spec("metaworld_button-press-topdown").id == "mw_button-press-topdown"
    s = spec("walker_walk")
    assert (s.action_repeat, s.time_limit, s.episode_length, s.camera) == (2, 1000, 500, 0)
    assert spec("quadruped_walk").camera == 2
    mw = spec("mw_door-close")
    assert (mw.action_repeat, mw.time_limit, mw.camera) == (1, 500, "corner")


def test_unknown_id_suggests_close_match():
    with pytest.raises(OwbenchError, match="walker_downhill"):
        spec("walker_dowhill")


@pytest.mark.parametrize("env_id,gravity", [("walker_downhill", (2.54, 0, -9.47)), ("walker_uphill", (-2.54, 0, -9.47)),
                                            ("cheetah_downhill", (2.54, 0, -9.47)), ("cheetah_uphill", (-2.54, 0, -9.47))])
def test_slope_tasks_tilt_gravity_and_camera(env_id, gravity):
    env, model = _model(env_id)
    stock_env, stock = _model(spec(env_id).base_task)
    np.testing.assert_allclose(model.opt.gravity, gravity, atol=1e-6)
    np.testing.assert_allclose(stock.opt.gravity, (0, 0, -9.81), atol=1e-6)
    # the side camera is rolled by +-15 degrees around its viewing axis
    assert not np.allclose(model.cam_quat[0], stock.cam_quat[0], atol=1e-3)
    env.close(), stock_env.close()


@pytest.mark.parametrize("env_id,geom", [("walker_nofoot", "right_foot"), ("cheetah_nopaw", "ffoot")])
def test_limb_tasks_shrink_geom_and_keep_actuators(env_id, geom):
    env, model = _model(env_id)
    stock_env, stock = _model(spec(env_id).base_task)
    np.testing.assert_allclose(env.physics.named.model.geom_size[geom][:2], 0.001)
    assert stock_env.physics.named.model.geom_size[geom][0] > 0.01
    assert model.nu == stock.nu
    env.close(), stock_env.close()


def test_floor_is_longer_on_transfer_tasks():
    env, _ = _model("walker_downhill")
    assert env.physics.named.model.geom_size["floor"][0] == pytest.approx(1000)
    env.close()


def test_downhill_gravity_pushes_the_walker_forward():
    """A passive walker slides/falls forward (+x) on the downhill, backward on the uphill."""
    def torso_x_after(env_id):
        env = make(env_id)
        env.reset(seed=0)
        x0 = env.physics.named.data.xpos["torso", "x"]
        for _ in range(100):
            env.step_physics(np.zeros(env.spec.action_dim))
        dx = env.physics.named.data.xpos["torso", "x"] - x0
        env.close()
        return dx

    flat, down, up = torso_x_after("walker_walk"), torso_x_after("walker_downhill"), torso_x_after("walker_uphill")
    assert down > flat + 0.05 and up < flat - 0.05


def test_frames_are_uint8_and_not_constant():
    with make("walker_downhill") as env:
        obs = env.reset(seed=0)
        assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
        assert obs["image"].std() > 5
        assert obs["state"].dtype == np.float32 and obs["state"].shape == (env.spec.state_dim,)
    with make("cheetah_run", image_size=84) as env:
        assert env.reset(seed=0)["image"].shape == (84, 84, 3)


def test_same_seed_same_frames_and_rewards():
    def rollout(seed):
        rng = np.random.default_rng(0)
        with make("walker_walk") as env:
            frames, rewards = [env.reset(seed=seed)["image"]], []
            for _ in range(5):
                obs, r, *_ = env.step(rng.uniform(-1, 1, env.spec.action_dim))
                frames.append(obs["image"]), rewards.append(r)
        return np.stack(frames), np.array(rewards)

    f1, r1 = rollout(3)
    f2, r2 = rollout(3)
    f3, _ = rollout(4)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_array_equal(r1, r2)
    assert not np.array_equal(f1[0], f3[0])


def test_rerender_from_physics_state_matches():
    with make("walker_walk") as env:
        env.reset(seed=1)
        for _ in range(3):
            obs, *_ = env.step(np.full(env.spec.action_dim, 0.3))
        physics = env.physics_state()
        for _ in range(3):
            env.step(np.zeros(env.spec.action_dim))
        env.set_physics_state(physics)
        np.testing.assert_array_equal(env.render(), obs["image"])


def test_action_repeat_and_episode_length():
    with make("cartpole_balance", image_size=16) as env:
        env.reset(seed=0)
        steps, done = 0, False
        while not done:
            _, terminated, truncated, info = env.step_physics(np.zeros(1))
            steps += 1
            done = terminated or truncated
        assert steps == 500 and truncated and info["discount"] == 1.0


def test_metaworld_scripted_expert_succeeds_with_small_noise():
    rng = np.random.default_rng(0)
    policy = scripted_expert("mw_button-press-topdown")
    with make("mw_button-press-topdown", image_size=32) as env:
        env.reset(seed=0)
        success = False
        for _ in range(200):
            action = policy.get_action(env.raw_observation()) + rng.normal(0, 0.1, 4)
            _, _, _, info = env.step_physics(action)
            if info["success"]:
                success = True
                break
        assert success
        frame = env.render()
        assert frame.shape == (32, 32, 3) and frame.std() > 5


def test_scripted_expert_only_for_metaworld():
    with pytest.raises(OwbenchError, match="Meta-World"):
        scripted_expert("walker_walk")


def test_gl_info_reports_backend_and_renderer():
    info = gl_info()
    assert info["backend"] in ("egl", "osmesa", "glfw")
    assert info["renderer"]
