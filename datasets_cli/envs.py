"""`owbench envs`: list the tasks, show one, render a frame."""
from __future__ import annotations

import click
from rich.table import Table

from collectors import envs as registry
from datasets_cli.common import console


@click.group("envs", invoke_without_command=True)
@click.option("--suite", type=click.Choice(registry.registry.SUITES), default=None, help="Only this suite.")
@click.pass_context
def envs(ctx: click.Context, suite: str | None) -> None:
    """List the environment ids (DMC, CoWorld transfer tasks, Meta-World v3)."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table(title="owbench environments")
    table.add_column("id", no_wrap=True)
    for col in ("suite", "action dim", "episode length", "action repeat", "camera"):
        table.add_column(col)
    for env_id in registry.list_ids(suite):
        s = registry.spec(env_id)
        table.add_row(s.id, s.suite, str(s.action_dim), str(s.episode_length), str(s.action_repeat), str(s.camera))
    console.print(table)


@envs.command("show")
@click.argument("env_id")
@click.option("--frame", type=click.Path(dir_okay=False), default=None, help="Write one rendered frame (PNG).")
@click.option("--image-size", type=click.IntRange(16, 1024), default=64, show_default=True)
@click.option("--camera", default=None, help="Camera id or name (default: the suite's).")
@click.option("--seed", type=int, default=0, show_default=True)
def show(env_id: str, frame: str | None, image_size: int, camera: str | None, seed: int) -> None:
    """Show a task's spec; optionally render its first frame to a PNG."""
    s = registry.spec(env_id)
    table = Table(show_header=False, title=s.id)
    for key, value in vars(s).items():
        table.add_row(key, str(value))
    table.add_row("episode_length", str(s.episode_length))
    console.print(table)
    if frame:
        from PIL import Image

        cam = int(camera) if camera is not None and camera.isdigit() else camera
        with registry.make(s.id, image_size=image_size, camera=cam) as env:
            obs = env.reset(seed=seed)
        Image.fromarray(obs["image"]).save(frame)
        info = registry.gl_info()
        console.print(f"wrote {frame} ({image_size}x{image_size}, backend {info['backend']}: {info['renderer']})")
