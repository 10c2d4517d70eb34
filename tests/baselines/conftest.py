"""Shared by the baselines' slow learning checks: a cheap cartpole_swingup dataset and random's return."""
from __future__ import annotations

import pytest

LEARN_EPISODES, LEARN_EVAL_EPISODES = 8, 3


@pytest.fixture(scope="session")
def swingup_dataset(request) -> str:
    """8 episodes of the swing-up controller with action noise 0, 0.3, 0.6, 1.0 (cycled), rendered at 32 px.
    Kept in pytest's cache directory, so repeated slow runs collect it once (collect it before parallel runs)."""
    from benchmark import dreamer_check

    location = request.config.cache.mkdir("owbench-modelfree") / f"swingup-{LEARN_EPISODES}.zarr"
    return dreamer_check.collect(location, LEARN_EPISODES)  # resumes after the committed episodes


def _evaluate(agent) -> float:
    from benchmark import dreamer_check
    from agents.protocol import evaluate
    from collectors.envs import make as make_env

    result = evaluate(agent, lambda: make_env(dreamer_check.ENV_ID, image_size=dreamer_check.IMAGE_SIZE),
                      episodes=LEARN_EVAL_EPISODES)
    return result.mean


_evaluate.episodes = LEARN_EVAL_EPISODES


@pytest.fixture(scope="session")
def evaluate_on_swingup():
    """agent -> its mean return over `.episodes` protocol episodes of the 32 px swing-up task."""
    return _evaluate


@pytest.fixture(scope="session")
def random_return() -> float:
    from baselines.random_policy import make_agent as make_random
    from benchmark import dreamer_check
    from collectors.envs import spec

    return _evaluate(make_random(spec(dreamer_check.ENV_ID), None, "cpu", seed=0))
