"""The house's layering, read from the source: every `import` in pacerid_tui (lazy ones inside
functions and TYPE_CHECKING ones included), as a graph of modules.

- no import cycle anywhere in the package;
- every module of core/ lives in a room (kernel, remote, steps, supervise, results, cloud);
- imports go down only: kernel → config/paths → cloud → remote → steps → supervise | results →
  cli | ui. The kernel imports nothing of ours outside itself, config only the kernel, the steps
  never the supervisor, supervise and results never each other;
- ui/ and cli/ never import a provider (core/cloud): they reach providers through the core.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pacerid_tui

PACKAGE = Path(pacerid_tui.__file__).parent

LEVELS = {
    "core.kernel": 0,
    "config": 1,
    "paths": 1,
    "core.cloud": 2,
    "core.remote": 3,
    "core.steps": 4,
    "core.supervise": 5,
    "core.results": 5,
    "cli": 6,
    "ui": 6,
    "__main__": 7,
}
"""A module may import its own room and rooms of a lower level, never one of its own level."""
FORBIDDEN = {"cli": ("core.cloud",), "ui": ("core.cloud",)}


def module_name(path: Path, package: Path) -> str:
    parts = list(path.relative_to(package).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module → the modules of ours it imports (names relative to pacerid_tui)."""
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        here = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join(["pacerid_tui", *up, *([base] if base else [])])
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            for target in targets:
                if not target.startswith("pacerid_tui."):
                    continue
                target = target.removeprefix("pacerid_tui.")
                while target and target not in paths:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    found.add(target)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def room(module: str) -> str | None:
    for name in sorted(LEVELS, key=len, reverse=True):
        if module == name or module.startswith(name + "."):
            return name
    return None


def test_no_import_cycle_in_the_package() -> None:
    assert cycles(import_graph()) == []


def test_every_core_module_lives_in_a_room() -> None:
    homeless = [m for m in import_graph() if m.startswith("core.") and room(m) is None]
    assert homeless == []


def test_imports_go_down_only() -> None:
    against = []
    for module, imported in sorted(import_graph().items()):
        here = room(module)
        for target in sorted(imported):
            there = room(target)
            if here is None or there is None or here == there:
                continue
            if LEVELS[there] >= LEVELS[here] or there in FORBIDDEN.get(here, ()):
                against.append(f"{module} -> {target}")
    assert against == []


def test_the_checks_see_a_cycle_and_an_import_upwards(tmp_path: Path) -> None:
    """The rules above are not vacuous: a made-up package with both is caught."""
    (tmp_path / "core" / "kernel").mkdir(parents=True)
    (tmp_path / "core" / "steps").mkdir(parents=True)
    (tmp_path / "core" / "kernel" / "models.py").write_text(
        "def f():\n    from pacerid_tui.core.steps import lifecycle\n"
    )
    (tmp_path / "core" / "steps" / "lifecycle.py").write_text(
        "from pacerid_tui.core.kernel.models import f\n"
    )
    graph = import_graph(tmp_path)
    assert graph["core.kernel.models"] == {"core.steps.lifecycle"}
    assert cycles(graph) == [["core.kernel.models", "core.steps.lifecycle"]]
