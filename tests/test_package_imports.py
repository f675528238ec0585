"""The packages of ``aitip`` import each other without cycles: the domains are wired by the registry
(:mod:`aitip.domains`, which imports them by name), and a domain reaches another through that domain's
read API or a port it plugs in, never its tables. ``KNOWN_CYCLES`` would list a debt to pay off; a new
cycle fails, and so does a listed one that is gone, so the list only shrinks."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "extensions" / "aitip"
KNOWN_CYCLES: set[frozenset[str]] = set()


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


def module_imports() -> list[tuple[tuple[str, ...], list[str]]]:
    """(a module's path parts under aitip, a dotted aitip module it imports, or names from one, e.g.
    ``jobs.tables`` for ``from ..jobs import tables``) for every import that runs."""
    found: list[tuple[tuple[str, ...], list[str]]] = []
    for path in ROOT.rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if "migrations" in parts:
            continue
        package = list(parts[:-1])
        for node in _imports(ast.parse(path.read_text())):
            targets: list[list[str]] = []
            if isinstance(node, ast.ImportFrom) and node.level:
                base = package[:len(package) - (node.level - 1)] if node.level > 1 else package
                module = base + (node.module.split(".") if node.module else [])
                targets += [module + [alias.name] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "aitip":
                targets += [node.module.split(".")[1:] + [alias.name] for alias in node.names]
            elif isinstance(node, ast.Import):
                targets += [alias.name.split(".")[1:] for alias in node.names if alias.name.split(".")[0] == "aitip"]
            found += [(parts, target) for target in targets if target]
    return found


def package_graph() -> dict[str, set[str]]:
    """Which top-level package (or module) of aitip imports which."""
    graph: dict[str, set[str]] = {}
    for parts, target in module_imports():
        name, source = target[0], parts[0]
        if name != source and ((ROOT / name).is_dir() or (ROOT / f"{name}.py").exists()):
            graph.setdefault(source, set()).add(name)
    return graph


def foreign_table_reads() -> list[str]:
    """Modules that import another domain's tables. A domain's own ``tables`` module may name the projects
    domain's records (every domain's rows belong to a project); anything else goes through the other
    domain's read API (``projects.access``, ``jobs.reads``...)."""
    domains = {path.parent.name for path in ROOT.glob("*/tables.py")}
    found = []
    for parts, target in module_imports():
        if len(target) < 2 or target[0] not in domains or target[1] != "tables" or target[0] == parts[0]:
            continue
        if parts[-1] == "tables" and target[0] == "projects":
            continue
        found.append(f"{'/'.join(parts)}.py imports {'.'.join(target[:2])}")
    return sorted(set(found))


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


def test_no_domain_reads_another_domains_tables() -> None:
    assert foreign_table_reads() == []


def test_the_walk_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == {frozenset({"a", "b", "c"})}
