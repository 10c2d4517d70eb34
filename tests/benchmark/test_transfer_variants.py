"""Vid2Act and WPT ablation variants (each paper's Fig. 6) are suite methods that resolve to the registered
method with the right config switches, read the same source pool and run from the CLI."""
from __future__ import annotations

from dataclasses import replace

import pytest
import torch
from click.testing import CliRunner

from agents import vid2act, wpt
from benchmark.suites import VARIANTS, datasets_needed, plan
from collectors import envs
from datasets_cli.main import cli

SWITCHES = {  # variant -> (module, the switches that differ from the full method)
    "vid2act-no-weights": (vid2act, {"domain_weights": False}),
    "vid2act-no-replay": (vid2act, {"action_replay": False}),
    "wpt-p": (wpt, {"pretrain": True, "rehearsal": False, "guidance": False}),
    "wpt-no-p": (wpt, {"pretrain": False, "rehearsal": True, "guidance": True}),
    "wpt-no-er": (wpt, {"pretrain": True, "rehearsal": False, "guidance": True}),
    "wpt-no-g": (wpt, {"pretrain": True, "rehearsal": True, "guidance": False}),
    "wpt-scratch": (wpt, {"pretrain": False, "rehearsal": False, "guidance": False}),  # size-matched scratch
}
ABLATION_SUITES = {"vid2act-ablation": "vid2act", "wpt-dmc-ablation": "wpt", "wpt-metaworld-ablation": "wpt"}


@pytest.mark.parametrize("suite, full", ABLATION_SUITES.items())
def test_ablation_suites_run_every_variant_beside_the_full_method_and_scratch(suite: str, full: str) -> None:
    jobs = plan(suite, "smoke", seeds=1)
    variants = {v for v, (base, _) in VARIANTS.items() if base == full}
    assert {j.method for j in jobs} == {"dreamerv2", full} | variants
    scratch = [j for j in jobs if j.method == "dreamerv2"]
    assert all(j.scratch and j.data == () for j in scratch)
    for pair in {j.pair for j in jobs}:  # every variant reads the full method's pool: one pretrained artefact
        pools = {j.method: j.data for j in jobs if j.pair == pair and j.method != "dreamerv2"}
        assert len(set(pools.values())) == 1 and pools[full]


@pytest.mark.parametrize("variant", SWITCHES)
def test_variant_resolves_to_its_paper_switches(variant: str) -> None:
    module, switches = SWITCHES[variant]
    suite = next(s for s, full in ABLATION_SUITES.items() if variant.startswith(full))
    job = plan(suite, "smoke", methods=[variant], seeds=1)[0]
    method, overrides = job.base
    assert method == module.__name__.split(".")[-1] and job.method == variant and not job.scratch
    config = module.Config.preset(job.profile, **overrides)  # what the runner's TrainContext.config builds
    assert {k: getattr(config, k) for k in switches} == switches
    assert config == replace(module.Config.preset(job.profile), **switches)  # nothing else changes


def test_vid2act_variants_build_the_ablated_agent() -> None:
    spec = envs.spec("walker_walk")
    full = vid2act.make_agent(spec, vid2act.Config.preset("smoke"))
    no_replay = vid2act.make_agent(spec, vid2act.Config.preset("smoke", **VARIANTS["vid2act-no-replay"][1]))
    no_weights = vid2act.make_agent(spec, vid2act.Config.preset("smoke", **VARIANTS["vid2act-no-weights"][1]))
    assert isinstance(full.behavior, vid2act.GuidedActorCritic)
    assert not isinstance(no_replay.behavior, vid2act.GuidedActorCritic)
    teacher_feat, feat = torch.randn(2, 5, full.wm.feat_dim), torch.randn(5, full.wm.feat_dim)
    assert torch.allclose(no_weights.weights(teacher_feat, feat), torch.full((2, 5), 0.5))
    assert not torch.allclose(full.weights(teacher_feat, feat), torch.full((2, 5), 0.5))


def test_cli_dry_run_of_a_variant_and_a_misspelled_one() -> None:
    runner = CliRunner()
    ok = runner.invoke(cli, ["run", "--suite", "wpt-dmc-ablation", "--methods", "wpt-no-g", "--pairs", "walker_run",
                             "--seeds", "1", "--dry-run"])
    assert ok.exit_code == 0, ok.output
    assert "wpt-no-g" in ok.output and len(datasets_needed(plan("wpt-dmc-ablation", "smoke", ["wpt-no-g"],
                                                                ["walker_run"], 1))) == 12
    bad = runner.invoke(cli, ["run", "--suite", "wpt-dmc-ablation", "--methods", "wpt-no-x", "--dry-run"])
    assert bad.exit_code == 2 and "wpt-no-x" in bad.output and len(bad.output.strip().splitlines()) == 1
