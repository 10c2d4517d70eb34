"""`owbench collect`: make (or resume) one dataset with a rich progress bar."""
from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from collectors import collect as collection
from collectors.qualities import QUALITIES
from datasets_cli.common import console, print_written


def _camera(value: str | None) -> str | int | None:
    """A camera id (`0`, `-1`) or name."""
    try:
        return int(value) if value is not None else None
    except ValueError:
        return value


@click.command("collect")
@click.option("--env", "env_id", required=True, help="Task id, e.g. walker_walk, walker_downhill, mw_door-close.")
@click.option("--quality", required=True, help=f"One of: {', '.join(QUALITIES)}.")
@click.option("--episodes", type=click.IntRange(1), default=None, help="Episodes to collect (default 100).")
@click.option("--steps", type=click.IntRange(1), default=None, help="Agent steps to collect (whole episodes).")
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True)
@click.option("--out", default=None, help="Path or fsspec URL (default: $OWBENCH_HOME/datasets/<id>.zarr).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
              help="Rendering processes: this one plus N-1 spawned helpers.")
@click.option("--image-size", type=click.IntRange(16, 1024), default=64, show_default=True)
@click.option("--camera", default=None, help="Camera id or name (default: the suite's).")
@click.option("--fast-render", is_flag=True, help="No shadows/reflections (faster; recorded in the metadata).")
@click.option("--max-episode-steps", type=click.IntRange(1), default=None,
              help="Cut episodes shorter than the task's time limit (recorded).")
@click.option("--max-train-steps", type=click.IntRange(1), default=None,
              help="Cap on behaviour-agent (SAC) training, in agent steps.")
@click.option("--sac-preset", type=click.Choice(["smoke", "quick", "paper"]), default="quick", show_default=True,
              help="Behaviour SAC hyperparameters.")
@click.option("--overwrite", is_flag=True, help="Replace a dataset made with other arguments.")
@click.option("--behaviour", type=click.Choice(["sac", "dreamerv2"]), default="sac", show_default=True,
              help="Behaviour agent: state SAC (V-D4RL-style data) or pixel DreamerV2 (CoWorld's medium-replay).")
@click.option("--behaviour-steps", type=click.IntRange(1), default=None,
              help="dreamerv2: stop after this many agent steps, even before the 1/3 mark (recorded).")
@click.option("--behaviour-preset", type=click.Choice(["smoke", "quick", "paper"]), default="paper",
              show_default=True, help="dreamerv2: the agent's model and stop-check preset.")
@click.option("--device", default="auto", show_default=True, help="dreamerv2: cpu, cuda or auto.")
def collect(env_id: str, quality: str, episodes: int | None, steps: int | None, seed: int, out: str | None,
            workers: int, image_size: int, camera: str | None, fast_render: bool, max_episode_steps: int | None,
            max_train_steps: int | None, sac_preset: str, overwrite: bool, behaviour: str = "sac",
            behaviour_steps: int | None = None, behaviour_preset: str = "paper", device: str = "auto") -> None:
    """Collect a dataset: behaviour policy on the state, rendered images, crash-safe and resumable."""
    if behaviour == "dreamerv2" or behaviour_steps is not None:
        from datasets_cli.collect_dreamer import collect_dreamerv2

        return collect_dreamerv2(env_id, quality, behaviour, seed=seed, out=out, image_size=image_size,
                                 camera=_camera(camera), fast_render=fast_render, overwrite=overwrite,
                                 max_episode_steps=max_episode_steps, behaviour_steps=behaviour_steps,
                                 preset=behaviour_preset, device=device, episodes=episodes, steps=steps,
                                 sac_only={"--max-train-steps": max_train_steps,
                                           "--workers": workers if workers != 1 else None})
    out = out or collection.dataset_id(env_id, quality, image_size=image_size)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[fps]:>6.1f} frames/s  return {task.fields[ret]}"),
               TimeElapsedColumn(), TimeRemainingColumn())
    bar = Progress(*columns, console=console)
    task = None

    def report(p: collection.Progress) -> None:
        nonlocal task
        if task is None:  # started on the first report, after the arguments were checked
            bar.start()
            task = bar.add_task(f"{env_id} {quality}", total=None, fps=0.0, ret="-")
        ret = f"{p.last_return:.1f}" if p.last_return is not None else f"eval {p.eval_return:.1f}"
        bar.update(task, completed=p.episodes if p.episodes_target else p.steps,
                   total=p.episodes_target or p.steps_target, fps=p.frames_per_s, ret=ret,
                   description=f"{env_id} {quality} ({p.phase})")

    try:
        summary = collection.collect(env_id, quality, out=out, episodes=episodes, steps=steps, seed=seed,
                                     image_size=image_size, camera=_camera(camera), workers=workers,
                                     fast_render=fast_render, overwrite=overwrite, max_episode_steps=max_episode_steps,
                                     max_train_steps=max_train_steps, sac_preset=sac_preset, progress=report)
    finally:
        if task is not None:
            bar.stop()
    print_written(summary)
    for kind, info in summary.behaviour.items():
        extra = f" (eval return {info['eval_return']:.1f})" if info.get("eval_return") is not None else ""
        console.print(f"behaviour {kind}: {info['description']}{extra}")

