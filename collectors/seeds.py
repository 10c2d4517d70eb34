"""Seed conventions shared by collection, training and evaluation.

Collection and training episodes use seeds below `EVAL_SEED_OFFSET`; evaluation episodes never do, so
an evaluation episode can never be one the agent was trained on. The behaviour agent's stop check during
collection (has SAC reached the medium level?) evaluates on seeds from `CHECK_SEED_OFFSET` up, apart from
both, so no dataset is selected on the episodes the benchmark evaluates on.
"""
from __future__ import annotations

import numpy as np

EVAL_SEED_OFFSET = 1_000_000  # training / collection seeds are < 1e6; evaluation seeds never are
CHECK_SEED_OFFSET = 2_000_000_000  # the behaviour agent's stop-check seeds; evaluation seeds stay below


def eval_seeds(episodes: int, training_seed: int = 0) -> list[int]:
    """Seeds of the evaluation episodes for one training seed, in [EVAL_SEED_OFFSET, CHECK_SEED_OFFSET)."""
    return [EVAL_SEED_OFFSET + 1000 * training_seed + i for i in range(episodes)]


def episode_seed(seed: int, index: int) -> int:
    """The reset seed of episode `index`; below EVAL_SEED_OFFSET, so disjoint from evaluation seeds."""
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % EVAL_SEED_OFFSET)


def behaviour_check_seeds(episodes: int, seed: int = 0) -> list[int]:
    """Seeds of the collection's behaviour-agent evaluations (the medium / expert stop check) for
    collection seed `seed`: >= CHECK_SEED_OFFSET, so disjoint from training and evaluation seeds."""
    return [CHECK_SEED_OFFSET + 1000 * seed + i for i in range(episodes)]
