"""`owbench check METHOD`: a method's learning check over seeds, PASS when its IQM CI clears random's."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from agents.protocol import EVAL_EPISODES
from benchmark import check as checks
from datasets_cli.common import console

def _table(summary: dict[str, Any], labels: dict[str, str], seeds: list[int]) -> Table:
    roles = summary["roles"]
    table = Table(title="mean return per seed, IQM with its 95% stratified-bootstrap CI")
    table.add_column("seed", justify="right")
    for role in roles:
        table.add_column(labels[role], justify="right")
    for seed in seeds:
        table.add_row(str(seed), *(f"{roles[r]['per_seed'][seed]:.1f}" if seed in roles[r]["per_seed"] else "-"
                                   for r in roles))
    table.add_section()
    table.add_row("IQM", *(f"[bold]{roles[r]['iqm']:.1f}[/]" for r in roles))
    table.add_row("95% CI", *(f"[{roles[r]['ci'][0]:.1f}, {roles[r]['ci'][1]:.1f}]" for r in roles))
    return table


@click.command("check")
@click.argument("method")
@click.option("--seeds", default="5", show_default=True, help="A count (5: seeds 0-4) or a list (0,3,7).")
@click.option("--budget", type=click.Choice(checks.BUDGETS), default="quick", show_default=True,
              help="smoke: mechanics only (tens of updates); quick: the learning check.")
@click.option("--workers", type=click.IntRange(min=1), default=1, show_default=True,
              help="Jobs (method / control / random x seed) in parallel processes, one torch thread each.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Results folder (default ./owbench-check/METHOD-BUDGET); a rerun skips finished jobs.")
@click.option("--eval-episodes", type=int, default=EVAL_EPISODES, show_default=True,
              help="Protocol evaluation episodes per seed.")
@click.option("--device", default="cpu", show_default=True, help="Torch device of the training jobs.")
@click.option("--diagnose", is_flag=True,
              help="Also measure each world model's open-loop image error with true vs shuffled actions.")
def check(method: str, seeds: str, budget: str, workers: int, out: Path | None, eval_episodes: int, device: str,
          diagnose: bool) -> int:
    """Train METHOD, its control and random over seeds; PASS (exit 0) when the method's IQM CI lower bound
    is above random's CI upper bound, else exit 1."""
    seed_list = checks.parse_seeds(seeds)
    out = out or Path("owbench-check") / f"{method.replace('+', '_')}-{budget}"
    setting, jobs = checks.prepare(method, budget, seed_list, out, eval_episodes, device, diagnose)
    level = setting.levels[budget]
    labels = {"method": method, "control": setting.control.label if setting.control else "", "random": "random"}
    console.print(f"check {method} ({budget}): {setting.task} at {setting.image_size} px, data {setting.data}, "
                  f"{level.updates} updates, {eval_episodes} evaluation episodes, seeds {seed_list}; "
                  f"control: {labels['control'] or 'none'}; results in {out}")
    skipped = sum(j.result.exists() for j in jobs)
    if skipped:
        console.print(f"{skipped} of {len(jobs)} jobs already finished in {out}: kept")
    checks.run_jobs(jobs, workers, lambda r: console.print(
        f"  {labels[r['role']]} seed {r['seed']}: {sum(r['returns']) / len(r['returns']):.1f} ({r['minutes']} min)"))
    summary = checks.summarize(checks.results(jobs))
    console.print(_table(summary, labels, seed_list))
    for role, per_seed in summary.get("diagnostics", {}).items():
        console.print(f"{labels[role]}: open-loop image error with true / shuffled actions per seed: " + ", ".join(
            f"{s}: {d['open_loop_error']:.1f} / {d['open_loop_error_shuffled']:.1f} (x{d['action_effect']:.3f})"
            for s, d in per_seed.items()))
    if "gain_over_control" in summary:
        gain = summary["gain_over_control"]
        console.print(f"gain over {labels['control']}: IQM {gain['iqm']:+.1f}, 95% CI "
                      f"[{gain['ci'][0]:+.1f}, {gain['ci'][1]:+.1f}] (reported, not required)")
    ci, floor = summary["roles"]["method"]["ci"][0], summary["roles"]["random"]["ci"][1]
    verdict = "[bold green]PASS[/]" if summary["passed"] else "[bold red]FAIL[/]"
    relation = ">" if ci > floor else "<="
    few = "" if len(seed_list) >= checks.MIN_SEEDS else f" (a PASS needs >= {checks.MIN_SEEDS} seeds)"
    console.print(f"{verdict}: {method}'s CI lower bound {ci:.1f} {relation} random's CI upper bound {floor:.1f}{few}")
    record = {**json.loads((out / "check.json").read_text()), "seeds": seed_list, **summary}
    (out / "summary.json").write_text(json.dumps(record, indent=1))
    return 0 if summary["passed"] else 1
