"""The responder sits above services and below web: it reaches the store only through services, and the
web views around it are HTTP only."""

from __future__ import annotations

import ast
from pathlib import Path

import qtsp

QTSP = Path(qtsp.__file__).parent


def _imports(path: Path) -> set[str]:
    package = ["qtsp", *path.relative_to(QTSP).parts[:-1]]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return found


def _tops(modules: set[str], *prefixes: str) -> set[str]:
    return {m for m in modules if m.split(".")[0] in prefixes or m.startswith(prefixes)}


def test_the_responder_reaches_the_store_through_services_only() -> None:
    for path in (QTSP / "responder").glob("*.py"):
        bad = _tops(_imports(path), "ca_store", "sqlalchemy", "flask", "werkzeug", "qtsp.web", "qtsp.scheduler")
        assert not bad, f"{path.name} imports {sorted(bad)}"


def test_services_do_not_import_the_responder() -> None:
    for path in (QTSP / "services").rglob("*.py"):
        assert not _tops(_imports(path), "qtsp.responder"), path.name


def test_the_ocsp_and_crl_views_are_http_only() -> None:
    for name in ("ocsp.py", "crl.py", "time_travel.py"):
        path = QTSP / "web" / name
        bad = _tops(_imports(path), "ca_store", "sqlalchemy", "qtsp.services.simulator", "qtsp.services.ocsp")
        assert not bad, f"{name} imports {sorted(bad)}"
    assert len((QTSP / "web" / "ocsp.py").read_text().splitlines()) < 150
