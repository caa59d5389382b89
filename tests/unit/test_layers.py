"""The layers of docs/architecture.md, enforced on the source (every import, function-level ones too):

    core <- relying_party            (what a bank runs: nothing of the server side)
    core <- files (the one way to write a file) <- signers, base, services, ceremonies, cli
    core <- signers, ca_store
    core <- services <- responder <- web
                     <- cli, scheduler, ceremonies
    only services (and ca_store itself) touch ca_store; no import cycles between our modules.

Read statically with ``ast``, so an import hidden in a function counts as much as one at the top.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("qtsp", "ca_store", "cli", "ceremonies")

# The layer of each of our modules: the longest matching prefix wins.
LAYERS = {
    "qtsp.core": "core",
    "qtsp.relying_party": "relying_party",
    "qtsp.signers": "signers",
    "qtsp.files": "files",
    "qtsp.clock": "base",
    "qtsp.config": "base",
    "qtsp.lint": "base",
    "qtsp.metrics": "base",
    "qtsp.logging_setup": "base",
    "qtsp": "base",  # the package's own __init__
    "ca_store": "store",
    "qtsp.services": "services",
    "qtsp.responder": "responder",
    "qtsp.web": "web",
    "qtsp.scheduler": "scheduler",
    "ceremonies": "ceremonies",
    "cli": "cli",
}
# What each layer may import (besides itself).
ALLOWED = {
    "core": set(),
    "relying_party": {"core"},
    "files": {"core"},
    "signers": {"core", "files"},
    "base": {"core", "files"},
    "store": {"core"},
    "services": {"core", "base", "files", "signers", "store", "relying_party"},
    "responder": {"core", "base", "services"},
    "web": {"core", "base", "services", "responder", "relying_party"},
    "scheduler": {"core", "base", "services"},
    "ceremonies": {"core", "base", "files", "signers", "services"},
    "cli": {"core", "base", "files", "signers", "services", "relying_party", "ceremonies", "web", "scheduler"},
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    best = max((prefix for prefix in LAYERS if module == prefix or module.startswith(prefix + ".")), key=len)
    return LAYERS[best]


def _imports(path: Path, module: str) -> set[str]:
    """Every module of ours that ``module`` imports, at any depth of the file."""
    found: set[str] = set()
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            # `from . import x` imports the submodule x (the package is only its container);
            # `from .m import y` imports m (y is a name in it, or a submodule of it).
            names = ([target] if node.module else []) + [f"{target}.{alias.name}" for alias in node.names]
        found.update(n for n in names if n.split(".")[0] in PACKAGES)
    return found


def graph() -> dict[str, set[str]]:
    """module -> the modules of ours it imports (names that are attributes, not modules, are dropped)."""
    files = {_module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    edges: dict[str, set[str]] = {}
    for module, path in files.items():
        targets = set()
        for name in _imports(path, module):
            while name and name not in files:  # `from x import y` where y is a function: keep x
                name = name.rpartition(".")[0]
            if name and name != module:
                targets.add(name)
        edges[module] = targets
    return edges


def test_every_import_respects_the_layers() -> None:
    wrong = sorted(f"{m} ({layer_of(m)}) imports {t} ({layer_of(t)})"
                   for m, targets in graph().items() for t in targets
                   if layer_of(t) != layer_of(m) and layer_of(t) not in ALLOWED[layer_of(m)])
    assert not wrong, "imports across the layers that docs/architecture.md forbids:\n" + "\n".join(wrong)


def test_only_services_and_the_store_touch_the_store() -> None:
    touching = {m for m, targets in graph().items() for t in targets if layer_of(t) == "store"}
    assert {layer_of(m) for m in touching} <= {"services", "store"}, sorted(touching)


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    result: list[list[str]] = []
    counter = 0
    for start in edges:
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    result.append(sorted(component))
    return result


def test_no_import_cycles() -> None:
    cycles = _cycles(graph())
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(("edges", "expected"), [
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_cycle_finder(edges: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert _cycles(edges) == expected


def test_layer_table_covers_every_module() -> None:
    layers = defaultdict(list)
    for module in graph():
        layers[layer_of(module)].append(module)
    assert set(layers) <= set(ALLOWED)
    assert layers["core"] and layers["relying_party"] and layers["services"] and layers["web"]


# The browser portal (issue 20) has no issuance or revocation path of its own: its pages reach the store only
# through the services the CLI and the REST API use, and its services modules sign nothing themselves.
PORTAL_MAY_IMPORT = ("qtsp.services", "qtsp.core", "qtsp.clock", "qtsp.web.portal", "qtsp.web.state", "qtsp.web.metrics")
PORTAL_SERVICES_NEVER = ("qtsp.signers", "qtsp.core.builder", "qtsp.services.signing", "qtsp.services.authorities",
                         "qtsp.services.bulk")


def _within(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_the_portal_pages_reach_only_the_services() -> None:
    edges = graph()
    pages = [m for m in edges if _within(m, ("qtsp.web.portal",))]
    assert pages, "qtsp/web/portal is missing"
    wrong = sorted(f"{m} imports {t}" for m in pages for t in edges[m] if not _within(t, PORTAL_MAY_IMPORT))
    assert not wrong, "the portal must go through qtsp.services (no store, signer or API module):\n" + "\n".join(wrong)


def test_the_portal_services_issue_and_revoke_through_the_shared_pipeline() -> None:
    edges = graph()
    portal = {m: edges[m] for m in edges if m.startswith("qtsp.services.portal")}
    assert {"qtsp.services.portal", "qtsp.services.portal_certs", "qtsp.services.portal_ops"} <= set(portal)
    wrong = sorted(f"{m} imports {t}" for m, targets in portal.items() for t in targets if _within(t, PORTAL_SERVICES_NEVER))
    assert not wrong, "\n".join(wrong)
    assert {"qtsp.services.issuance", "qtsp.services.revocation", "qtsp.services.search"} <= portal["qtsp.services.portal_certs"]
