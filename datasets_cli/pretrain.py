"""`owbench pretrain <method>`: pretraining stages that run on their own (Vid2Act's teacher, WPT's world model)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from datasets_cli.common import console


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _value(text: str) -> Any:
    """A JSON literal (numbers, true/false) or else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _overrides(items: tuple[str, ...]) -> dict[str, Any]:
    """`--set key=value` pairs; values are JSON literals or strings."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not key=value", param_hint="--set")
        out[key.strip()] = _value(value.strip())
    return out


@click.group("pretrain")
def pretrain() -> None:
    """Pretraining stages on offline datasets, run once and reused by the suites."""


@pretrain.command("vid2act")
@click.option("--datasets", required=True, help="Comma-separated reward-free source datasets (ids, paths or URLs).")
@click.option("--preset", default="smoke", show_default=True, help="Config preset: smoke, quick or paper.")
@click.option("--steps", type=click.IntRange(1), default=None, help="Teacher updates [the preset's pretrain_steps].")
@click.option("--action-pad", type=click.IntRange(0), default=0, show_default=True,
              help="Pad actions to this size (>= every source and the later target); 0: the largest source's.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Artefact directory [$OWBENCH_HOME/pretrained/vid2act/<key>].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Override a config field (repeatable).")
def vid2act(datasets: str, preset: str, steps: int | None, action_pad: int, out: str | None, device: str,
            seed: int, sets: tuple[str, ...]) -> None:
    """Vid2Act teacher: the task-conditioned video-prediction RSSM and the action-replay VAE (Eqs. 1-4)."""
    from agents import vid2act as lib
    from agents.devices import use_device

    overrides = _overrides(sets)
    if steps is not None:
        overrides["pretrain_steps"] = steps
    config = lib.Config.preset(preset, **overrides)
    path = lib.pretrain(_csv(datasets), config, device=use_device(device), seed=seed,
                        action_pad=action_pad, out=Path(out) if out else None)
    teacher = lib.load_teacher(path, "cpu")
    console.print(f"vid2act teacher: {len(teacher.sources)} sources ({', '.join(teacher.sources)}), "
                  f"actions padded to {teacher.action_pad} -> {path}")


@pretrain.command("wpt")
@click.option("--pool", required=True, help="Comma-separated reward-free pool datasets (ids, paths or URLs).")
@click.option("--preset", default="smoke", show_default=True, help="Config preset: smoke, quick or paper.")
@click.option("--steps", type=click.IntRange(1), default=None, help="World-model updates [the preset's pretrain_steps].")
@click.option("--image-size", type=click.IntRange(16), default=None, help="Image size of the pool [the preset's].")
@click.option("--action-pad", type=click.IntRange(0), default=0, show_default=True,
              help="Pad actions to this size (>= every pool dataset and later target); 0: the pool's largest.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Artefact directory [$OWBENCH_HOME/pretrained/wpt/<key>].")
@click.option("--device", default="auto", show_default=True, help="auto, cpu or cuda[:N].")
@click.option("--seed", type=int, default=0, show_default=True)
def wpt(pool: str, preset: str, steps: int | None, image_size: int | None, action_pad: int, out: str | None,
        device: str, seed: int) -> None:
    """WPT: one task- and embodiment-agnostic world model, reward-free, on a non-curated pool (Eq. 1)."""
    from agents import wpt as lib
    from agents.devices import use_device

    overrides: dict[str, int] = {}
    if steps is not None:
        overrides["pretrain_steps"] = steps
    if image_size is not None:
        overrides["dreamer.wm.image_size"] = image_size
    config = lib.Config.preset(preset, **overrides)
    path = lib.pretrain(_csv(pool), config, device=use_device(device), seed=seed, action_pad=action_pad,
                        out=Path(out) if out else None)
    model = lib.load_pretrained(path)
    console.print(f"wpt world model: pool of {len(model.pool)} datasets ({', '.join(model.pool_env_ids)}), "
                  f"actions padded to {model.action_pad} -> {path}")
