"""The packages form one-way layers (README, "Layout"): each imports only the packages below it, and no two
files import each other, directly or through others. Lazy imports inside functions count too."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ["collectors", "agents", "baselines", "benchmark", "datasets_cli"]  # bottom to top


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every file of the five packages."""
    found = {}
    for package in LAYERS:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The owbench modules `path` imports (`from a.b import c` counts as a.b.c when c is a module)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n in modules}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(path, modules) - {name} for name, path in modules.items()}


def test_no_package_imports_a_layer_above_it():
    upward = [f"{name} imports {dep}" for name, deps in _graph().items() for dep in deps
              if LAYERS.index(dep.split(".")[0]) > LAYERS.index(name.split(".")[0])]
    assert not upward, "imports run up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_cycle_between_files():
    graph = _graph()
    # a package's __init__ re-exporting its own modules is not a cycle between files
    edges = {m: {d for d in deps if not (graph.get(d) is not None and m.startswith(d + "."))}
             for m, deps in graph.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges[node]):
            if state.get(dep) == 1:
                cycles.append(path[path.index(dep):] + [dep])
            elif dep not in state:
                visit(dep, path + [dep])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_walker_sees_lazy_and_upward_imports(tmp_path):
    """The check itself can fail: a function-level import of a higher layer is found."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from benchmark.runner import run_sweep\n")
    assert "benchmark.runner" in _imports(bad, _modules())
