"""The deployment the responder simulator's tests share: served once for the package (both files)."""

from __future__ import annotations

from pathlib import Path
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from qtsp.services import issuance, register, simulator
from qtsp.services.context import Sandbox

from support.loopback import served_sandbox
from support.simulator import ORG, Dep


@pytest.fixture(scope="package")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dep]:
    """One sandbox served by two workers on loopback, its URLs naming the server's port: QWACs "a" and "b", QSealC "seal"."""
    work = tmp_path_factory.mktemp("simulator")
    files: dict[str, Path] = {}
    certs: dict[str, x509.Certificate] = {}

    def issue(sandbox: Sandbox, data_dir: Path) -> None:
        register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                         country="BE", locality="Brussels", registration_number="0123.456.789")
        files.update({"root": data_dir / "ca" / "root.pem", "qwac-ca": data_dir / "ca" / "qwac-ca.pem",
                      "qseal-ca": data_dir / "ca" / "qseal-ca.pem"})
        for name, kind in (("a", "qwac"), ("b", "qwac"), ("seal", "qsealc")):
            domains = (f"{name}.example.com",) if kind == "qwac" else ()
            certs[name] = issuance.issue(sandbox, issuance.IssueRequest(kind, ORG, domains=domains,
                                                                        generate_key="ecdsa-p256")).certificate
            files[name] = work / f"{name}.pem"
            files[name].write_bytes(certs[name].public_bytes(serialization.Encoding.PEM))

    with served_sandbox(work, "simulator_max_delay_seconds = 3\n", workers=2, prepare=issue) as served:
        yield Dep(served.sandbox, served.data_dir, served.url, served.base, files, certs)


@pytest.fixture(autouse=True)
def _nothing_left_on(dep: Dep) -> Iterator[None]:
    """Every test leaves no behaviour set for the next."""
    yield
    simulator.clear(dep.sandbox, everything=True, actor="test")
