"""qtsp.clock is the only source of "now", and the clock's pieces are each defined once (issue 14)."""

from __future__ import annotations

import ast
import datetime as dt
import subprocess
import sys
import threading
from pathlib import Path

from qtsp import clock

ROOT = Path(__file__).resolve().parents[2]
OURS = ("qtsp", "cli", "ceremonies", "tests", "benchmarks")
CLOCK_NAMES = {"utcnow", "real_utcnow", "travel_to", "reset_clock", "as_of", "time_travelling", "parse_instant",
               "TIME_HEADER"}


def _sources() -> list[Path]:
    return [p for top in OURS for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts]


def test_nothing_takes_the_clock_from_the_sandbox_context() -> None:
    """services/context.py re-exports the clock for branches written before the move; nothing of ours
    may rely on that (the re-export goes once every branch is merged)."""
    offenders = []
    for path in _sources():
        package = list(path.relative_to(ROOT).parts[:-1])
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            base = package[: len(package) - node.level + 1] if node.level else []
            if ".".join([*base, node.module or ""]) != "qtsp.services.context":
                continue
            bad = sorted(CLOCK_NAMES & {alias.name for alias in node.names})
            if bad:
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {', '.join(bad)}")
    assert not offenders, "import these from qtsp.clock (parse_instant: qtsp.core.instants, TIME_HEADER: " \
                          "qtsp.core.http):\n" + "\n".join(offenders)


def test_each_piece_is_defined_once() -> None:
    definitions: dict[str, list[str]] = {}
    for path in (ROOT / "qtsp").rglob("*.py"):
        for node in ast.parse(path.read_text()).body:
            names = [node.name] if isinstance(node, (ast.FunctionDef, ast.ClassDef)) else [
                t.id for t in getattr(node, "targets", []) if isinstance(t, ast.Name)]
            for name in set(names) & CLOCK_NAMES:
                definitions.setdefault(name, []).append(str(path.relative_to(ROOT)))
    assert definitions == {
        **{name: ["qtsp/clock.py"] for name in ("utcnow", "real_utcnow", "travel_to", "reset_clock", "as_of",
                                                 "time_travelling")},
        "parse_instant": ["qtsp/core/instants.py"], "TIME_HEADER": ["qtsp/core/http.py"]}


def test_the_clock_module_is_light() -> None:
    """The CLI imports it before every command: no SQLAlchemy, Flask or cryptography behind it."""
    code = "import sys, qtsp.clock; print(','.join(sorted(m for m in sys.modules if m.split('.')[0] in " \
           "('sqlalchemy', 'flask', 'cryptography', 'ca_store', 'click'))))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_travel_is_per_context_and_comes_back() -> None:
    then = dt.datetime(2027, 6, 1, tzinfo=dt.timezone.utc)
    seen: dict[str, dt.datetime] = {}
    with clock.as_of(then):
        assert clock.time_travelling() and abs((clock.utcnow() - then).total_seconds()) < 5
        other = threading.Thread(target=lambda: seen.update(other=clock.utcnow()))
        other.start()
        other.join()
    assert not clock.time_travelling()
    assert abs((seen["other"] - clock.real_utcnow()).total_seconds()) < 5  # another thread never travelled
    token = clock.travel_to(then)
    clock.reset_clock(token)
    assert not clock.time_travelling()
