"""`owbench collect --behaviour dreamerv2`: CoWorld's medium-replay target data, made by a pixel DreamerV2
(agents/behaviour.py), with the cost told up front and a rich progress bar of agent steps and stop checks."""
from __future__ import annotations

from typing import Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from agents.behaviour import (BehaviourConfig, collect_dreamerv2 as collect, cost_note, dataset_size,
                              dreamer_quality, medium_target)
from agents.contract import resolve_device
from collectors import collect as collection
from collectors import store
from collectors.errors import OwbenchError
from datasets_cli.common import console, print_written


def collect_dreamerv2(env_id: str, quality: str, behaviour: str, *, out: str | None, preset: str, device: str,
                      behaviour_steps: int | None, sac_only: dict[str, Any], **kwargs: Any) -> None:
    """Check the options, tell the cost, collect with progress, print the summary."""
    if behaviour != "dreamerv2":
        raise OwbenchError("--behaviour-steps caps the dreamerv2 behaviour; with sac use --max-train-steps "
                           "(or add --behaviour dreamerv2)")
    given = [flag for flag, value in sac_only.items() if value is not None]
    if given:
        raise OwbenchError(f"{', '.join(given)} {'does' if len(given) == 1 else 'do'} not apply to --behaviour "
                           "dreamerv2 (its training stops at the level's mark); cap it with --behaviour-steps")
    q = dreamer_quality(quality)
    dataset_size(q, kwargs.get("episodes"), kwargs.get("steps"))  # a mistake ends here, before the cost note
    out = out or collection.dataset_id(env_id, q.name, "dreamerv2", kwargs["image_size"])
    store.refuse_foreign(store.resolve_location(out))  # before the cost note, as every other mistake
    device = resolve_device(device)
    goal = medium_target(env_id)
    console.print(cost_note(env_id, BehaviourConfig.preset(preset), behaviour_steps, q.name) + f"; on {device}")
    console.print(f"DreamerV2's maximum: {goal.maximum:.1f}, 1/3 of it {goal.target:.1f} ({goal.source})",
                  highlight=False)
    bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[rate]:>6.1f} agent steps/s  episode return {task.fields[ret]}  "
                              "stop check {task.fields[check]}"),
                   TimeElapsedColumn(), TimeRemainingColumn(), console=console)
    task = None

    def report(p: collection.Progress) -> None:
        nonlocal task
        if task is None:
            bar.start()
            task = bar.add_task(f"{env_id} {q.name} (dreamerv2)", total=None, rate=0.0, ret="-", check="-")
        by_episode = p.phase == "collecting" and p.episodes_target is not None
        bar.update(task, completed=p.episodes if by_episode else p.steps, description=f"{env_id} {q.name} ({p.phase})",
                   total=p.episodes_target if by_episode else p.steps_target, rate=p.frames_per_s,
                   ret="-" if p.last_return is None else f"{p.last_return:.1f}",
                   check="-" if p.eval_return is None else f"{p.eval_return:.1f}")

    try:
        summary = collect(env_id, q.name, out=out, preset=preset, device=device, behaviour_steps=behaviour_steps,
                          progress=report, **kwargs)
    finally:
        bar.stop()
    print_written(summary)
    for kind, info in summary.behaviour.items():
        check = "-" if info["eval_return"] is None else f"{info['eval_return']:.1f}"
        console.print(f"behaviour {kind}: {info['description']}; {info['train_steps']} agent steps "
                      f"({info['env_steps']} environment steps), {info['updates']} updates; last stop check "
                      f"{check} (target {info['target_return']:.1f}); stopped by {info['stopped_by']}",
                      highlight=False)
