#!/usr/bin/env python3
"""Import cycles among our own modules, for ARCHITECTURE.md's "no import cycles".

Static: every ``import`` and ``from ... import`` in the source (function-level and TYPE_CHECKING ones
included, since a cycle hidden in a function is still a cycle), at module granularity; ``from pkg
import name`` counts as importing ``pkg.name`` when that is a module. Prints each cycle (a strongly
connected component of the import graph) with its edges, and exits 1 if there is one.

    python scripts/import_cycles.py [ROOT]
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGES = ("qtsp", "cli", "ceremonies", "ca_store")


def modules(root: Path) -> dict[str, tuple[Path, bool]]:
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_package = parts[-1] == "__init__"
            found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def graph(root: Path) -> dict[str, set[str]]:
    known = modules(root)

    def ours(name: str) -> str | None:  # the longest prefix of ``name`` that is one of our modules
        while name and name not in known:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {name: set() for name in known}
    for name, (path, is_package) in known.items():
        package = name if is_package else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str | None] = []
            if isinstance(node, ast.Import):
                targets = [ours(alias.name) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                source = (f"{base}.{node.module}" if node.module else base) if node.level else (node.module or "")
                targets = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else ours(source)
                           for alias in node.names]
            edges[name].update(t for t in targets if t and t != name)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components of more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(edges)))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def main() -> int:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent)
    edges = graph(root)
    found = cycles(edges)
    for component in found:
        print("cycle:", ", ".join(component))
        for a in component:
            for b in sorted(edges[a] & set(component)):
                print(f"    {a} -> {b}")
    print(f"{len(edges)} modules, {len(found)} import cycles")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
