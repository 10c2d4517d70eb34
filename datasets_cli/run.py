"""`owbench suites`, `owbench suites show NAME`, `owbench run --suite NAME`, `owbench report RUN_DIR`."""
from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from benchmark import overrides, runner, suites as suite_lib
from benchmark.tables import profile_banner
from collectors.errors import OwbenchError
from collectors.home import owbench_home
from datasets_cli.common import console


def _csv(value: str | None) -> list[str] | None:
    """None when the option was not given; else its items (possibly none: `--pairs ,,,` is refused)."""
    return None if value is None else [v.strip() for v in value.split(",") if v.strip()]


def _datasets(items: tuple[str, ...]) -> dict[str, str]:
    """`--dataset TARGET=PATH_OR_ID` pairs."""
    return dict(overrides.parse_assignment(item, "--dataset") for item in items)


def _settings(sets: tuple[str, ...], config: str | None, presets: tuple[str, ...],
              sweep: tuple[str, ...]) -> overrides.Settings:
    """--config first, then --set on top (the command line wins)."""
    from_file = overrides.read_config_file(config) if config else ()
    return overrides.Settings(from_file + overrides.parse_sets(sets), overrides.parse_presets(presets),
                              overrides.parse_sweep(sweep))


@click.group("suites", invoke_without_command=True)
@click.pass_context
def suites(ctx: click.Context) -> None:
    """List the benchmark suites."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="owbench suites")
    table.add_column("suite", no_wrap=True, min_width=max(map(len, suite_lib.SUITES)))
    for col in ("pairs", "methods", "description"):
        table.add_column(col)
    for s in suite_lib.SUITES.values():
        table.add_row(s.name, str(len(s.pairs)), ", ".join(s.methods), s.description)
    console.print(table)


@suites.command("show")
@click.argument("name")
@click.option("--profile", default="paper", show_default=True, help="Budget profile: smoke, quick or paper.")
def show(name: str, profile: str) -> None:
    """Print a suite's plan: pairs, methods, datasets and the budget of one profile."""
    s = suite_lib.get_suite(name)
    budget = s.budget(profile)
    console.print(f"[bold]{s.name}[/]: {s.description}")
    if s.paper:
        console.print(f"paper numbers: {s.paper} (reference/paper_results.csv)")
    for i, group in enumerate(s.groups, 1):
        table = Table(title=f"group {i}: methods {', '.join(group.methods)}")
        for col in ("source(s)", "target", "source / target learned", "methods: datasets (env quality)"):
            table.add_column(col)
        for pair in group.pairs:
            by_data: dict[str, list[str]] = {}
            for m in group.methods:
                data = " + ".join(f"{d.env_id} {d.quality}" + (f" by {d.behaviour}" if d.behaviour != "sac" else "")
                                  + (f" ({d.episodes} episodes)" if d.episodes else "")
                                  for d in group.data(pair, m, budget)) or "none"
                by_data.setdefault(data, []).append(m)
            lines = "\n".join(f"{', '.join(ms)}: {d}" for d, ms in by_data.items())
            learned = ("online simulator" if group.online_source else "offline pool") + " / " + \
                ("online" if group.online_target else "offline")
            scratch = f"\n{', '.join(group.scratch_methods)}: online from scratch" if group.scratch_methods else ""
            table.add_row(", ".join(pair.sources), pair.target, learned, lines + scratch)
        console.print(table)
    if s.paper:
        _print_paper_numbers(s)
    table = Table(title=f"budget per job ({profile} profile)", show_header=False)
    for key, value in vars(budget).items():
        table.add_row(key, str(value))
    console.print(table)


def _print_paper_numbers(s: suite_lib.Suite) -> None:
    """The suite paper's reported returns of the suite's methods (benchmark/tables.py maps renamed columns)."""
    from benchmark.tables import paper_numbers

    numbers = paper_numbers(s.name, s.paper, [(p.source, p.target) for p in s.pairs], list(s.methods))
    if numbers.columns.empty:
        return
    table = Table(title=f"paper numbers ({s.paper}): episode return, mean ± std")
    for col in ("source → target", *numbers.columns):
        table.add_column(col)
    for label, row in numbers.iterrows():
        table.add_row(str(label), *row.tolist())
    console.print(table)


@click.command("run")
@click.option("--suite", "suite_name", required=True, help="Suite name (see `owbench suites`).")
@click.option("--profile", default="smoke", show_default=True, help="Budget profile: smoke, quick or paper.")
@click.option("--methods", default=None, help="Comma-separated subset of the suite's methods (or a registered "
              "method outside the suite, e.g. one added through the owbench.methods entry point).")
@click.option("--pairs", default=None, help="Comma-separated pairs: source__target, source->target or target.")
@click.option("--seeds", default=None, help="Training seeds: a number N (seeds 0..N-1) or a list (2,5) "
              "[profile's number].")
@click.option("--steps", type=click.IntRange(1), default=None, help="Override the update budget per job.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
              help="Override a config field of every method that has it (batch_size=32) or of one method "
                   "(coworld.beta2=1.0); repeatable; part of the job's identity.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="YAML or TOML file of --set keys and values (--set wins).")
@click.option("--preset", "presets", multiple=True, metavar="[METHOD=]NAME",
              help="Config preset instead of the profile's, e.g. code or coworld=arxiv-v1; repeatable.")
@click.option("--sweep", multiple=True, metavar="KEY=V1,V2,...",
              help="One job per value (a grid over several --sweep), e.g. coworld.beta2=0.5,1,1.5,2; the report "
                   "adds a sensitivity table and plot.")
@click.option("--dataset", "datasets", multiple=True, metavar="TARGET=PATH_OR_ID",
              help="Read this dataset (e.g. one made by `owbench datasets import`) for TARGET instead of "
                   "collecting one; repeatable.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run directory [$OWBENCH_HOME/runs].")
@click.option("--rerun-stale", is_flag=True,
              help="Move job folders of another identity (budget, config, datasets) to OUT/.stale/ and rerun them.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--executor", type=click.Choice(runner.EXECUTORS), default="local", show_default=True)
@click.option("--workers", type=click.IntRange(1), default=None,
              help="Jobs at once (local processes, or CPUs of a local Ray); also collection workers. "
                   "[one per GPU with a GPU device, else 1]")
@click.option("--ray-address", default=None, help="Ray cluster address (e.g. ray://head:10001); local Ray if unset.")
@click.option("--collect/--no-collect", default=True, show_default=True,
              help="Collect missing datasets first into the dataset home.")
@click.option("--logger", type=click.Choice(("csv", "tensorboard")), default="csv", show_default=True,
              help="Metrics to metrics.csv, or also TensorBoard scalars (pip install 'owbench[tensorboard]').")
@click.option("--dry-run", is_flag=True, help="Print the jobs, their estimated cost and the datasets to collect; "
              "run nothing.")
def run(suite_name: str, profile: str, methods: str | None, pairs: str | None, seeds: str | None,
        steps: int | None, sets: tuple[str, ...], config_file: str | None, presets: tuple[str, ...],
        sweep: tuple[str, ...], datasets: tuple[str, ...], out: str | None, rerun_stale: bool, device: str,
        executor: str, workers: int | None, ray_address: str | None, collect: bool, logger: str,
        dry_run: bool) -> None:
    """Run a suite: collect missing datasets, run every job, write results, tables, plots and report.html."""
    settings = _settings(sets, config_file, presets, sweep)
    jobs = suite_lib.plan(suite_name, profile, _csv(methods), _csv(pairs), seeds, steps, settings,
                          _datasets(datasets))
    out_dir = Path(out) if out else owbench_home() / "runs"
    note = profile_banner(profile)  # the words of report.html and table.md
    if dry_run:
        _dry_run(jobs, suite_name, profile, out_dir, device)
        return
    sweep_result = runner.run_sweep(jobs, out_dir, device=device, executor=executor, workers=workers,
                                    ray_address=ray_address, collect=collect, rerun_stale=rerun_stale,
                                    tensorboard=logger == "tensorboard")
    console.print(f"jobs: {len(sweep_result.done)} done, {len(sweep_result.skipped)} skipped (finished before), "
                  f"{len(sweep_result.failed)} failed")
    for key, log in sweep_result.failed.items():
        console.print(f"[red]failed[/] {key}: log {log}")
    for path in sweep_result.reports:
        _print_table(Path(path).parent / "table.md")
        console.print(f"report: {path}")
    if note and sweep_result.reports:
        console.print(f"[bold yellow]{note}[/]", soft_wrap=True)
    if sweep_result.errors:  # a mistake the user can fix: exit 2 with its one line
        key, message = next(iter(sweep_result.errors.items()))
        more = len(sweep_result.errors) - 1
        raise OwbenchError(f"{key}: {message}" + (f" (and {more} more job(s); see their job.log)" if more else ""))
    if sweep_result.failed:
        raise SystemExit(1)


def _dry_run(jobs: list, suite_name: str, profile: str, out_dir: Path, device: str) -> None:
    """The jobs with their state, the estimated cost per job and in total, and the datasets to collect."""
    from benchmark import cost

    runner.check_user_datasets(jobs)
    console.print(f"{len(jobs)} jobs of {suite_name} ({profile} profile) in {out_dir}")
    estimate = cost.estimate(jobs, device, say=lambda line: console.print(line, style="dim"))
    table = Table()
    for col in ("method", "pair", "seed", "steps", "state", "hours here", "hours on GPU", "datasets"):
        table.add_column(col, overflow="fold")
    for j in jobs:
        table.add_row(j.label, j.pair.arrow, str(j.seed), str(j.budget.steps_for(j.method)),
                      runner.job_state(out_dir, j), cost.hours_text(estimate.hours.get(j.key)),
                      cost.hours_text(estimate.gpu_hours.get(j.key)),
                      ", ".join(d.location or f"{d.env_id} {d.quality}" for d in j.data) or "–")
    console.print(table)
    console.print(estimate.summary(), soft_wrap=True)
    missing = runner.missing_datasets(jobs)
    console.print(f"datasets to collect: {len(missing)}" +
                  (f", {estimate.disk()} on disk" if missing else ""))
    for need, loc in missing:
        console.print(f"  {need.env_id} {need.quality}: {runner.collect_command(need, jobs[0].budget, loc)}",
                      soft_wrap=True)


def _print_table(table_md: Path) -> None:
    """Show the suite's result table (Markdown) in the terminal."""
    if table_md.exists():
        from rich.markdown import Markdown

        console.print(Markdown(table_md.read_text()))


@click.command("report")
@click.argument("run_dir", type=click.Path())
@click.option("--paper/--no-paper", default=True, show_default=True, help="Add the papers' numbers where known.")
def report(run_dir: str, paper: bool) -> None:
    """Rebuild results.csv, tables, statistics, plots and report.html of a run directory."""
    from benchmark.report import suite_dirs, write_report

    for suite_dir in suite_dirs(Path(run_dir)):
        path = write_report(suite_dir, paper=paper)
        _print_table(suite_dir / "table.md")
        console.print(f"{suite_dir.name}: results.csv, table.csv/.tex/.md, stats.csv, improvement.csv, "
                      f"curves/, filmstrips/ -> {path}")
