"""Benchmark suites as data (DESIGN.md §6): pairs / tasks, methods, the datasets each job needs, budgets.

A suite is a few `Group`s (pairs that share methods and data) plus a `Budget` per profile
(`smoke`: seconds on CPU, `quick`: hours on a CPU machine, `paper`: the papers' values).
`plan(...)` expands a suite into `Job`s, one per (method, pair, seed); the runner executes them.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from benchmark import overrides as overrides_lib
from benchmark.methods import METHODS, all_methods, get_method
from collectors.errors import OwbenchError, unknown

PROFILES = ("smoke", "quick", "paper")
MAX_JOBS = 10_000  # a larger sweep is a typo (`--seeds 100000000`), refused before anything is allocated
BASELINES = ("curl", "curl+cql", "cql", "drq+bc", "bc", "dreamerv2", "offline-dv2", "lompo", "dv2-finetune")
# Named configurations of a registered method: name -> (method, config overrides).
VARIANTS: dict[str, tuple[str, dict[str, object]]] = {
    "coworld-multi": ("coworld", {"source_mode": "multi-source"}),  # NeurIPS App. C, Eq. 12
    # Vid2Act Fig. 6: without the learned domain-selection weights, without action replay
    "vid2act-no-weights": ("vid2act", {"domain_weights": False}),
    "vid2act-no-replay": ("vid2act", {"action_replay": False}),
    # WPT Fig. 6 (P: pretraining, ER: experience rehearsal, G: execution guidance): P alone, each one left out
    "wpt-p": ("wpt", {"rehearsal": False, "guidance": False}),
    "wpt-no-p": ("wpt", {"pretrain": False}),
    "wpt-no-er": ("wpt", {"rehearsal": False}),
    "wpt-no-g": ("wpt", {"guidance": False}),
    # the size-matched scratch control: WPT's model and online loop with none of P, ER, G (DreamerV2 at 1536 units)
    "wpt-scratch": ("wpt", {"pretrain": False, "rehearsal": False, "guidance": False}),
}


def base_method(name: str) -> tuple[str, dict[str, object]]:
    """(registered method, config overrides) of a suite's method name."""
    return VARIANTS.get(name, (name, {}))


@dataclass(frozen=True)
class DataNeed:
    """One offline dataset a job reads, by environment and quality (collected on demand)."""

    env_id: str
    quality: str
    role: str  # "target": offline data of the evaluated task; "source": a pretraining pool
    location: str = ""  # a dataset the user chose (`--dataset TARGET=PATH_OR_ID`); "" = collected on demand
    behaviour: str = "sac"  # the agent that made the data (agents.behaviour.BEHAVIOURS); part of the dataset id
    episodes: int | None = None  # the dataset's size where a paper fixes it (else the budget's); part of the id

    def variant(self, base: str) -> str:
        """The dataset variant: the budget's, with the behaviour and a paper-fixed size, so data made by another
        agent or of another size never shares a dataset (`dreamerv2`, `10ep`, `dreamerv2-smoke`)."""
        from agents.behaviour import with_behaviour

        return "-".join(p for p in (with_behaviour(base, self.behaviour), f"{self.episodes}ep" if self.episodes else "")
                        if p)


@dataclass(frozen=True)
class Pair:
    """Source task(s) -> evaluated target. Multi-source suites (Vid2Act, WPT) list several sources."""

    sources: tuple[str, ...]
    target: str

    @property
    def source(self) -> str:
        """The source label in tables and run directories: the task, or `multi` for a pool."""
        return self.sources[0] if len(self.sources) == 1 else "multi"

    @property
    def name(self) -> str:
        return f"{self.source}__{self.target}"

    @property
    def arrow(self) -> str:
        return f"{self.source}→{self.target}"


@dataclass(frozen=True)
class Group:
    """Pairs that share methods and data needs."""

    pairs: tuple[Pair, ...]
    methods: tuple[str, ...]
    target_qualities: tuple[str, ...] = ()  # offline datasets of each target
    source_qualities: tuple[str, ...] = ()  # offline pools of each source (reward-free pretraining data)
    online_source: bool = False  # the source task is an online simulator (CoWorld)
    online_target: bool = False  # the target is learned online (Vid2Act, WPT): `steps` counts online updates
    scratch_methods: tuple[str, ...] = ()  # baselines trained online from scratch on the target: no datasets

    def data(self, pair: Pair, method: str, budget: "Budget | None" = None) -> tuple[DataNeed, ...]:
        """Datasets a (method, pair) job reads; evaluation-only and from-scratch methods read none. The budget's
        `target_behaviour` makes the target's data (random data has no agent), its `source_quality` /
        `source_episodes` replace the group's pools (the papers' own source data)."""
        if method in self.scratch_methods or get_method(base_method(method)[0]).batch == "none":
            return ()
        behaviour = budget.target_behaviour if budget else "sac"
        sources = (budget.source_quality,) if budget and budget.source_quality else self.source_qualities
        episodes = budget.source_episodes if budget else None
        return (tuple(DataNeed(pair.target, q, "target", behaviour="sac" if q == "random" else behaviour)
                      for q in self.target_qualities)
                + tuple(DataNeed(s, q, "source", episodes=episodes) for s in pair.sources for q in sources))


@dataclass(frozen=True)
class Budget:
    """What one profile spends per job."""

    steps: int  # updates per job: offline updates, or online updates where the group's target is online
    eval_every: int  # updates between periodic evaluations (learning curves)
    eval_episodes: int  # episodes per evaluation (DESIGN.md §5: 10)
    checkpoint_every: int  # updates between checkpoints (resume after a kill)
    seeds: int  # training seeds per (method, pair)
    dataset_episodes: int | None = None  # episodes per collected dataset; None: the quality's default size
    max_episode_steps: int | None = None  # shorter collected episodes (smoke data); None: the task's time limit
    behaviour_train_steps: int | None = None  # cap on the behaviour agent's training (medium-replay/medium)
    image_size: int = 64
    variant: str = ""  # dataset variant; "smoke" keeps tiny datasets apart from full-size ones
    target_behaviour: str = "sac"  # agent that makes the target data: "sac" or "dreamerv2" (CoWorld §4)
    source_quality: str = ""  # replaces the group's source pools where a paper's differ ("": the group's)
    source_episodes: int | None = None  # episodes per source dataset where a paper fixes them
    method_steps: dict[str, int] = field(default_factory=dict)  # per-method update budgets (papers' tables)

    def steps_for(self, method: str) -> int:
        return self.method_steps.get(method, self.steps)


@dataclass(frozen=True)
class Suite:
    name: str
    description: str
    groups: tuple[Group, ...]
    budgets: dict[str, Budget]
    paper: str = ""  # `paper` column of reference/paper_results.csv to compare against

    @property
    def pairs(self) -> tuple[Pair, ...]:
        return tuple(dict.fromkeys(p for g in self.groups for p in g.pairs))

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(m for g in self.groups for m in g.methods))

    def budget(self, profile: str) -> Budget:
        if profile not in self.budgets:
            raise unknown("profile", profile, self.budgets, f"choose one of {', '.join(self.budgets)}")
        return self.budgets[profile]


@dataclass(frozen=True)
class Job:
    """One (suite, method, pair, seed) run with everything a worker process needs."""

    suite: str
    profile: str
    method: str
    pair: Pair
    seed: int
    budget: Budget
    data: tuple[DataNeed, ...]
    online_source: bool  # pass pair.source as the online source task
    scratch: bool  # train online from scratch on the target (agents.online.train_from_scratch)
    preset: str = ""  # the method's config preset; "" = the profile's name
    overrides: tuple[tuple[str, Any], ...] = ()  # config fields from --set / --config
    sweep: tuple[tuple[str, Any], ...] = ()  # this job's point of a --sweep grid (also config fields)

    @property
    def base(self) -> tuple[str, dict[str, object]]:
        """The registered method this job runs and its config overrides (variant, --set, sweep point)."""
        name, variant = base_method(self.method)
        return name, {**variant, **dict(self.overrides), **dict(self.sweep)}

    @property
    def config_preset(self) -> str:
        return self.preset or self.profile

    @property
    def label(self) -> str:
        """The method as tables and run directories name it: `coworld`, or `coworld[beta2=0.5]` in a sweep."""
        point = ",".join(f"{k}={v}" for k, v in self.sweep)
        return f"{self.method}[{point}]" if point else self.method

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.label}/{self.pair.name}/seed{self.seed}"


def _pairs(*pairs: tuple[str | tuple[str, ...], str], prefix: str = "") -> tuple[Pair, ...]:
    def env(task: str) -> str:
        return prefix + task

    return tuple(Pair(tuple(env(s) for s in ((src,) if isinstance(src, str) else src)), env(tgt))
                 for src, tgt in pairs)


# The `quick` profile is `owbench check`'s scale (benchmark/check.py runs each method's `quick` preset at these
# budgets): 3,000 offline updates at 32 px, 4,000 for the model-free methods (whose checks need them), 8,000 for BC,
# LOMPO 600 world-model + 4,000 actor-critic updates; 2,500 online updates in the Vid2Act / WPT suites.
QUICK = Budget(steps=3_000, eval_every=1_000, eval_episodes=5, checkpoint_every=500, seeds=2, dataset_episodes=100,
               image_size=32, variant="quick", method_steps={"curl": 4_000, "cql": 4_000, "curl+cql": 4_000,
                                                             "drq+bc": 4_000, "bc": 8_000, "lompo": 4_600})
QUICK_ONLINE = Budget(steps=2_500, eval_every=500, eval_episodes=5, checkpoint_every=500, seeds=2, dataset_episodes=50,
                      image_size=32, variant="quick")


def _transfer_budgets(paper_steps: dict[str, int]) -> dict[str, Budget]:
    """CoWorld-style offline transfer: NeurIPS Table 12 budgets; 10 episodes x 3 seeds."""
    return {
        "smoke": Budget(steps=20, eval_every=10, eval_episodes=1, checkpoint_every=10, seeds=2,
                        dataset_episodes=2, max_episode_steps=100, behaviour_train_steps=1_000,
                        variant="smoke"),
        "quick": QUICK,
        "paper": Budget(steps=300_000, eval_every=10_000, eval_episodes=10, checkpoint_every=10_000, seeds=3,
                        method_steps=paper_steps, target_behaviour="dreamerv2"),
    }


def _online_budgets(online_updates: int, source_quality: str = "", source_episodes: int | None = None
                    ) -> dict[str, Budget]:
    """Pretrain on offline pools (the method's config: 200k updates), then train online on the target:
    `paper` methods count `online_updates` as agent steps at the task's own action repeat, i.e. that many x
    the action repeat environment frames, prefill included (`OnlineConfig.budget = "env_steps"`), so every
    method sees the same frames; `smoke` / `quick` count updates. `paper` pools are `source_episodes` of
    `source_quality` per source where given (the paper's data), else the group's."""
    return {
        "smoke": Budget(steps=20, eval_every=10, eval_episodes=1, checkpoint_every=10, seeds=2,
                        dataset_episodes=2, max_episode_steps=100, behaviour_train_steps=1_000, variant="smoke"),
        "quick": QUICK_ONLINE,
        "paper": Budget(steps=online_updates, eval_every=10_000, eval_episodes=10, checkpoint_every=10_000,
                        seeds=3, source_quality=source_quality, source_episodes=source_episodes),
    }


# NeurIPS Table 12: offline DV2 / CURL / CQL 300k iterations, LOMPO 100k, CoWorld 460k.
_TRANSFER_STEPS = {"lompo": 100_000, "coworld": 460_000, "coworld-multi": 460_000}
_TRANSFER_METHODS = BASELINES + ("coworld",)
# What each method of a transfer suite receives under the paper profile (agents.coworld.updates_per_run
# gives CoWorld's counts, baselines.dv2_finetune's preset its pretraining; tests/benchmark/test_suites.py keeps
# this text equal to them). Table 12 does not list drq+bc, bc, offline-dv2 (its world-model updates included) or
# dv2-finetune: they get the other baselines' 300k offline updates, dv2-finetune after its source pretraining.
_TRANSFER_BUDGETS = ("Paper budgets per job (NeurIPS Table 12): dreamerv2, curl, cql, curl+cql 300k offline updates, "
                     "lompo 100k; coworld 460k target updates plus, in its online source simulator, 20k pretraining "
                     "and {source} co-training source updates (each after 5 source environment steps). "
                     "Not in Table 12, budgeted as the other baselines: drq+bc, bc, offline-dv2 300k offline updates; "
                     "dv2-finetune 20k source pretraining updates (each after 5 source environment steps) plus 300k "
                     "offline finetuning updates. "
                     "`--steps N` gives every method N target updates (the equal-target-update comparison).")

_DMC_PAIRS = _pairs(("walker_walk", "walker_downhill"), ("walker_walk", "walker_uphill"),
                    ("walker_walk", "walker_nofoot"), ("cheetah_run", "cheetah_downhill"),
                    ("cheetah_run", "cheetah_uphill"), ("cheetah_run", "cheetah_nopaw"))
_VID2ACT_DMC_PAIRS = _pairs(*[(("cheetah_run", "hopper_stand", "walker_walk", "walker_run"), t)
                              for t in ("quadruped_walk", "quadruped_run")])
_VID2ACT_MW_PAIRS = _pairs(*[(("button-press-topdown", "door-open", "drawer-close", "peg-insert-side", "pick-place",
                               "push"), t) for t in ("drawer-open", "coffee-push", "button-press", "window-open")],
                           prefix="mw_")
_VID2ACT_ABLATION_PAIRS = tuple(p for p in _VID2ACT_MW_PAIRS if p.target in ("mw_button-press", "mw_drawer-open"))
_WPT_DMC_PAIRS = _pairs(*[(("walker_walk", "cheetah_run", "hopper_hop", "quadruped_run", "cartpole_swingup",
                            "finger_spin"), t) for t in ("walker_run", "cheetah_run", "quadruped_walk")])
_WPT_MW_PAIRS = _pairs(*[(("button-press-topdown", "drawer-open", "door-open", "reach", "push", "window-open"), t)
                         for t in ("assembly", "shelf-place", "button-press-topdown", "drawer-open")], prefix="mw_")
# Vid2Act §5.1: its source data are expert demonstrations, 10 per Meta-World task and 50 trajectories per DMC
# task (the paper profile); smoke / quick keep the cheaper noisy-expert pools
_VID2ACT_MW_DATA, _VID2ACT_DMC_DATA = ("expert", 10), ("expert", 50)
_WPT_POOL = ("noisy-expert", "random")  # the non-curated pool's qualities
_WPT_ABLATION = ("wpt", "wpt-p", "wpt-no-p", "wpt-no-er", "wpt-no-g", "wpt-scratch")  # Fig. 6 (VARIANTS) + control


def _online_group(pairs: tuple[Pair, ...], methods: tuple[str, ...], pool: tuple[str, ...]) -> Group:
    """Methods pretrained on the sources' `pool` datasets, then trained online on the target, against
    DreamerV2 from scratch at the same online budget."""
    return Group(pairs, ("dreamerv2",) + methods, source_qualities=pool, online_target=True,
                 scratch_methods=("dreamerv2",))


def _transfer(name: str, description: str, pairs: tuple[Pair, ...], quality: str, paper: str,
              methods: tuple[str, ...] = _TRANSFER_METHODS) -> Suite:
    group = Group(pairs, methods, target_qualities=(quality,), online_source=True)
    source = "180k" if pairs[0].target.startswith("mw_") else "440k"  # K₂ per K₁ target updates: 20k/50k, 20k/20k
    return Suite(name, f"{description}. {_TRANSFER_BUDGETS.format(source=source)}", (group,),
                 _transfer_budgets(_TRANSFER_STEPS), paper)


SUITES: dict[str, Suite] = {s.name: s for s in [
    _transfer("dmc-transfer", "CoWorld DMC: online source task, offline medium-replay target (arXiv v1 + NeurIPS); "
              "NeurIPS's Offline DV2 column is V-D4RL's penalised Offline DV2, so its numbers sit under offline-dv2, "
              "not dreamerv2 (plain offline DreamerV2, arXiv v1's DreamerV2 column)",
              _DMC_PAIRS, "medium-replay", "coworld-neurips"),
    _transfer("dmc-transfer-medium-expert", "CoWorld DMC with medium-expert target data (NeurIPS Table 9; its "
              "Offline DV2 column under offline-dv2)",
              _DMC_PAIRS, "medium-expert", "coworld-neurips"),
    _transfer("metaworld-transfer", "CoWorld Meta-World, arXiv v1 Table 2 pairs (its DreamerV2 column is plain "
              "offline DreamerV2: dreamerv2; no DrQ+BC, BC, Offline DV2 or DV2 Finetune numbers in arXiv v1)",
              _pairs(("window-close", "door-close"), ("handle-press", "button-press-topdown"),
                     ("drawer-close", "handle-press"), ("drawer-close", "button-press"),
                     ("stick-push", "assembly"), prefix="mw_"),
              "medium-replay", "coworld-arxiv-v1"),
    _transfer("metaworld-transfer-neurips", "CoWorld Meta-World, NeurIPS Table 2 pairs (+ multi-source CoWorld; its "
              "Offline DV2 column under offline-dv2)",
              _pairs(("button-press", "door-close"), ("drawer-close", "button-press"),
                     ("button-press-topdown", "window-close"), ("button-press", "handle-press"),
                     ("window-close", "drawer-close"), ("handle-press", "button-press-topdown"), prefix="mw_"),
              "medium-replay", "coworld-neurips", _TRANSFER_METHODS + ("coworld-multi",)),
    Suite("vid2act-dmc", "Vid2Act: reward-free source pools (paper: 50 expert trajectories each) -> online quadruped targets",
          (_online_group(_VID2ACT_DMC_PAIRS, ("vid2act",), ("noisy-expert",)),),
          _online_budgets(200_000, *_VID2ACT_DMC_DATA), "vid2act"),  # §5.3: 200k iterations = 400k env steps
    Suite("vid2act-metaworld", "Vid2Act Meta-World: six source pools (paper: 10 expert demos each) -> four online targets (300k env steps)",
          (_online_group(_VID2ACT_MW_PAIRS, ("vid2act",), ("noisy-expert",)),),
          _online_budgets(300_000, *_VID2ACT_MW_DATA), "vid2act"),  # §5.2: 300k env steps, no action repeat
    Suite("vid2act-ablation", "Vid2Act Fig. 6 (button-press, drawer-open): without weights, without action replay",
          (_online_group(_VID2ACT_ABLATION_PAIRS, ("vid2act", "vid2act-no-weights", "vid2act-no-replay"),
                         ("noisy-expert",)),), _online_budgets(300_000, *_VID2ACT_MW_DATA), "vid2act"),
    Suite("wpt-dmc", "WPT: multi-embodiment non-curated pool (noisy-expert + random) -> online DMC targets",
          (_online_group(_WPT_DMC_PAIRS, ("wpt",), _WPT_POOL),),
          _online_budgets(75_000), "wpt"),  # 150k samples = 75k agent steps at action repeat 2
    Suite("wpt-metaworld", "WPT Meta-World: non-curated pool -> online manipulation targets (150k samples)",
          (_online_group(_WPT_MW_PAIRS, ("wpt",), _WPT_POOL),),
          _online_budgets(150_000), "wpt"),  # 150k samples
    Suite("wpt-dmc-ablation", "WPT Fig. 6 on the DMC targets: P alone, without P / ER / G",
          (_online_group(_WPT_DMC_PAIRS, _WPT_ABLATION, _WPT_POOL),), _online_budgets(75_000), "wpt"),
    Suite("wpt-metaworld-ablation", "WPT Fig. 6 on the Meta-World targets: P alone, without P / ER / G",
          (_online_group(_WPT_MW_PAIRS, _WPT_ABLATION, _WPT_POOL),), _online_budgets(150_000), "wpt"),
    Suite("smoke", "One tiny pair per family, every method, tiny datasets generated on the fly",
          (Group(_pairs(("walker_walk", "walker_downhill")), ("random",) + _TRANSFER_METHODS,
                 target_qualities=("random",), online_source=True),
           Group(_pairs(("drawer-close", "button-press"), prefix="mw_"), ("random",) + _TRANSFER_METHODS,
                 target_qualities=("random",), online_source=True),
           Group(_pairs((("walker_walk", "cheetah_run"), "walker_run")), ("random", "dreamerv2", "vid2act", "wpt"),
                 source_qualities=("random",), online_target=True, scratch_methods=("dreamerv2",))),
          _transfer_budgets(_TRANSFER_STEPS)),
]}


def get_suite(name: str) -> Suite:
    if name not in SUITES:
        raise unknown("suite", name, SUITES, "run `owbench suites` to list them")
    return SUITES[name]


def _select_pairs(suite: Suite, names: list[str] | None) -> set[Pair]:
    """Pairs by `source__target`, `source->target` or target name."""
    if not names:
        return set(suite.pairs)
    by_name: dict[str, set[Pair]] = {}
    for p in suite.pairs:
        for key in (p.name, f"{p.source}->{p.target}", p.arrow, p.target):
            by_name.setdefault(key, set()).add(p)
    chosen: set[Pair] = set()
    for name in names:
        if name not in by_name:
            known = ", ".join(p.name for p in suite.pairs)
            raise unknown("pair", name, [p.name for p in suite.pairs], f"suite {suite.name!r} has {known}")
        chosen |= by_name[name]
    return chosen


def parse_seeds(text: str | int | None) -> Sequence[int] | None:
    """`3` -> seeds 0..2; `2,5` -> exactly seeds 2 and 5; None -> the profile's number (a range: its
    length is known before anything is allocated)."""
    if text is None:
        return None
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items or not all(t.lstrip("-").isdigit() for t in items):
        raise OwbenchError(f"--seeds {text!r} is neither a number of seeds (--seeds 3) nor a list (--seeds 2,5)")
    values = [int(t) for t in items]
    if len(items) == 1 and "," not in str(text):
        if values[0] < 1:
            raise OwbenchError(f"--seeds {text} must be a positive number of training seeds (e.g. --seeds 3)")
        return range(values[0])
    if min(values) < 0:
        raise OwbenchError(f"--seeds {text}: seeds are numbers >= 0 (e.g. --seeds 2,5)")
    return list(dict.fromkeys(values))


def plan(suite_name: str, profile: str = "smoke", methods: list[str] | None = None,
         pairs: list[str] | None = None, seeds: int | str | list[int] | None = None, steps: int | None = None,
         settings: overrides_lib.Settings = overrides_lib.Settings(),
         datasets: dict[str, str] | None = None) -> list[Job]:
    """Expand a suite into jobs (ordered method-major, then pair, then sweep point, then seed).

    `methods` may name a plug-in method (the `owbench.methods` entry points) outside the suite's list:
    it joins every group. `settings` are --set / --config / --preset / --sweep; `datasets` maps a target task to the
    dataset (path or id) its jobs read instead of a collected one."""
    suite = get_suite(suite_name)
    budget = suite.budget(profile)
    if steps is not None:
        budget = replace(budget, steps=steps, method_steps={})
    registered = all_methods()
    plugins = set(registered) - set(METHODS)
    for m in methods or ():
        if m not in suite.methods and m not in plugins:
            raise unknown("method", m, suite.methods, f"suite {suite.name!r} runs {', '.join(suite.methods)}")
    if methods is not None and not methods:
        raise OwbenchError("--methods names no method; pass a comma-separated list (e.g. --methods random,dreamerv2)")
    if pairs is not None and not pairs:
        raise OwbenchError("--pairs names no pair; pass a comma-separated list (e.g. --pairs walker_downhill)")
    seed_list = parse_seeds(seeds) if not isinstance(seeds, list) else seeds
    if seed_list is None:
        seed_list = range(budget.seeds)
    chosen = _select_pairs(suite, pairs)
    extra = tuple(m for m in methods or () if m not in suite.methods)
    cells = [(method, group, pair) for method in suite.methods + extra if not methods or method in methods
             for group in suite.groups if method in group.methods or method in extra
             for pair in group.pairs if pair in chosen]
    if not cells:
        raise OwbenchError(f"the selection runs no job in suite {suite.name!r}: no chosen method runs on "
                           f"the chosen pairs (see `owbench suites show {suite.name}`)")
    names = {m: base_method(m)[0] for m, _, _ in cells}
    resolved = overrides_lib.resolve(settings, names, {m: base_method(m)[1] for m in names}, profile,
                                     set(registered) | set(VARIANTS))
    total = sum(len(resolved.grids.get(m, [()])) for m, _, _ in cells) * len(seed_list)
    if total > MAX_JOBS:
        raise OwbenchError(f"the selection is {total} jobs, more than {MAX_JOBS}; choose fewer --seeds, --pairs, "
                           "--methods or --sweep values")
    for method in {m for m, g, _ in cells if m in g.scratch_methods}:  # trained by the online loop's preset
        from agents.online import OnlineConfig

        try:
            OnlineConfig.preset(resolved.presets[method])
        except OwbenchError as exc:
            raise OwbenchError(f"{method} learns online from scratch here: {exc}") from exc
    targets = {p.target for _, _, p in cells}
    for target in datasets or {}:
        if target not in targets:
            raise unknown("target", target, sorted(targets), "--dataset TARGET=PATH_OR_ID names a chosen pair's target")
    jobs = []
    for method, group, pair in cells:
        data = group.data(pair, method, budget)
        if datasets and pair.target in datasets and data:
            data = (DataNeed(pair.target, "user", "target", location=datasets[pair.target]),) + \
                tuple(d for d in data if d.role != "target")
        preset = resolved.presets[method]
        sets = tuple(resolved.overrides.get(method, {}).items())
        for point in resolved.grids.get(method, [()]):
            for seed in seed_list:
                jobs.append(Job(suite.name, profile, method, pair, seed, budget, data, group.online_source,
                                method in group.scratch_methods, preset if preset != profile else "", sets, point))
    return jobs


_MADE_BY = {"sac": "a state-based SAC agent (V-D4RL's convention; the paper's was DreamerV2)",
            "dreamerv2": "a pixel DreamerV2 (levels: 1/3 and 0.9 of its maximum score), as in CoWorld §4"}


def data_note(suite: Suite, profile: str) -> str:
    """Which agent made the suite's offline target data under `profile` (for the table caption)."""
    budget = suite.budget(profile)
    qualities = dict.fromkeys(q for g in suite.groups for q in g.target_qualities)
    made = [f"{q} made by " + ("uniform random actions" if q == "random" else
                               _MADE_BY[budget.target_behaviour])
            for q in qualities]
    return f"Target data: {'; '.join(made)}." if made else ""


def datasets_needed(jobs: list[Job]) -> list[DataNeed]:
    """Distinct datasets the jobs read, in first-use order."""
    return list(dict.fromkeys(d for job in jobs for d in job.data))
