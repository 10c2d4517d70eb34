"""Suites as data: every id resolves, every method exists, plans expand and select as asked."""
from __future__ import annotations

import pytest

from benchmark.methods import METHODS
from benchmark.suites import BASELINES, PROFILES, SUITES, base_method, datasets_needed, get_suite, plan
from collectors.envs import canonical_id
from collectors.errors import OwbenchError

DESIGN_SUITES = {"dmc-transfer", "dmc-transfer-medium-expert", "metaworld-transfer", "metaworld-transfer-neurips",
                 "vid2act-dmc", "vid2act-metaworld", "wpt-dmc", "wpt-metaworld", "smoke"}


def test_every_design_suite_is_defined_with_valid_envs_methods_and_profiles():
    assert DESIGN_SUITES <= set(SUITES)
    for suite in SUITES.values():
        for pair in suite.pairs:
            for env_id in (*pair.sources, pair.target):
                assert canonical_id(env_id) == env_id
        assert {base_method(m)[0] for m in suite.methods} <= set(METHODS)
        assert set(suite.budgets) == set(PROFILES)
        paper = suite.budget("paper")
        assert paper.eval_episodes == 10 and paper.seeds == 3  # DESIGN.md §5


def test_dmc_transfer_plan_matches_the_papers():
    suite = get_suite("dmc-transfer")
    assert {p.name for p in suite.pairs} == {
        "walker_walk__walker_downhill", "walker_walk__walker_uphill", "walker_walk__walker_nofoot",
        "cheetah_run__cheetah_downhill", "cheetah_run__cheetah_uphill", "cheetah_run__cheetah_nopaw"}
    jobs = plan("dmc-transfer", "paper")
    assert {"drq+bc", "bc", "offline-dv2", "dv2-finetune"} <= set(suite.methods)
    assert len(jobs) == 6 * 10 * 3
    coworld = next(j for j in jobs if j.method == "coworld")
    assert coworld.online_source and coworld.budget.steps_for("coworld") == 460_000
    assert {(d.env_id, d.quality, d.role) for d in coworld.data} == {(coworld.pair.target, "medium-replay", "target")}


@pytest.mark.parametrize("name, domain", [("dmc-transfer", "dmc"), ("metaworld-transfer-neurips", "metaworld")])
def test_transfer_suites_state_each_methods_budget_and_offer_equal_target_updates(name, domain):
    from agents.coworld import Config, updates_per_run
    from baselines.dv2_finetune import Config as FinetuneConfig

    suite, budget = get_suite(name), get_suite(name).budget("paper")
    coworld = updates_per_run(Config.preset("paper", domain=domain), budget.steps_for("coworld"))
    for method in BASELINES:
        assert f"{method}" in suite.description
    assert f"{budget.steps // 1000}k offline updates" in suite.description
    assert f"{budget.steps_for('lompo') // 1000}k" in suite.description
    assert f"coworld {coworld['target'] // 1000}k target updates" in suite.description
    assert f"{coworld['pretrain'] // 1000}k pretraining and {coworld['source'] // 1000}k co-training" in suite.description
    assert {budget.steps_for(m) for m in ("drq+bc", "bc", "offline-dv2", "dv2-finetune")} == {budget.steps}
    assert f"drq+bc, bc, offline-dv2 {budget.steps // 1000}k offline updates" in suite.description
    finetune = FinetuneConfig.preset("paper", domain=domain)
    assert (f"dv2-finetune {finetune.pretrain_steps // 1000}k source pretraining updates (each after "
            f"{finetune.train_every} source environment steps) plus {budget.steps_for('dv2-finetune') // 1000}k "
            "offline finetuning updates") in suite.description
    equal = plan(name, "paper", steps=300_000, seeds=1)  # equal target updates for every method
    assert {j.budget.steps_for(j.method) for j in equal} == {300_000}
    assert {j.method for j in equal} >= {"coworld", "dreamerv2"}


def test_multi_source_coworld_is_a_variant_of_coworld():
    job = plan("metaworld-transfer-neurips", "paper", methods=["coworld-multi"], pairs=["mw_door-close"], seeds=1)[0]
    assert job.base == ("coworld", {"source_mode": "multi-source"}) and job.online_source
    assert job.pair.source == "mw_button-press" and job.budget.steps_for(job.method) == 460_000


def test_multi_source_suites_read_source_pools_and_scratch_baseline_reads_none():
    jobs = plan("vid2act-dmc", "smoke", pairs=["quadruped_walk"], seeds=1)
    by_method = {j.method: j for j in jobs}
    assert by_method["dreamerv2"].data == ()
    pool = by_method["vid2act"].data
    assert {d.env_id for d in pool} == {"cheetah_run", "hopper_stand", "walker_walk", "walker_run"}
    assert all(d.quality == "noisy-expert" and d.role == "source" for d in pool)
    assert by_method["vid2act"].pair.source == "multi"


def test_selection_by_pair_names_methods_seeds():
    jobs = plan("smoke", "smoke", methods=["random", "dreamerv2"], pairs=["walker_walk->walker_downhill"], seeds=3)
    assert [(j.method, j.seed) for j in jobs] == [(m, s) for m in ("random", "dreamerv2") for s in range(3)]
    assert plan("smoke", "smoke", pairs=["walker_downhill"]) == plan("smoke", "smoke",
                                                                     pairs=["walker_walk__walker_downhill"])
    needs = datasets_needed(jobs)
    assert [(d.env_id, d.quality) for d in needs] == [("walker_downhill", "random")]  # random reads none


@pytest.mark.parametrize("kwargs, fragment", [
    ({"suite_name": "dmc-transfr"}, "did you mean 'dmc-transfer'"),
    ({"suite_name": "smoke", "profile": "fast"}, "choose one of smoke, quick, paper"),
    ({"suite_name": "smoke", "methods": ["dreamerv3"]}, "did you mean 'dreamerv2'"),
    ({"suite_name": "dmc-transfer", "methods": ["vid2act"]}, "suite 'dmc-transfer' runs"),
    ({"suite_name": "smoke", "pairs": ["walker_downhil"]}, "unknown pair 'walker_downhil'"),
    ({"suite_name": "smoke", "seeds": 0}, "--seeds 0"),
    ({"suite_name": "smoke", "methods": ["coworld"], "pairs": ["walker_run"]}, "runs no job"),
])
def test_bad_selection_is_one_clear_line(kwargs, fragment):
    with pytest.raises(OwbenchError) as err:
        plan(**kwargs)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_quick_profile_is_the_learning_checks_scale():
    """`quick` is about an hour a job on a CPU (issue 19): the learning checks' 32 px, their small world model,
    and their few thousand updates (benchmark/check.py runs the same budgets, tests/benchmark/test_check.py),
    with every method's own pretraining stages shorter than the budget."""
    from agents.world_model import DreamerConfig
    from agents.world_model.config import QUICK_MODEL
    from benchmark.gpu_check import getattr_path
    from benchmark.perf_wm import field_path

    quick = [suite.budgets["quick"] for suite in SUITES.values() if "quick" in suite.budgets]
    assert quick and all(b.image_size == 32 and 2_500 <= b.steps <= 3_000 for b in quick)
    assert all(b.steps_for(m) <= 8_000 for b in quick for m in METHODS)
    assert DreamerConfig.preset("quick") == DreamerConfig.preset("smoke", **QUICK_MODEL)
    for name, method in METHODS.items():
        config = method.load().Config.preset("quick")
        for stage in ("pretrain_steps", "model_steps", "model_train_steps"):
            path = field_path(config, stage)
            assert path is None or getattr_path(config, path) <= 1_000, (name, stage)
