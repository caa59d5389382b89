"""What a bank runs stays apart from the sandbox's server side: importing every ``qtsp.relying_party``
module loads none of the services, the store, the web layer or the CLI, and none of their libraries;
the sources import only ``qtsp.core``, each other, the standard library and the crypto/XML/JOSE
libraries; no module reads the sandbox's clock. And ``import qtsp.relying_party`` stays cheap
(the figure is printed; ``benchmarks/relying_party_import.py`` compares it with a peer)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import qtsp.relying_party

PACKAGE = Path(qtsp.relying_party.__file__).parent
MODULES = sorted(m.name for m in pkgutil.walk_packages([str(PACKAGE)], prefix="qtsp.relying_party."))
# pkilint underneath the validator (validate(..., pkilint=True)): the one module that may import it, loaded on
# first use, so that every other module (and `import qtsp.relying_party`) stays free of it.
PKILINT_BRIDGE = "qtsp.relying_party.pkilint_bridge"
FORBIDDEN_TOP = ("flask", "sqlalchemy", "hvac", "apscheduler", "ca_store", "cli", "click", "alembic", "pkilint",
                 "werkzeug", "granian", "gunicorn", "prometheus_client")
ALLOWED_TOP = {"cryptography", "asn1crypto", "lxml", "signxml", "joserfc", "__future__"} | set(sys.stdlib_module_names)
ALLOWED_QTSP = ("qtsp.core", "qtsp.relying_party")  # and their submodules; and the bare `qtsp` package


def _loaded_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint('\\n'.join(sorted(sys.modules)))\n"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return done.stdout.split()


def _ours(name: str) -> bool:
    return name == "qtsp" or any(name == allowed or name.startswith(allowed + ".") for allowed in ALLOWED_QTSP)


def test_every_module_is_there() -> None:
    assert set(MODULES) >= {f"qtsp.relying_party.{m}" for m in
                            ("validator", "revocation", "trusted_list", "jose", "nca_client")}


def test_importing_every_module_loads_nothing_of_the_server_side() -> None:
    without_pkilint = [m for m in MODULES if m != PKILINT_BRIDGE]
    loaded = _loaded_after("".join(f"import {m}\n" for m in without_pkilint) + "import joserfc.jws\n")
    forbidden = sorted({m.split(".")[0] for m in loaded if m.split(".")[0] in FORBIDDEN_TOP})
    assert forbidden == [], f"qtsp.relying_party pulled in {forbidden}"
    assert set(without_pkilint) <= set(loaded)
    loaded = _loaded_after(f"import {PKILINT_BRIDGE}\n")
    forbidden = sorted({m.split(".")[0] for m in loaded if m.split(".")[0] in FORBIDDEN_TOP} - {"pkilint"})
    assert forbidden == [], f"{PKILINT_BRIDGE} pulled in {forbidden}"
    other_qtsp = [m for m in loaded if m.split(".")[0] == "qtsp" and not _ours(m)]
    assert other_qtsp == [], f"qtsp.relying_party pulled in {other_qtsp} (only qtsp.core is allowed)"


def test_the_package_alone_does_not_load_the_xml_signature_stack() -> None:
    """The reader's lxml/signxml load when its names are first used, not with the validator."""
    loaded = _loaded_after("import qtsp.relying_party")
    assert [m for m in loaded if m.split(".")[0] in ("signxml", "lxml", "joserfc", "pkilint")] == []
    assert "qtsp.relying_party.trusted_list" in _loaded_after(
        "from qtsp.relying_party import parse_and_verify_trusted_list")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(level, module) of every import statement: level 0 absolute, 1 a sibling, 2 from qtsp."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(0, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            found.append((node.level, node.module or ""))
    return found


def test_sources_import_only_core_the_stdlib_and_the_crypto_libraries() -> None:
    for path in PACKAGE.rglob("*.py"):
        depth = len(path.relative_to(PACKAGE).parts)  # 1: the package itself, 2: a subpackage (profile/)
        allowed = ALLOWED_TOP | ({"pkilint"} if path.name == "pkilint_bridge.py" and depth == 1 else set())
        for level, module in _imports(path):
            if level == 0:
                top = module.split(".")[0]
                assert top in allowed or (top == "qtsp" and _ours(module)), f"{path.name} imports {module}"
            elif level == depth + 1:  # up to qtsp: only the core
                assert module == "core" or module.startswith("core."), f"{path.name} imports {'.' * level}{module}"
            else:
                assert 1 <= level <= depth, f"{path.name} imports {'.' * level}{module}"


def test_no_module_reads_the_sandbox_clock() -> None:
    """Time is the caller's (``at``, ``now``). The one clock read is the NCA client's own ``iat`` default:
    that runs on the NCA's side, and the QTSP checks it against its own clock."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for call in ("datetime.now(", "datetime.utcnow(", "utcnow(", "date.today(", "time_travelling("):
            assert call not in text, f"{path.name} reads the clock ({call}); take `at`/`now` as an argument"
        if path.name != "nca_client.py":
            assert "time.time(" not in text, f"{path.name} reads the clock (time.time())"


def test_import_time_is_small() -> None:
    probe = ("import time\nstart = time.perf_counter()\nimport qtsp.relying_party\n"
             "print(time.perf_counter() - start)\n")
    spans = [float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout)
             for _ in range(3)]
    print(f"import qtsp.relying_party: {min(spans):.3f} s (best of 3; target 0.2 s)")
    assert min(spans) < 1.0, spans  # generous: the target is watched in benchmarks/relying_party_import.py
