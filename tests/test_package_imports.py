"""The packages of ``aitip`` import each other without cycles, apart from the ones listed here, which are
debts to pay off (the domain registry will take the catalog's imports of the domains' tables, and the jobs
domain's reads of other domains go through their read APIs). A new cycle fails; so does a listed one that
is gone, so the list only shrinks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "extensions" / "aitip"
KNOWN_CYCLES = {
    # The catalog registers every domain's tables by importing them, and the audit trail writes through the
    # catalog; jobs read datasets, experiments and resources (and they jobs); the datasets SDK calls the client.
    frozenset({"audit", "catalog", "client", "datasets", "experiments", "jobs", "projects", "resources", "webhooks"}),
}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.ImportFrom | ast.Import]:
    """Every import the module runs, at its top or inside functions; not those for type checkers only."""
    found: list[ast.ImportFrom | ast.Import] = []
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _type_checking_only(node):
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        found.extend(_imports(node))
    return found


def package_graph() -> dict[str, set[str]]:
    """Which top-level package (or module) of aitip imports which."""
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "migrations" in parts:
            continue
        source = parts[0]
        package = list(parts[:-1])
        for node in _imports(ast.parse(path.read_text())):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                if node.module:
                    targets.append(base + node.module.split("."))
                else:
                    targets += [base + [alias.name] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aitip":
                targets.append(node.module.split(".")[1:])
            elif isinstance(node, ast.Import):
                targets += [alias.name.split(".")[1:] for alias in node.names if alias.name.split(".")[0] == "aitip"]
            for target in targets:
                name = target[0] if target else ""
                if name and name != source and ((ROOT / name).is_dir() or (ROOT / f"{name}.py").exists()):
                    graph.setdefault(source, set()).add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> set[frozenset[str]]:
    """The strongly connected components with more than one package (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.add(frozenset(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_new_package_cycles() -> None:
    assert cycles(package_graph()) == KNOWN_CYCLES


def test_the_walk_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset({"a", "b", "c"})}
