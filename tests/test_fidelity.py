"""docs/fidelity/<method>.md and the presets cannot drift apart (docs/fidelity.md, "How to read the tables").

For every table row whose first cell is a backticked config field path (`wm.deter`, `beta2`):
- the `owbench paper` cell is that field's value in `Config.preset("paper")` as a Python literal;
- the `paper (source)` cell starts with the same literal, unless the note starts with "departure:" or
  the paper gives no value (the cell starts with "—");
- where the `owbench code` cell is a literal, it is the field's value in `Config.preset("code")`.
A comment `<!-- preset: {"domain": "metaworld"} -->` before a table passes those arguments to the presets.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import pytest

from benchmark.methods import METHODS

DOCS = Path(__file__).resolve().parents[1] / "docs"
HEADER = ["hyperparameter", "paper (source)", "released code", "owbench paper", "owbench code", "note"]
NOT_GIVEN = "—"
PRESET_ARGS = re.compile(r"<!--\s*preset:\s*(\{.*\})\s*-->")
FIELD = re.compile(r"^`([A-Za-z_][\w.]*)`$")


def method_of(path: Path) -> str:
    """The registered method a fidelity file documents: its name with '+' and '-' written '_' (curl_cql.md,
    offline_dv2.md)."""
    names = {name.replace("+", "_").replace("-", "_"): name for name in METHODS}
    assert path.stem in names, f"{path.name}: no method named {path.stem!r} in benchmark.methods.METHODS"
    return names[path.stem]


def cells(line: str) -> list[str]:
    """The cells of a Markdown table row; `\\|` is a literal pipe inside a cell."""
    return [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line.strip().strip("|"))]


def tables(path: Path) -> list[tuple[dict[str, Any], list[list[str]]]]:
    """(preset arguments, rows) of every table in the file; every table has the fidelity header."""
    found, args, lines = [], {}, path.read_text().splitlines()
    i = 0
    while i < len(lines):
        match = PRESET_ARGS.search(lines[i])
        if match:
            args = json.loads(match.group(1))
        if lines[i].lstrip().startswith("|"):
            assert cells(lines[i]) == HEADER, f"{path.name}:{i + 1}: table header must be | {' | '.join(HEADER)} |"
            assert set(lines[i + 1].replace("|", "").strip()) <= set("-: "), f"{path.name}:{i + 2}: separator row"
            rows, i = [], i + 2
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                row = cells(lines[i])
                assert len(row) == len(HEADER), f"{path.name}:{i + 1}: {len(row)} cells, not {len(HEADER)}"
                rows.append(row)
                i += 1
            found.append((args, rows))
            args = {}
            continue
        i += 1
    return found


def literal(text: str) -> Any:
    """The whole cell as a Python literal (backticks around it allowed)."""
    return ast.literal_eval(text.strip().strip("`"))


def leading_literal(text: str) -> Any:
    """The shortest whitespace-separated prefix of the cell that is a Python literal."""
    words = text.strip().split()
    for n in range(1, len(words) + 1):
        try:
            return ast.literal_eval(" ".join(words[:n]).strip("`"))
        except (ValueError, SyntaxError):
            continue
    raise AssertionError(f"no leading literal in {text!r}")


def field(config: Any, path: str) -> Any:
    for name in path.split("."):
        assert hasattr(config, name), f"{type(config).__name__} has no field {name!r} (path {path!r})"
        config = getattr(config, name)
    return config


FILES = sorted((DOCS / "fidelity").glob("*.md"))


def test_every_documented_method_has_a_file():
    assert {p.stem for p in FILES} >= {"coworld", "dreamerv2", "cql", "curl", "curl_cql"}
    index = (DOCS / "fidelity.md").read_text()
    for path in FILES:
        assert f"fidelity/{path.name}" in index, f"docs/fidelity.md does not link fidelity/{path.name}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.stem)
def test_paper_presets_equal_the_tables(path: Path):
    module = METHODS[method_of(path)].load()
    checked = 0
    for args, rows in tables(path):
        paper = module.Config.preset("paper", **args)
        for name, source, _code, ours, ours_code, note in rows:
            match = FIELD.match(name)
            if not match:
                continue  # a mechanism, not a config field
            where = f"{path.name} row {name} {args or ''}"
            value = field(paper, match.group(1))
            assert value == literal(ours), f"{where}: Config.preset('paper') has {value!r}, the table {ours}"
            if not note.startswith("departure:") and not source.startswith(NOT_GIVEN):
                assert leading_literal(source) == value, \
                    f"{where}: paper (source) says {source!r}, owbench paper {value!r}; fix it or write 'departure: why'"
            if not ours_code.startswith(NOT_GIVEN):
                code = field(module.Config.preset("code", **args), match.group(1))
                assert code == literal(ours_code), f"{where}: Config.preset('code') has {code!r}, the table {ours_code}"
            checked += 1
    assert checked, f"{path.name}: no row names a config field"


def test_the_check_catches_a_drifted_table(tmp_path):
    row = "| `wm.deter` | 600 (Table 8) | 200 | 600 | 200 | |"
    doc = tmp_path / "x.md"
    doc.write_text(f"| {' | '.join(HEADER)} |\n|---|---|---|---|---|---|\n{row}\n")
    (_, rows), = tables(doc)
    from agents.coworld import Config

    assert field(Config.preset("paper"), "wm.deter") == literal(rows[0][3]) == leading_literal(rows[0][1])
    assert field(Config.preset("paper", deter=512), "wm.deter") != literal(rows[0][3])
    assert leading_literal("0.1 (1 − k, k = 0.9)") == 0.1 and leading_literal("(1, 2) (x)") == (1, 2)
    doc.write_text("| hyperparameter | paper | code |\n|---|---|---|\n")
    with pytest.raises(AssertionError, match="header"):
        tables(doc)
