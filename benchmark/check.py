"""`owbench check METHOD`: does a method learn, across seeds, on a setting where its mechanism matters?

One learning-check setting per method (`SETTINGS`, data): the task, image size, dataset recipe, the
method's config per budget level and the control it is compared with. The check trains the method, its
control (transfer methods: offline DreamerV2 for CoWorld, DreamerV2 from scratch for Vid2Act / WPT) and
evaluates the random policy over N seeds under the protocol (agents.protocol.evaluate), then reports per
role the IQM of the per-seed mean returns with a 95% stratified-bootstrap CI (benchmark.stats). It PASSES
when the method's CI lower bound is above random's CI upper bound; the gain over the control is reported
with its CI but not required.

Levels: `smoke` is a mechanics check (tens of updates, tiny data; its numbers say nothing), `quick` is the
learning check (the budgets of docs/learning_checks.md). Every finished (role, seed) is kept as
`results/<role>-<seed>.json` in the output folder and skipped on a rerun; a killed job resumes from its
run folder's checkpoint.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from agents.online import OnlineConfig
from agents.protocol import EvalResult
from agents.training import TrainContext
from benchmark import dreamer_check, stats, suites, transfer_check
from benchmark.methods import Method, all_methods, get_method
from benchmark.runner import exit_with_parent
from collectors.errors import OwbenchError, unknown

BUDGETS = ("smoke", "quick")
ROLES = ("method", "control", "random")
MIN_SEEDS = stats.MIN_RUNS  # seeds per role below which a check cannot pass
MODEL = transfer_check.MODEL  # dreamer_check's small world model without a discount head


@dataclass(frozen=True)
class Level:
    """One budget level of a setting."""

    updates: int  # update budget of the method and of its control
    preset: str = "smoke"  # config preset of the method and of its control (plus `control_overrides`)
    overrides: Mapping[str, Any] = field(default_factory=dict)  # config fields of the method
    data: Mapping[str, Any] = field(default_factory=dict)  # arguments of the dataset recipe
    control_overrides: Mapping[str, Any] = field(default_factory=dict)  # config fields of the control
    online: OnlineConfig | None = None  # the online loop of a "scratch" control


@dataclass(frozen=True)
class Control:
    """What a method is compared with besides random, at the same budget, data and seeds."""

    method: str  # a registered method (benchmark/methods.py)
    regime: str  # "offline": trained on the check's dataset; "scratch": online from scratch on the task
    label: str


@dataclass(frozen=True)
class CheckSetting:
    task: str  # the evaluated task (the target)
    image_size: int
    data: str  # dataset recipe (RECIPES): "swingup-controller", "medium-replay", "transfer-pool" or "none"
    levels: Mapping[str, Level]  # per budget level (BUDGETS)
    source: str | None = None  # online source task (CoWorld)
    control: Control | None = None
    note: str = ""


# -- dataset recipes: budget-level arguments -> dataset locations (collected once, resumed if partial) --------
def _swingup_controller(task: str, image_size: int, episodes: int) -> list[str]:
    from collectors.home import datasets_home

    assert (task, image_size) == (dreamer_check.ENV_ID, dreamer_check.IMAGE_SIZE), "dreamer_check's task and size"
    return [dreamer_check.collect(datasets_home() / "check" / f"{task}-swingup-controller-{episodes}.zarr", episodes)]


def _sac_dataset(quality: str) -> Callable[..., list[str]]:
    """A dataset of the state SAC behaviour agent of `owbench collect` (collectors/collect.py) at `quality`."""
    def recipe(task: str, image_size: int, **kwargs: Any) -> list[str]:
        from collectors.collect import ensure_dataset

        return [ensure_dataset(task, quality, image_size=image_size, **kwargs)]
    return recipe


def _transfer_pool(task: str, image_size: int, **kwargs: Any) -> list[str]:
    assert (task, image_size) == (transfer_check.TARGET, transfer_check.IMAGE_SIZE), "transfer_check's target and size"
    return transfer_check.offline_data(**kwargs)


RECIPES: dict[str, Callable[..., list[str]]] = {
    "swingup-controller": _swingup_controller,  # noisy swing-up controller episodes (benchmark/dreamer_check.py)
    "medium-replay": _sac_dataset("medium-replay"),  # a state SAC agent's replay buffer (issue 3's medium-replay)
    "medium": _sac_dataset("medium"),  # episodes of that agent frozen at the medium level (1/3 of the expert)
    "transfer-pool": _transfer_pool,  # reward-free offline sources (benchmark/transfer_check.py)
    "none": lambda task, image_size: [],
}


# -- the settings ---------------------------------------------------------------------------------------------
# Each setting's `quick` level runs the method's own `quick` preset at the `quick` profile's update budget
# (benchmark/suites.py), so a pass says that `owbench run --profile quick` learns; `smoke` levels shrink it further.
SMOKE_SWINGUP = {"episodes": 2}
SMOKE_MEDIUM = {"variant": "smoke", "max_train_steps": 600}
SMOKE_ONLINE = OnlineConfig(prefill=100, train_every=2)
SMOKE_UPDATES = 20


def _swingup(method: str, updates: int | None = None, overrides: Mapping[str, Any] | None = None,
             note: str = "") -> CheckSetting:
    """cartpole_swingup at 32 px from 8 noisy controller episodes (the checks of tests/baselines/)."""
    size = dreamer_check.IMAGE_SIZE
    return CheckSetting(dreamer_check.ENV_ID, size, "swingup-controller", {
        "smoke": Level(SMOKE_UPDATES, "smoke", {"image_size": size}, SMOKE_SWINGUP),
        "quick": Level(updates or suites.QUICK.steps_for(method), "quick", {"image_size": size, **(overrides or {})},
                       {"episodes": 8})}, note=note)


def _medium_replay_setting(method: str, smoke: Mapping[str, Any], source: str | None = None,
                           control: Control | None = None, note: str = "", updates: int | None = None,
                           overrides: Mapping[str, Any] | None = None) -> CheckSetting:
    """walker_downhill at 32 px from issue 3's medium-replay dataset (17 episodes of a state SAC agent's replay)."""
    return CheckSetting("walker_downhill", 32, "medium-replay", {
        "smoke": Level(SMOKE_UPDATES, "smoke", smoke, SMOKE_MEDIUM, MODEL),
        "quick": Level(updates or suites.QUICK.steps_for(method), "quick", overrides or {},
                       {"max_train_steps": 40_000})},
        source, control, note)


def _medium_setting(method: str, episodes: int) -> CheckSetting:
    """walker_downhill at 32 px from episodes of the SAC policy frozen at the medium level (one behaviour
    policy, the data imitation is made for)."""
    return CheckSetting("walker_downhill", 32, "medium", {
        "smoke": Level(SMOKE_UPDATES, "smoke", {"image_size": 32}, {**SMOKE_MEDIUM, "episodes": 2}),
        "quick": Level(suites.QUICK.steps_for(method), "quick", {"image_size": 32},
                       {"max_train_steps": 40_000, "episodes": episodes})},
        note="the medium-replay run's SAC policy frozen at 1/3 of the expert, rolled out")


def _transfer(method: str) -> CheckSetting:
    """walker_stand at 32 px online, with transfer_check's reward-free offline sources, against DreamerV2
    from scratch at the same online budget."""
    smoke = {**transfer_check.method_overrides(method, SMOKE_UPDATES, SMOKE_ONLINE, pretrain_steps=SMOKE_UPDATES),
             **({"bc_steps": SMOKE_UPDATES} if method == "wpt" else {})}
    return CheckSetting(transfer_check.TARGET, transfer_check.IMAGE_SIZE, "transfer-pool", {
        "smoke": Level(SMOKE_UPDATES, "smoke", smoke, {"random_episodes": 1, "medium_replay_steps": 600, "variant": "smoke"},
                       MODEL, SMOKE_ONLINE),
        "quick": Level(suites.QUICK_ONLINE.steps_for(method), "quick", {}, {"random_episodes": 3},
                       online=OnlineConfig.preset("quick"))},
        control=Control("dreamerv2", "scratch", "DreamerV2 from scratch"),
        note="transfer_check's setting (docs/learning_checks.md)")


MODELFREE = {"batch_size": 32}  # the generic transition setting: a `quick` preset at batch 32

SETTINGS: dict[str, CheckSetting] = {
    "dreamerv2": _medium_replay_setting("dreamerv2", MODEL, note="offline DreamerV2, CoWorld's control"),
    "coworld": _medium_replay_setting("coworld", {**MODEL, "prefill": 100}, source="walker_walk",
                                      control=Control("dreamerv2", "offline", "offline DreamerV2"),
                                      note="walker_walk (online source) -> walker_downhill (offline target)"),
    "curl": _swingup("curl"),
    "cql": _swingup("cql"),
    "curl+cql": _swingup("curl+cql"),
    "lompo": _medium_setting("lompo", 20),  # a conservative method on one behaviour policy's data, as bc
    "drq+bc": _swingup("drq+bc"),
    "dv2-finetune": _medium_replay_setting("dv2-finetune", {**MODEL, "prefill": 100, "pretrain_steps": 20},
                                           source="walker_walk",
                                           control=Control("dreamerv2", "offline", "offline DreamerV2"),
                                           note="walker_walk (online pretraining) -> walker_downhill (offline)"),
    "offline-dv2": _medium_replay_setting("offline-dv2", MODEL,
                                          note="V-D4RL's offline DV2 with its ensemble-disagreement penalty, "
                                               "model and actor-critic trained jointly"),
    "bc": _medium_setting("bc", 20),
    "vid2act": _transfer("vid2act"),
    "wpt": _transfer("wpt"),
}
GENERIC = {  # a registered method without a setting of its own, by the batch kind its update() consumes
    "sequence": _medium_replay_setting("generic", {"image_size": 32}, note="generic sequence-method setting",
                                       updates=1000, overrides={"image_size": 32}),
    "transition": _swingup("generic", updates=4000, overrides=MODELFREE, note="generic transition-method setting"),
    "none": CheckSetting(dreamer_check.ENV_ID, dreamer_check.IMAGE_SIZE, "none",
                         {b: Level(0) for b in BUDGETS}, note="nothing to train: evaluation only"),
}


def setting_for(method: str) -> CheckSetting:
    """The method's own setting, else the generic one of its batch kind; an unknown method is a user error."""
    methods = all_methods()  # built-in and plug-in (entry point `owbench.methods`)
    learners = [n for n in methods if n != "random"]
    if method == "random":
        raise OwbenchError(f"random is the floor every check compares with; check one of {', '.join(learners)}")
    if method not in methods:
        raise unknown("method", method, learners, f"valid: {', '.join(learners)}")
    return SETTINGS.get(method) or GENERIC[methods[method].batch]


# -- jobs --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    """One (role, seed): everything a worker process needs (picklable)."""

    role: str  # "method", "control" or "random"
    method: Method
    regime: str  # "train" (the method's own `train`, else the generic offline loop) or "scratch" (online from scratch)
    ctx: TrainContext
    online: OnlineConfig | None = None
    result: Path = Path()  # where the finished job's JSON goes
    diagnose: bool = False  # also measure a world model's open-loop error with true vs shuffled actions


def parse_seeds(text: str) -> list[int]:
    """`5` -> seeds 0..4; `0,3,7` -> those seeds."""
    try:
        seeds = [int(s) for s in text.split(",")] if "," in text else list(range(int(text)))
    except ValueError:
        raise OwbenchError(f"--seeds {text!r} is neither a count (5) nor a list of seeds (0,3,7)") from None
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise OwbenchError(f"--seeds {text!r}: give a positive count or distinct non-negative seeds")
    return seeds


def make_jobs(method: str, setting: CheckSetting, budget: str, seeds: Iterable[int], out: Path, datasets: list[str],
              eval_episodes: int, device: str = "cpu", diagnose: bool = False) -> list[Job]:
    """The method, its control and random for every seed, interleaved by seed."""
    level, control = setting.levels[budget], setting.control

    def job(role: str, seed: int, name: str, regime: str, preset: str = "smoke", overrides: Mapping[str, Any] = {},
            steps: int = 0, data: list[str] = datasets, source: str | None = None) -> Job:
        ctx = TrainContext(method=name, batch=get_method(name).batch, env_id=setting.task, datasets=data,
                           run_dir=out / "runs" / f"{role}-{seed}", source_env_id=source, preset=preset, steps=steps,
                           eval_every=0, eval_episodes=eval_episodes, checkpoint_every=max(steps // 4, 1),
                           log_every=50, seed=seed, device=device, image_size=setting.image_size,
                           overrides=dict(overrides), progress=False)
        online = level.online if regime == "scratch" else None
        return Job(role, get_method(name), regime, ctx, online, out / "results" / f"{role}-{seed}.json", diagnose)

    jobs = []
    for seed in seeds:
        jobs.append(job("method", seed, method, "train", level.preset, level.overrides, level.updates,
                        source=setting.source))
        if control is not None:
            scratch = control.regime == "scratch"
            jobs.append(job("control", seed, control.method, "scratch" if scratch else "train", level.preset,
                            level.control_overrides, level.updates, [] if scratch else datasets))
        jobs.append(job("random", seed, "random", "train"))
    return jobs


def train_job(job: Job) -> EvalResult:
    """Train (or only evaluate) one job in this process, on one torch thread."""
    import torch

    from agents.online import train_from_scratch
    from agents.protocol import evaluate
    from agents.training import train_offline

    torch.set_num_threads(1)
    module, ctx = job.method.load(), job.ctx
    if job.regime == "scratch":
        return train_from_scratch(ctx, module, job.online)
    if hasattr(module, "train"):
        return module.train(ctx)
    if job.method.batch == "none":  # nothing to learn (the random policy): evaluation only
        agent = module.make_agent(ctx.spec, ctx.config(module), ctx.device, ctx.seed)
        return evaluate(agent, ctx.make_env, ctx.eval_episodes, training_seed=ctx.seed)
    return train_offline(ctx, module)


def run_job(job: Job) -> dict[str, Any]:
    """Train one job and write its result JSON (atomically: a killed job leaves none)."""
    start = time.perf_counter()
    result = train_job(job)
    record = {"role": job.role, "method": job.method.name, "seed": job.ctx.seed, "updates": job.ctx.steps,
              "returns": [float(r) for r in result.returns], "eval_seeds": [int(s) for s in result.seeds],
              "minutes": round((time.perf_counter() - start) / 60, 2)}
    if job.diagnose and (model := trained_world_model(job)) is not None:
        record["diagnostics"] = action_use(*model)
    job.result.parent.mkdir(parents=True, exist_ok=True)
    tmp = job.result.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, job.result)
    return record


def worker_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes (a GL context must not cross a fork) that exit when this one dies."""
    return ProcessPoolExecutor(workers, mp_context=get_context("spawn"), initializer=exit_with_parent)


def run_jobs(jobs: list[Job], workers: int, on_done: Callable[[dict[str, Any]], None] = lambda r: None) -> None:
    """Every job without a result yet; in this process for one worker, else in spawned processes."""
    todo = [j for j in jobs if not j.result.exists()]
    if workers <= 1:
        for j in todo:
            on_done(run_job(j))
        return
    with worker_pool(workers) as pool:
        try:
            for future in as_completed([pool.submit(run_job, j) for j in todo]):
                on_done(future.result())
        except BaseException:  # a failed job (or ^C) stops the check: queued jobs do not start
            pool.shutdown(cancel_futures=True)
            raise


# -- diagnostic: does the world model use the actions? (issue 22) -----------------------------------------------
def trained_world_model(job: Job) -> tuple[Any, list[str]] | None:
    """The world model of a finished job trained by the generic offline loop or from scratch (its last
    checkpoint) and the data to test it on (the check's datasets, or the online run's replay); None for
    agents without one (`.wm`) or methods with their own `train`."""
    from agents.training import Checkpointer

    module, ctx = job.method.load(), job.ctx
    if job.method.batch != "sequence" or (hasattr(module, "train") and job.regime != "scratch"):
        return None
    scratch = job.regime == "scratch"  # train_from_scratch sets the model's image size, train_offline does not
    config = module.Config.preset(ctx.preset, **{"wm.image_size": ctx.image_size, **ctx.overrides}) if scratch \
        else ctx.config(module)
    agent = module.make_agent(ctx.spec, config, ctx.device, ctx.seed)
    if not hasattr(agent, "wm") or Checkpointer(ctx.run_dir / "checkpoints").load(agent) is None:
        return None
    return agent.wm, ctx.datasets or [str(ctx.run_dir / "replay.zarr")]


def action_use(wm: Any, datasets: list[str], batches: int = 4, batch_size: int = 16, context: int = 5,
               length: int = 20, seed: int = 0) -> dict[str, float]:
    """Open-loop image prediction error of the world model (the prior rolled `length - context` steps from
    the posterior after `context` observed frames; squared error per frame, as the image loss): with the
    sequences' own actions and with another sequence's actions (the batch rolled by one). A model that
    ignores its actions predicts equally badly with both (ratio ~1)."""
    import torch

    from agents.world_model.nets import normalize_image
    from agents.world_model.world_model import to_torch
    from collectors.sampler import SequenceSampler

    errors: dict[str, list[float]] = {"true": [], "shuffled": []}
    device = next(wm.parameters()).device
    with torch.no_grad(), SequenceSampler(datasets, batch_size=batch_size, length=length, seed=seed) as sampler:
        for _ in range(batches):
            data = to_torch(sampler.sample(), device)
            images = wm.resize(data["image"])
            observed = {k: data[k][:, :context] for k in ("image", "action", "is_first")}
            post, _, _ = wm.observe(observed, sample=False)
            target = normalize_image(images[:, context:]).float()
            for name, actions in (("true", data["action"]), ("shuffled", data["action"].roll(1, 0))):
                state = {k: v[:, -1] for k, v in post.items()}
                feats = []
                for t in range(context, length):  # row t holds a_{t-1}, the action that led to frame t
                    state = wm.rssm.img_step(state, wm.pad_action(actions[:, t]), sample=False)
                    feats.append(wm.rssm.feat(state))
                recon = wm.decode(torch.stack(feats, 1))
                errors[name].append(float((recon - target).pow(2).sum((-3, -2, -1)).mean()))
    true, shuffled = float(np.mean(errors["true"])), float(np.mean(errors["shuffled"]))
    return {"open_loop_error": true, "open_loop_error_shuffled": shuffled, "action_effect": shuffled / true}


# -- the decision --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RoleScores:
    """Per-seed mean returns of one role and their IQM with its 95% stratified-bootstrap CI."""

    per_seed: dict[int, float]
    iqm: float
    ci: tuple[float, float]


def role_scores(per_seed: Mapping[int, float], reps: int = 2000) -> RoleScores:
    scores = [np.array(list(per_seed.values()), np.float64)]
    return RoleScores(dict(per_seed), stats.iqm(scores), stats.iqm_ci(scores, reps))


def passes(method: RoleScores, random: RoleScores) -> bool:
    """PASS: the method's CI lower bound lies above random's CI upper bound, over at least MIN_SEEDS seeds
    each (a bootstrap of one or two seeds is no interval)."""
    enough = min(len(method.per_seed), len(random.per_seed)) >= MIN_SEEDS
    return enough and method.ci[0] > random.ci[1]


def summarize(records: list[dict[str, Any]], reps: int = 2000) -> dict[str, Any]:
    """IQM + CI per role, the gain over the control with its CI, and the decision."""
    per_role = {role: {r["seed"]: float(np.mean(r["returns"])) for r in sorted(records, key=lambda r: r["seed"])
                       if r["role"] == role} for role in ROLES}
    scores = {role: role_scores(s, reps) for role, s in per_role.items() if s}
    summary: dict[str, Any] = {"roles": {role: asdict(s) for role, s in scores.items()},
                               "passed": passes(scores["method"], scores["random"])}
    diagnosed = [r for r in records if "diagnostics" in r]
    if diagnosed:
        summary["diagnostics"] = {role: {r["seed"]: r["diagnostics"] for r in diagnosed if r["role"] == role}
                                  for role in ROLES if any(r["role"] == role for r in diagnosed)}
    if "control" in scores:
        x, y = ([np.array(list(scores[r].per_seed.values()))] for r in ("method", "control"))
        summary["gain_over_control"] = {"iqm": scores["method"].iqm - scores["control"].iqm,
                                        "ci": stats.iqm_difference_ci(x, y, reps)}
    return summary


# -- the check ---------------------------------------------------------------------------------------------
def prepare(method: str, budget: str, seeds: list[int], out: Path, eval_episodes: int, device: str = "cpu",
            diagnose: bool = False) -> tuple[CheckSetting, list[Job]]:
    """Validate the request, collect the setting's data (once) and plan the jobs; `out/check.json` records
    the request, and a rerun in the same folder must ask for the same check."""
    setting = setting_for(method)
    if budget not in BUDGETS:
        raise OwbenchError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    if eval_episodes < 1:
        raise OwbenchError("--eval-episodes must be at least 1")
    plan = {"method": method, "budget": budget, "eval_episodes": eval_episodes}
    manifest = out / "check.json"
    if manifest.exists():
        held = {k: json.loads(manifest.read_text()).get(k) for k in plan}
        if held != plan:
            raise OwbenchError(f"{out} holds another check ({held}); rerun with it or pass another --out")
    out.mkdir(parents=True, exist_ok=True)
    level = setting.levels[budget]
    datasets = RECIPES[setting.data](setting.task, setting.image_size, **level.data)
    manifest.write_text(json.dumps({**plan, "task": setting.task, "image_size": setting.image_size,
                                    "data": setting.data, "datasets": datasets, "updates": level.updates,
                                    "control": setting.control.label if setting.control else None}, indent=1))
    return setting, make_jobs(method, setting, budget, seeds, out, datasets, eval_episodes, device, diagnose)


def results(jobs: list[Job]) -> list[dict[str, Any]]:
    return [json.loads(j.result.read_text()) for j in jobs if j.result.exists()]
