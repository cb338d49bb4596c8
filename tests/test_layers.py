"""The library's modules import each other in layers: no import cycle, and the command-line parser
stays free of torch (checked in test_cli)."""

import ast
from pathlib import Path

from conftest import REPO_ROOT

FOLDERS = {"rlmaml": REPO_ROOT / "rlmaml", "rlmaml.envs": REPO_ROOT / "envs"}


def import_graph() -> dict[str, set[str]]:
    """Module -> the rlmaml modules it imports (at any depth of its code, lazy imports included)."""
    paths: dict[str, Path] = {}
    for package, folder in FOLDERS.items():
        for path in folder.glob("*.py"):
            paths[package if path.stem == "__init__" else f"{package}.{path.stem}"] = path
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                targets |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
            elif isinstance(node, ast.Import):
                targets |= {alias.name for alias in node.names}
        graph[name] = {t for t in targets if t in paths and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle's modules (the strongly connected components with more than one module)."""
    found, order, low, stack, counter = [], {}, {}, [], [0]

    def visit(node: str) -> None:
        order[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        for other in sorted(graph[node]):
            if other not in order:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], order[other])
        if low[node] == order[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in order:
            visit(node)
    return found


def test_no_import_cycle_in_rlmaml():
    assert cycles(import_graph()) == []


def test_the_cycle_check_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_bottom_layers_import_nothing_above_them():
    graph = import_graph()
    assert graph["rlmaml.config"] <= {"rlmaml.errors"}
    assert graph["rlmaml.runs"] <= {"rlmaml.errors"}
    assert "rlmaml.cli" not in set().union(*(graph[m] for m in graph if m != "rlmaml.__main__"))
    assert "rlmaml.trainer" not in graph["rlmaml.evaluation"]
    assert "rlmaml.sampling" not in graph["rlmaml.workers"]
