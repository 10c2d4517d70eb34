"""Method configuration from the command line: `--set KEY=VALUE`, `--config FILE`, `--preset NAME` and
`--sweep KEY=V1,V2,...`.

A key is a config field as the presets accept it (`batch_size`, `wm.deter`, `beta2`), optionally scoped to
one method of the suite by its name (`coworld.beta2`; a base method's scope covers its variants, so
`coworld.beta2` also sets `coworld-multi`). An unscoped key applies to every chosen method whose config has
that field and must fit at least one. Values are JSON literals (numbers, true/false, lists) or strings,
checked against the type of the field they replace.
"""
from __future__ import annotations

import dataclasses
import itertools
import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.methods import get_method
from collectors.errors import OwbenchError, unknown


@dataclass(frozen=True)
class Settings:
    """What the command line asks of the method configs (all empty: the profile's presets as they are)."""

    sets: tuple[tuple[str, Any], ...] = ()  # (possibly scoped key, value), in the order given
    presets: tuple[tuple[str, str], ...] = ()  # (method scope or "", preset name)
    sweep: tuple[tuple[str, tuple[Any, ...]], ...] = ()  # (possibly scoped key, values): a grid

    def preset_for(self, method: str, base: str, profile: str) -> str:
        """The config preset a method runs with: a scoped --preset, else an unscoped one, else the profile's."""
        chosen = {scope: name for scope, name in self.presets}
        return chosen.get(method) or chosen.get(base) or chosen.get("") or profile


def parse_value(text: str) -> Any:
    """A JSON literal (numbers, true/false, lists) or else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_assignment(item: str, flag: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise OwbenchError(f"{flag} {item!r} is not KEY=VALUE (e.g. {flag} batch_size=32)")
    return key.strip(), value.strip()


def parse_sets(items: Iterable[str]) -> tuple[tuple[str, Any], ...]:
    return tuple((key, parse_value(value)) for key, value in (parse_assignment(i, "--set") for i in items))


def parse_sweep(items: Iterable[str]) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    out = []
    for item in items:
        key, values = parse_assignment(item, "--sweep")
        parsed = tuple(dict.fromkeys(parse_value(v.strip()) for v in values.split(",") if v.strip()))
        if not parsed:
            raise OwbenchError(f"--sweep {item!r} lists no value (e.g. --sweep coworld.beta2=0.5,1,1.5)")
        out.append((key, parsed))
    return tuple(out)


def parse_presets(items: Iterable[str]) -> tuple[tuple[str, str], ...]:
    """`NAME` (every method) or `METHOD=NAME`."""
    out = []
    for item in items:
        scope, sep, name = item.rpartition("=")
        if sep and not (scope.strip() and name.strip()):
            raise OwbenchError(f"--preset {item!r} is neither NAME nor METHOD=NAME (e.g. --preset code)")
        out.append((scope.strip(), name.strip()))
    return tuple(out)


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def read_config_file(path: str | Path) -> tuple[tuple[str, Any], ...]:
    """The settings of a YAML or TOML file: the keys of --set, flat (`coworld.beta2: 1.0`) or nested
    (`coworld: {beta2: 1.0}`)."""
    path = Path(path)
    if not path.is_file():
        raise OwbenchError(f"--config {path}: no such file; pass a YAML (.yaml/.yml) or TOML (.toml) file")
    text = path.read_text()
    try:
        if path.suffix == ".toml":
            tree = tomllib.loads(text)
        elif path.suffix in (".yaml", ".yml"):
            import yaml

            tree = yaml.safe_load(text) or {}
        else:
            raise OwbenchError(f"--config {path}: unknown format {path.suffix!r}; use .yaml, .yml or .toml")
    except (tomllib.TOMLDecodeError, ValueError) as exc:
        raise OwbenchError(f"--config {path} is not valid {path.suffix[1:].upper()}: "
                           f"{' '.join(str(exc).split())}") from exc
    except ImportError as exc:
        raise OwbenchError("YAML configs need PyYAML: pip install pyyaml (or write the file as TOML)") from exc
    if not isinstance(tree, dict):
        raise OwbenchError(f"--config {path} must hold a mapping of config fields to values")
    return tuple(_flatten(tree).items())


# -- fields of a config ----------------------------------------------------------------------------------

def flat_fields(config: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf field of a (nested) dataclass config by dotted path."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out.update(flat_fields(value, f"{prefix}{f.name}."))
        else:
            out[f"{prefix}{f.name}"] = value
    return out


def field_path(config: Any, key: str) -> str | None:
    """The dotted path `key` names in `config` as the presets resolve it (the path itself, or the
    unique field of that name one level down), or None when the config has no such field."""
    fields = flat_fields(config)
    if key in fields:
        return key
    owners = [f.name for f in dataclasses.fields(config)
              if dataclasses.is_dataclass(getattr(config, f.name)) and f"{f.name}.{key}" in fields]
    return f"{owners[0]}.{key}" if len(owners) == 1 else None


def coerce(key: str, value: Any, default: Any) -> Any:
    """`value` in the type of the field's current value; OwbenchError when it does not fit."""
    def bad() -> OwbenchError:
        return OwbenchError(f"--set {key}={json.dumps(value)}: expected {type(default).__name__} like "
                            f"{json.dumps(default, default=str)}")

    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad()
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad()
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad()
        return float(value)
    if isinstance(default, (tuple, list)):
        if not isinstance(value, list):
            raise bad()
        return tuple(value) if isinstance(default, tuple) else value
    if not isinstance(value, type(default)):
        raise bad()
    return value


def method_config(method: str, preset: str, overrides: dict[str, Any] | None = None) -> Any:
    """`Config.preset(preset, **overrides)` of a registered method; a preset it lacks is a user error."""
    try:
        return get_method(method).load().Config.preset(preset, **(overrides or {}))
    except OwbenchError as exc:
        raise OwbenchError(f"method {method}: {exc}") from exc
    except TypeError as exc:  # a preset taking fields as keywords
        raise OwbenchError(f"method {method}: {exc}; see its Config fields") from exc


# -- settings per method ----------------------------------------------------------------------------------

def _scope(key: str, known: set[str]) -> tuple[str, str]:
    """(method scope or "", field key) of a --set/--sweep key; `known`: every method name."""
    head, dot, rest = key.partition(".")
    if dot and head in known:
        return head, rest
    return "", key


def _applies(scope: str, method: str, base: str) -> bool:
    return scope in ("", method, base)


@dataclass
class Resolved:
    """The settings of every chosen method: preset, overrides (coerced), sweep grid points."""

    presets: dict[str, str] = field(default_factory=dict)
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    grids: dict[str, list[tuple[tuple[str, Any], ...]]] = field(default_factory=dict)


def resolve(settings: Settings, methods: dict[str, str], base_overrides: dict[str, dict[str, Any]],
            profile: str, known: set[str]) -> Resolved:
    """Check every key, value and preset against the chosen methods' configs (method -> base method;
    `base_overrides`: each method's variant settings; `known`: every method name, so that a file may
    hold settings of methods not chosen this time). Unknown keys, bad values and missing presets are
    OwbenchErrors naming the valid fields."""
    known = known | set(methods) | set(methods.values())
    out = Resolved()
    configs: dict[str, Any] = {}
    for method, base in methods.items():
        preset = settings.preset_for(method, base, profile)
        out.presets[method] = preset
        try:
            configs[method] = method_config(base, preset, base_overrides.get(method))
        except OwbenchError as exc:
            hint = f"; scope it to the methods that have it, e.g. --preset coworld={preset}" \
                if preset != profile and not dict(settings.presets).get(method) else ""
            raise OwbenchError(f"{exc}{hint}") from exc
    for scope, _ in settings.presets:
        if scope and scope not in known:
            raise unknown("method", scope, sorted(known), "--preset METHOD=NAME scopes a preset to one method")

    def place(key: str, value: Any, flag: str) -> dict[str, Any]:
        scope, name = _scope(key, known)
        if scope and scope not in methods and scope not in methods.values():
            return {}  # a setting of a method not chosen this time
        placed = {}
        for method, base in methods.items():
            if not _applies(scope, method, base):
                continue
            path = field_path(configs[method], name)
            if path is None:
                if scope:  # asked of this method by name: its fields are what the user needs
                    fields = list(flat_fields(configs[method]))
                    raise unknown(f"config field of {base} in {flag}", name, fields,
                                  f"its fields: {', '.join(fields)}")
                continue
            placed[method] = coerce(key, value, flat_fields(configs[method])[path])
        if not placed and not scope:
            fields = sorted({f for c in configs.values() for f in flat_fields(c)})
            raise unknown(f"config field of {', '.join(methods)} in {flag}", name, fields,
                          f"valid fields: {', '.join(fields)}")
        return placed

    for key, value in settings.sets:
        for method, v in place(key, value, "--set").items():
            out.overrides.setdefault(method, {})[_scope(key, known)[1]] = v
    axes: dict[str, list[tuple[str, list[Any]]]] = {}
    for key, values in settings.sweep:
        per_method: dict[str, list[Any]] = {}
        for value in values:
            for method, v in place(key, value, "--sweep").items():
                per_method.setdefault(method, []).append(v)
        for method, vs in per_method.items():
            axes.setdefault(method, []).append((_scope(key, known)[1], vs))
    for method, method_axes in axes.items():
        names = [name for name, _ in method_axes]
        out.grids[method] = [tuple(zip(names, point)) for point in itertools.product(*(vs for _, vs in method_axes))]
    for method, base in methods.items():  # every combination must build (e.g. a field of the wrong shape)
        for point in out.grids.get(method, [()]):
            method_config(base, out.presets[method], {**base_overrides.get(method, {}),
                                                      **out.overrides.get(method, {}), **dict(point)})
    return out
