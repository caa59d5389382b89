"""The core stays pure: importing every qtsp.core module pulls in no I/O library."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import qtsp.core

FORBIDDEN = ("flask", "sqlalchemy", "hvac", "apscheduler", "click", "requests", "ca_store", "pkilint", "alembic")
ALLOWED_TOP = {"cryptography", "asn1crypto", "__future__"} | set(sys.stdlib_module_names)
CORE = Path(qtsp.core.__file__).parent


def test_core_imports_nothing_forbidden_at_runtime() -> None:
    modules = [f"qtsp.core.{m.name}" for m in pkgutil.iter_modules([str(CORE)])]
    code = (
        "import sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r})\n"
        + "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "", f"qtsp.core pulled in {out}"
    assert len(modules) >= 10


def test_core_source_imports_only_stdlib_cryptography_asn1crypto() -> None:
    for path in CORE.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                tops = [alias.name.split(".")[0] for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                tops = [(node.module or "").split(".")[0]]
            else:
                continue
            for top in tops:
                assert top in ALLOWED_TOP, f"{path.name} imports {top}"


def test_core_reads_no_clock() -> None:
    for path in CORE.glob("*.py"):
        text = path.read_text()
        for call in ("datetime.now(", "datetime.utcnow(", "time.time(", "date.today("):
            assert call not in text, f"{path.name} reads the clock ({call}); take `now` as an argument"
