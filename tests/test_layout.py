"""The layout keeps the flow `source → run → transport` visible: imports run one way.

Each module of `streaming/` is in a layer; a module imports only from its own layer or
the layers before it, no two modules import each other (directly or round about), and
no module is longer than a reader can take in at once.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

APP = Path(__file__).resolve().parents[1] / "streaming"
MAX_LINES = 300

# From the bottom up: what a layer's modules may import is in it or below it.
LAYERS: list[tuple[str, ...]] = [
    ("streaming", "streaming.conf", "streaming.runs.endings", "streaming.observe"),
    ("streaming.models", "streaming.records", "streaming.housekeeping"),
    ("streaming.api",),
    ("streaming.sources",),
    ("streaming.runs",),
    ("streaming.transports", "streaming.admin", "streaming.pages", "streaming.checks"),
    ("streaming.urls", "streaming.routing", "streaming.apps", "streaming.management"),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(APP.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def app_modules() -> dict[str, Path]:
    return {module_name(path): path for path in APP.rglob("*.py") if "migrations" not in path.parts}


def layer_of(module: str) -> int:
    matches = [
        (len(prefix), index)
        for index, prefixes in enumerate(LAYERS)
        for prefix in prefixes
        if module == prefix or module.startswith(prefix + ".")
    ]
    assert matches, f"{module} is in no layer: add it to LAYERS"
    return max(matches)[1]  # the most specific prefix decides


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Return the app's modules that `path` imports (at any depth of its code)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(name for name in names if name in modules)
    found.discard(module_name(path))
    return found


def import_graph() -> dict[str, set[str]]:
    modules = app_modules()
    graph = {name: imports_of(path, modules) for name, path in modules.items()}
    # A package's __init__ importing its own modules is how Python loads it, not a cycle.
    return {
        name: {target for target in targets if not target.startswith(name + ".")}
        for name, targets in graph.items()
    }


def test_every_module_is_in_a_layer_and_imports_only_downwards() -> None:
    upward = [
        f"{module} (layer {layer_of(module)}) imports {target} (layer {layer_of(target)})"
        for module, targets in sorted(import_graph().items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    assert _cycles(import_graph()) == []


def test_no_imports_hidden_from_the_checks() -> None:
    hidden = [
        str(path.relative_to(APP.parent))
        for path in app_modules().values()
        if "TYPE_CHECKING" in path.read_text()
    ]
    assert hidden == []


@pytest.mark.parametrize("module", sorted(app_modules()))
def test_modules_are_short_enough_to_read_at_once(module: str) -> None:
    lines = len(app_modules()[module].read_text().splitlines())
    assert lines <= MAX_LINES, f"{module} has {lines} lines"


def test_the_cycle_check_can_fail() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}}
    assert _cycles(graph) == [["a", "b", "c", "a"]]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    cycles: list[list[str]] = []
    state: dict[str, str] = {}

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(graph[module]):
            if state.get(target) == "open":
                cycles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    return cycles
