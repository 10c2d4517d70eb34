"""Benchmark suites as data (DESIGN.md §6): pairs / tasks, methods, the datasets each job needs, budgets.

A suite is a few `Group`s (pairs that share methods and data) plus a `Budget` per profile
(`smoke`: seconds on CPU, `quick`: hours on a CPU machine, `paper`: the papers' values).
`plan(...)` expands a suite into `Job`s, one per (method, pair, seed); the runner executes them.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from benchmark.methods import get_method
from collectors.errors import OwbenchError, unknown

PROFILES = ("smoke", "quick", "paper")
# drq+bc, bc and offline-dv2 (its world-model updates included) get the suites' default budget, dv2-finetune as
# many offline finetuning updates after its source pretraining (NeurIPS Table 12 does not list them).
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

    def data(self, pair: Pair, method: str) -> tuple[DataNeed, ...]:
        """Datasets a (method, pair) job reads; evaluation-only and from-scratch methods read none."""
        if method in self.scratch_methods or get_method(base_method(method)[0]).batch == "none":
            return ()
        return (tuple(DataNeed(pair.target, q, "target") for q in self.target_qualities)
                + tuple(DataNeed(s, q, "source") for s in pair.sources for q in self.source_qualities))


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

    @property
    def base(self) -> tuple[str, dict[str, object]]:
        """The registered method this job runs and its config overrides."""
        return base_method(self.method)

    @property
    def key(self) -> str:
        return f"{self.suite}/{self.method}/{self.pair.name}/seed{self.seed}"


def _pairs(*pairs: tuple[str | tuple[str, ...], str], prefix: str = "") -> tuple[Pair, ...]:
    def env(task: str) -> str:
        return prefix + task

    return tuple(Pair(tuple(env(s) for s in ((src,) if isinstance(src, str) else src)), env(tgt))
                 for src, tgt in pairs)


def _transfer_budgets(paper_steps: dict[str, int]) -> dict[str, Budget]:
    """CoWorld-style offline transfer: NeurIPS Table 12 budgets; 10 episodes x 3 seeds."""
    return {
        "smoke": Budget(steps=20, eval_every=10, eval_episodes=1, checkpoint_every=10, seeds=2,
                        dataset_episodes=2, max_episode_steps=100, behaviour_train_steps=1_000,
                        variant="smoke"),
        "quick": Budget(steps=20_000, eval_every=5_000, eval_episodes=5, checkpoint_every=2_500, seeds=2,
                        dataset_episodes=100, variant="quick"),
        "paper": Budget(steps=300_000, eval_every=10_000, eval_episodes=10, checkpoint_every=10_000, seeds=3,
                        method_steps=paper_steps),
    }


def _online_budgets(online_updates: int) -> dict[str, Budget]:
    """Pretrain on offline pools (the method's config: 200k updates), then `steps` online updates
    on the target at one update per agent step (paper profile)."""
    return {
        "smoke": Budget(steps=20, eval_every=10, eval_episodes=1, checkpoint_every=10, seeds=2,
                        dataset_episodes=2, max_episode_steps=100, behaviour_train_steps=1_000, variant="smoke"),
        "quick": Budget(steps=10_000, eval_every=2_500, eval_episodes=5, checkpoint_every=2_500, seeds=2,
                        dataset_episodes=50, variant="quick"),
        "paper": Budget(steps=online_updates, eval_every=10_000, eval_episodes=10, checkpoint_every=10_000,
                        seeds=3),
    }


# NeurIPS Table 12: offline DV2 / CURL / CQL 300k iterations, LOMPO 100k, CoWorld 460k.
_TRANSFER_STEPS = {"lompo": 100_000, "coworld": 460_000, "coworld-multi": 460_000}
_TRANSFER_METHODS = BASELINES + ("coworld",)

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
_WPT_POOL = ("noisy-expert", "random")  # the non-curated pool's qualities
_WPT_ABLATION = ("wpt", "wpt-p", "wpt-no-p", "wpt-no-er", "wpt-no-g")  # Fig. 6 (VARIANTS)


def _online_group(pairs: tuple[Pair, ...], methods: tuple[str, ...], pool: tuple[str, ...]) -> Group:
    """Methods pretrained on the sources' `pool` datasets, then trained online on the target, against
    DreamerV2 from scratch at the same online budget."""
    return Group(pairs, ("dreamerv2",) + methods, source_qualities=pool, online_target=True,
                 scratch_methods=("dreamerv2",))


def _transfer(name: str, description: str, pairs: tuple[Pair, ...], quality: str, paper: str,
              methods: tuple[str, ...] = _TRANSFER_METHODS) -> Suite:
    group = Group(pairs, methods, target_qualities=(quality,), online_source=True)
    return Suite(name, description, (group,), _transfer_budgets(_TRANSFER_STEPS), paper)


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
    Suite("vid2act-dmc", "Vid2Act: noisy-expert reward-free source pools -> online quadruped targets",
          (_online_group(_VID2ACT_DMC_PAIRS, ("vid2act",), ("noisy-expert",)),),
          _online_budgets(200_000), "vid2act"),  # §5.3: 200k iterations = 400k env steps
    Suite("vid2act-metaworld", "Vid2Act Meta-World: six source pools -> four online targets (300k env steps)",
          (_online_group(_VID2ACT_MW_PAIRS, ("vid2act",), ("noisy-expert",)),),
          _online_budgets(300_000), "vid2act"),  # §5.2: 300k env steps, no action repeat
    Suite("vid2act-ablation", "Vid2Act Fig. 6 (button-press, drawer-open): without weights, without action replay",
          (_online_group(_VID2ACT_ABLATION_PAIRS, ("vid2act", "vid2act-no-weights", "vid2act-no-replay"),
                         ("noisy-expert",)),), _online_budgets(300_000), "vid2act"),
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


def plan(suite_name: str, profile: str = "smoke", methods: list[str] | None = None,
         pairs: list[str] | None = None, seeds: int | None = None, steps: int | None = None) -> list[Job]:
    """Expand a suite into jobs (ordered method-major, then pair, then seed)."""
    suite = get_suite(suite_name)
    budget = suite.budget(profile)
    if steps is not None:
        budget = replace(budget, steps=steps, method_steps={})
    for m in methods or ():
        if m not in suite.methods:
            raise unknown("method", m, suite.methods, f"suite {suite.name!r} runs {', '.join(suite.methods)}")
    if seeds is not None and seeds < 1:
        raise OwbenchError(f"--seeds {seeds} must be a positive number of training seeds (e.g. --seeds 3)")
    chosen = _select_pairs(suite, pairs)
    jobs = []
    for method in suite.methods:
        if methods and method not in methods:
            continue
        for group in suite.groups:
            if method not in group.methods:
                continue
            for pair in group.pairs:
                if pair not in chosen:
                    continue
                for seed in range(seeds or budget.seeds):
                    jobs.append(Job(suite.name, profile, method, pair, seed, budget, group.data(pair, method),
                                    group.online_source, method in group.scratch_methods))
    if not jobs:
        raise OwbenchError(f"the selection runs no job in suite {suite.name!r}: no chosen method runs on "
                           f"the chosen pairs (see `owbench suites show {suite.name}`)")
    return jobs


def datasets_needed(jobs: list[Job]) -> list[DataNeed]:
    """Distinct datasets the jobs read, in first-use order."""
    return list(dict.fromkeys(d for job in jobs for d in job.data))
