"""The package installs from its wheel into a clean virtual environment and works from there.

Built with pip from this checkout, installed with the runtime lock file as constraints into a new venv,
and run from a directory outside the checkout, so nothing can come from the source tree: ``qtsp
--version``, ``qtsp sandbox`` (which issues a QWAC and a QSealC), ``qtsp serve`` answering OCSP for
them, and ``qtsp validate`` accepting the QWAC against it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from support import ROOT
from support.server import free_port

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _run(args: list[str], cwd: Path, timeout: int = 300) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QTSP_", "PYTHON"))}
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)
    assert result.returncode == 0, f"{' '.join(args)}: {result.stdout[-2000:]}{result.stderr[-2000:]}"
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    work = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(work / "dist"), str(ROOT)], work)
    wheels = list((work / "dist").glob("qtsp-*.whl"))
    assert len(wheels) == 1, wheels
    _run([sys.executable, "-m", "venv", str(work / "venv")], work)
    _run([str(work / "venv/bin/pip"), "install", "-q", "-c", str(ROOT / "requirements/run.lock"), str(wheels[0])], work,
         timeout=600)
    return work


def test_wheel_carries_its_data_and_no_tests(installed: Path) -> None:
    listing = _run([str(installed / "venv/bin/python"), "-c",
                    "import importlib.metadata as m; print('\\n'.join(str(f) for f in m.files('qtsp')))"], installed).stdout
    for expected in ("qtsp/py.typed", "ca_store/migrations/env.py", "ceremonies/examples/", "LICENSE",
                     "qtsp/web/portal/templates/base.html", "qtsp/web/portal/templates/operator/dashboard.html",
                     "qtsp/web/portal/static/portal.css", "qtsp/web/portal/static/portal.js"):
        assert expected in listing, expected
    assert "tests/" not in listing


def test_installed_cli_issues_serves_and_validates(installed: Path) -> None:
    bin_dir = installed / "venv/bin"
    version = _run([str(bin_dir / "qtsp"), "--version"], installed).stdout
    assert version.startswith("qtsp, version ")
    port = free_port()
    data_dir = installed / "qtsp-data"
    _run([str(bin_dir / "qtsp"), "sandbox", "--data-dir", str(data_dir), "--port", str(port)], installed)
    qwac = data_dir / "samples/qwac/cert.pem"
    assert qwac.exists() and (data_dir / "samples/qsealc/cert.pem").exists()
    log = open(installed / "serve.log", "wb")
    proc = subprocess.Popen([str(bin_dir / "qtsp"), "serve", "--data-dir", str(data_dir), "--port", str(port),
                             "--workers", "1", "--no-scheduler"], cwd=installed, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (installed / "serve.log").read_text()
            try:
                with _NO_PROXY.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "the installed qtsp serve did not become healthy"
            time.sleep(0.2)
        judged = subprocess.run([str(bin_dir / "qtsp"), "validate", str(qwac), "--purpose", "qwac-client",
                                 "--data-dir", str(data_dir)], cwd=installed, capture_output=True, text=True, timeout=120)
        assert judged.returncode == 0, judged.stdout + judged.stderr
        assert "accept" in judged.stdout.lower()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
