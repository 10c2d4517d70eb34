"""Which agent makes a suite's target data: DreamerV2 for the CoWorld suites' paper profile, SAC elsewhere; the
two never share a dataset, and the table caption says which one made the data."""
from __future__ import annotations

from dataclasses import replace

import pandas as pd

from benchmark import cost, runner, tables
from benchmark.runner import collect_command, dataset_location
from benchmark.suites import DataNeed, data_note, get_suite, plan


def _target(suite: str, profile: str) -> DataNeed:
    job = next(j for j in plan(suite, profile, methods=["coworld"]) if j.data)
    return next(d for d in job.data if d.role == "target")


def test_coworld_paper_profile_reads_dreamerv2_data_and_quick_keeps_sac():
    for suite in ("dmc-transfer", "dmc-transfer-medium-expert", "metaworld-transfer", "metaworld-transfer-neurips"):
        assert _target(suite, "paper").behaviour == "dreamerv2", suite
        assert _target(suite, "quick").behaviour == _target(suite, "smoke").behaviour == "sac", suite
    smoke = next(j for j in plan("smoke", "paper", methods=["coworld"]) if j.data)
    assert {d.behaviour for d in smoke.data} == {"sac"}  # random data: no agent


def test_sac_and_dreamerv2_data_never_share_a_location(owbench_home):
    budget = get_suite("dmc-transfer").budget("paper")
    sac, dreamer = DataNeed("walker_downhill", "medium-replay", "target"), _target("dmc-transfer", "paper")
    assert dataset_location(sac, budget).endswith("transfer/walker_downhill/medium-replay-v2.zarr")
    assert dataset_location(dreamer, budget).endswith("transfer/walker_downhill/medium-replay-dreamerv2-v2.zarr")
    command = collect_command(dreamer, budget, dataset_location(dreamer, budget))
    assert "--behaviour dreamerv2" in command and "--max-train-steps" not in command and "--episodes" not in command
    expert = _target("dmc-transfer-medium-expert", "paper")
    assert "--behaviour dreamerv2 --episodes 100" not in collect_command(expert, budget, "x")  # paper: default size
    smoke = get_suite("dmc-transfer-medium-expert").budget("smoke")
    assert "--behaviour dreamerv2 --behaviour-steps 1000 --episodes 2" in collect_command(
        DataNeed("walker_downhill", "medium-expert", "target", behaviour="dreamerv2"), smoke, "x")


def test_caption_says_which_agent_made_the_target_data():
    paper, quick = data_note(get_suite("dmc-transfer"), "paper"), data_note(get_suite("dmc-transfer"), "quick")
    assert "medium-replay made by a pixel DreamerV2" in paper and "state-based SAC" in quick
    assert "medium-expert made by a pixel DreamerV2" in data_note(get_suite("dmc-transfer-medium-expert"), "paper")
    final = pd.DataFrame({"method": ["coworld"] * 2, "source": ["walker_walk"] * 2, "target": ["walker_downhill"] * 2,
                          "seed": [0, 1], "return": [1.0, 2.0]})
    assert tables.caption(final, "dmc-transfer", "paper", note=paper).endswith(paper)


def test_vid2act_paper_pools_are_the_papers_expert_demonstrations(owbench_home):
    """Vid2Act §5.1: 10 expert demonstrations per Meta-World source, 50 expert trajectories per DMC source, kept
    apart from 100-episode expert data; quick keeps the noisy-expert pools."""
    for suite, episodes in (("vid2act-metaworld", 10), ("vid2act-dmc", 50), ("vid2act-ablation", 10)):
        job = next(j for j in plan(suite, "paper", methods=["vid2act"]))
        assert {(d.quality, d.episodes) for d in job.data} == {("expert", episodes)}, suite
        need = job.data[0]
        assert dataset_location(need, job.budget).endswith(f"/expert-{episodes}ep-v1.zarr")
        assert f"--episodes {episodes} " in collect_command(need, job.budget, "x")
        quick = next(j for j in plan(suite, "quick", methods=["vid2act"]))
        assert {(d.quality, d.episodes) for d in quick.data} == {("noisy-expert", None)}, suite


def test_the_runner_collects_dreamerv2_data_where_it_looks_for_it(owbench_home, monkeypatch):
    """At a non-default image size too (the size is part of every dataset id)."""
    from agents import behaviour

    made = []
    monkeypatch.setattr(behaviour, "collect_dreamerv2", lambda env_id, quality, *, out, **kw: made.append(out))
    job = next(j for j in plan("dmc-transfer", "paper", methods=["coworld"]) if j.data)
    job = replace(job, budget=replace(job.budget, image_size=16))
    (need,) = job.data
    assert runner.prepare_datasets([job]) == {need: dataset_location(need, job.budget)}
    assert made == [dataset_location(need, job.budget)] and made[0].endswith("medium-replay-dreamerv2-16px-v2.zarr")


def test_dry_run_disk_counts_each_dreamerv2_levels_training_replay_as_unknown(owbench_home):
    jobs = plan("dmc-transfer-medium-expert", "paper", methods=["coworld"], seeds=1)
    targets = {d for j in jobs for d in j.data}
    assert {(d.quality, d.behaviour) for d in targets} == {("medium-expert", "dreamerv2")}
    total, unknown = cost.dataset_bytes(jobs)
    assert unknown == 2 * len(targets) and total > 0  # medium's and expert's training replays; 100 episodes each
