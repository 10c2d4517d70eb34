"""Result tables with pandas: wide table.csv, booktabs table.tex, table.md.

Rows are source→target pairs, columns methods; each cell is the mean ± std of the final-evaluation
return over all evaluation episodes of all seeds (the papers' convention; one episode: the value alone).
Only the paper profile's tables compare: the best learned method per row in bold and a `paper` column set
from the shipped copy of reference/paper_results.csv when the suite has one. Other profiles carry a banner
that their numbers check mechanics, and neither bold nor paper numbers.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

STATS = ("mean", "std", "episodes", "seeds", "success", "normalized")
REFERENCE_METHODS = ("random",)  # reference levels, never "best"
BANNERS = {
    "smoke": "SMOKE CHECK: smoke-profile numbers (tens of updates, tiny datasets) check that the pipeline runs; "
             "they say nothing about how well a method performs. Use --profile paper for results.",
    "quick": "QUICK PROFILE: reduced budgets (hours on a CPU) for trends only; not comparable with the papers' "
             "numbers. Use --profile paper for results.",
}


def profile_banner(profile: str) -> str | None:
    """The warning a non-paper profile's output carries, or None for the paper profile."""
    if profile == "paper":
        return None
    return BANNERS.get(profile, f"{profile.upper()} PROFILE: not the papers' budgets; numbers are not results.")


# Methods a paper's rows name otherwise: paper -> {owbench method: its rows' `method`, or None for none}.
# CoWorld NeurIPS's "Offline DV2" (rows `dreamerv2`) is V-D4RL's Offline DV2 (Lu et al.), the penalised
# two-stage DreamerV2, not the plain offline DreamerV2 of arXiv v1's "DreamerV2" column: its numbers differ
# from arXiv v1's on the same pairs and data (cheetah_downhill 243 ± 7 vs 703 ± 52, walker_uphill 139 ± 4
# vs 279 ± 37) with the tight spreads of a penalised learner.
PAPER_METHOD_NAMES: dict[str, dict[str, str | None]] = {"coworld-neurips": {"offline-dv2": "dreamerv2",
                                                                            "dreamerv2": None}}


def paper_method(paper: str, method: str) -> str | None:
    """The `method` of `paper`'s rows that report owbench's `method` (None: the paper has none)."""
    return PAPER_METHOD_NAMES.get(paper, {}).get(method, method)


def paper_results() -> pd.DataFrame:
    """The papers' reported numbers (benchmark/data/paper_results.csv)."""
    with resources.files("benchmark").joinpath("data/paper_results.csv").open() as f:
        return pd.read_csv(f)


def wide_table(final: pd.DataFrame, order: tuple[str, ...] = ()) -> pd.DataFrame:
    """(source, target) x `<method> <stat>` numbers: return mean / std (ddof 0) over all final episodes
    of all seeds, episode and seed counts, success rate and mean normalised score. Methods in `order` first."""
    g = final.groupby(["source", "target", "method"], sort=False)
    stats = pd.DataFrame({"mean": g["return"].mean(), "std": g["return"].std(ddof=0), "episodes": g.size(),
                          "seeds": g["seed"].nunique(), "success": g["success"].mean(),
                          "normalized": g["normalized"].mean()})
    methods = [m for m in order if m in set(final["method"])] + sorted(set(final["method"]) - set(order))
    wide = stats.unstack("method").swaplevel(axis=1).reindex(columns=[(m, s) for m in methods for s in STATS])
    wide.columns = [f"{m} {s}" for m, s in wide.columns]
    return wide


def with_paper(wide: pd.DataFrame, suite: str, paper: str, methods: list[str]) -> pd.DataFrame:
    """Add `<method> paper` / `<method> paper std` columns for the methods `paper` reported on this suite."""
    ref = paper_results()
    ref = ref[(ref["paper"] == paper) & (ref["suite"] == suite) & (ref["metric"] == "episode_return")]
    out = wide.copy()
    for method in methods:
        rows = ref[ref["method"] == paper_method(paper, method)].set_index(["source", "target"])
        if rows.empty:
            continue
        keys = [(s.removeprefix("mw_"), t.removeprefix("mw_")) for s, t in wide.index]
        out[f"{method} paper"] = [rows["mean"].get(k, np.nan) for k in keys]
        out[f"{method} paper std"] = [rows["std"].get(k, np.nan) for k in keys]
    return out


def paper_numbers(suite: str, paper: str, pairs: list[tuple[str, str]], methods: list[str]) -> pd.DataFrame:
    """`paper`'s reported returns on `suite`, "mean ± std" per pair (rows, source → target) and method (columns),
    for the methods it reports ("–" where a pair lacks one); empty when it reports none."""
    wide = with_paper(pd.DataFrame(index=pd.MultiIndex.from_tuples(pairs, names=["source", "target"])),
                      suite, paper, methods)
    def reported(mu: float, sd: float) -> str:  # as the paper printed it (integers in the CoWorld tables)
        return "–" if np.isnan(mu) else f"{mu:g}" + (f" ± {sd:g}" if np.isfinite(sd) else "")

    cells = pd.DataFrame(index=pd.Index(_pair_labels(wide, " → "), name="source → target"))
    for method in methods:
        if f"{method} paper" in wide.columns:
            cells[method] = [reported(mu, sd) for mu, sd in zip(wide[f"{method} paper"], wide[f"{method} paper std"])]
    return cells


def _methods(wide: pd.DataFrame) -> list[str]:
    return [c.removesuffix(" mean") for c in wide.columns if c.endswith(" mean")]


def _cells(wide: pd.DataFrame, pm: str, bold: str | None) -> pd.DataFrame:
    """'mean ± std' strings (± written as `pm`; a single episode: the value alone), with `bold` the best
    learned method's mean per row wrapped by it; paper columns last."""
    def cell(mu: float, sd: float, n: float = 2) -> str:
        if not np.isfinite(mu):
            return "–"
        return f"{mu:.1f}{pm}{sd:.1f}" if np.isfinite(sd) and n > 1 else f"{mu:.1f}"

    methods = _methods(wide)
    means = wide[[f"{m} mean" for m in methods]].to_numpy(np.float64)
    ranked = np.array([m not in REFERENCE_METHODS for m in methods])
    best = np.nanmax(np.where(np.isnan(means) | ~ranked, -np.inf, means), axis=1)
    cells = pd.DataFrame(index=wide.index)
    for j, m in enumerate(methods):
        text = [cell(mu, sd, n) for mu, sd, n in zip(means[:, j], wide[f"{m} std"], wide[f"{m} episodes"])]
        cells[m] = [bold.format(t) if bold and ranked[j] and means[i, j] == best[i] else t
                    for i, t in enumerate(text)]
    for col in wide.columns:
        if col.endswith(" paper"):
            cells[col.replace(" paper", " (paper)")] = [cell(mu, sd) for mu, sd in zip(wide[col], wide[f"{col} std"])]
    return cells


def _pair_labels(wide: pd.DataFrame, arrow: str, escape=lambda s: s) -> list[str]:
    return [f"{escape(s)}{arrow}{escape(t)}" for s, t in wide.index]


def caption(final: pd.DataFrame, suite: str, profile: str, paper: str = "", note: str = "") -> str:
    """States seeds, episodes and what ± means (and, for the paper profile, what is bold); `note` (e.g. which
    agent made the data) is appended."""
    per_seed = final.groupby(["method", "source", "target", "seed"]).size()
    seeds = final.groupby(["method", "source", "target"])["seed"].nunique()
    span = lambda s: f"{s.min()}" if s.min() == s.max() else f"{s.min()}–{s.max()}"  # noqa: E731
    text = (f"{suite} ({profile} profile): final evaluation return, mean ± standard deviation over all "
            f"{span(per_seed)} evaluation episodes of each of {span(seeds)} training seeds per cell (± is the "
            "standard deviation across all those episodes, pooled over seeds; a cell of one episode shows its "
            "value alone).")
    if profile_banner(profile) is None:
        text += " Best learned method per row in bold."
    if paper:
        text += f" (paper): values reported in {paper}."
    return f"{text} {note}" if note else text


def latex_table(wide: pd.DataFrame, text: str, bold: bool = True) -> str:
    """booktabs tabular in a table float; underscores escaped, with `bold` the best per row in \\textbf."""
    def esc(s: str) -> str:
        return s.replace("_", r"\_").replace("&", r"\&").replace("%", r"\%")

    cells = _cells(wide, " $\\pm$ ", "\\textbf{{{}}}" if bold else None).replace("–", "--")
    cells.columns = [esc(c) for c in cells.columns]
    cells.insert(0, "Source $\\rightarrow$ Target", _pair_labels(wide, r" $\rightarrow$ ", esc))
    return cells.to_latex(index=False, escape=False, caption=esc(text).replace("±", "$\\pm$"), label="tab:owbench-results",
                          column_format="l" + "c" * (len(cells.columns) - 1), position="t")


def markdown_table(wide: pd.DataFrame, text: str, success: bool = False, bold: bool = True) -> str:
    """The return table and its caption; with `success` (Meta-World) also each cell's success rate."""
    cells = _cells(wide, " ± ", "**{}**" if bold else None)
    cells.index = pd.Index(_pair_labels(wide, " → "), name="source → target")
    out = cells.to_markdown() + f"\n\n{text}\n"
    if success:
        rates = success_table(wide).map(lambda r: "–" if np.isnan(r) else f"{100 * r:.0f}%")
        out += ("\n" + rates.to_markdown() + "\n\nSuccess rate: share of those evaluation episodes that "
                "ended in success.\n")
    return out


def success_table(wide: pd.DataFrame) -> pd.DataFrame:
    """Success rate (0-1) over all final evaluation episodes per pair (rows) and method (columns)."""
    return _stat_table(wide, "success").astype(float)


def html_table(wide: pd.DataFrame, bold: bool = True) -> str:
    cells = _cells(wide, " ± ", "<b>{}</b>" if bold else None)
    cells.insert(0, "source → target", _pair_labels(wide, " → "))
    return cells.to_html(escape=False, index=False)


def normalized_table(wide: pd.DataFrame) -> pd.DataFrame:
    """Mean normalised score 100·(R − random)/(expert − random) per pair (rows) and method (columns)."""
    return _stat_table(wide, "normalized")


def _stat_table(wide: pd.DataFrame, stat: str) -> pd.DataFrame:
    """One statistic of every method: pairs (rows, labelled source → target) x methods (columns)."""
    methods = _methods(wide)
    table = wide[[f"{m} {stat}" for m in methods]].set_axis(methods, axis=1)
    table.index = pd.Index(_pair_labels(wide, " → "), name="source → target")
    return table


def write_tables(final: pd.DataFrame, out_dir: Path, suite: str, profile: str, paper: str = "",
                 order: tuple[str, ...] = (), note: str = "") -> tuple[pd.DataFrame, str]:
    """Write table.csv, table.tex and table.md into `out_dir` (method columns in `order` first);
    returns the wide table and its caption. Only the paper profile gets bold and the papers' numbers."""
    wide = wide_table(final, order)
    compare = profile_banner(profile) is None
    if paper and compare:
        wide = with_paper(wide, suite, paper, _methods(wide))
    has_paper = any(c.endswith(" paper") for c in wide.columns)
    text = caption(final, suite, profile, paper if has_paper else "", note)
    out_dir = Path(out_dir)
    wide.to_csv(out_dir / "table.csv")
    banner = profile_banner(profile)
    (out_dir / "table.tex").write_text(latex_table(wide, f"{banner} {text}" if banner else text, bold=compare))
    (out_dir / "table.md").write_text((f"> **{banner}**\n\n" if banner else "")
                                      + markdown_table(wide, text, success="metaworld" in suite, bold=compare))
    return wide, text


def sensitivity_table(final: pd.DataFrame, sweeps: dict[str, tuple[str, dict]]) -> pd.DataFrame:
    """A --sweep's effect (the CoWorld papers' β₂ / k / α figures): one row per (method, swept value(s)),
    per pair the mean final return over all episodes of all seeds and its std across seeds' means.
    `sweeps` maps a swept method label to (base method, {field: value})."""
    rows = []
    runs = final[final["method"].isin(sweeps)].groupby(["method", "source", "target", "seed"])["return"].mean()
    for (label, source, target), per_seed in runs.groupby(level=[0, 1, 2]):
        base, point = sweeps[label]
        rows.append({"method": base, **{k: v for k, v in point.items()}, "pair": f"{source} → {target}",
                     "mean": per_seed.mean(), "std across seeds": per_seed.std(ddof=0), "seeds": len(per_seed)})
    return pd.DataFrame(rows)
