"""Fixtures for all the tests (tests/README.md): a sandbox made by the real init path, in a temp dir,
with file keys; the store on either backend; the REST API's test client; real parts started once per
session (PostgreSQL, OpenBao, the Java validator). Helpers live in tests/support/.

Everything under tests/system/ is marked ``system`` here, so ``pytest -m "not system"`` (or
``pytest tests/unit``) is the fast loop."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from collections.abc import Callable, Iterator

import pytest
from cryptography import x509
from sqlalchemy import Engine

from ca_store import db
from qtsp.services import register, tokens
from qtsp.services.context import Sandbox
from qtsp.services.hierarchy import init_sandbox
from qtsp.services.issuance import Issued, IssueRequest, issue
from support import ROOT, SAMPLE_ORG
from support.api import Api

SYSTEM = Path(__file__).resolve().parent / "system"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(SYSTEM):
            item.add_marker(pytest.mark.system)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests choose their own store; a developer's QTSP_* variables must not leak in.
    for name in ("QTSP_DATA_DIR", "QTSP_DATABASE_URL", "QTSP_KEY_PASSPHRASE", "QTSP_VAULT_ADDR", "QTSP_VAULT_TOKEN",
                 "QTSP_VAULT_ROLE_ID", "QTSP_VAULT_SECRET_ID", "QTSP_OPERATOR"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pg_cluster():  # type: ignore[no-untyped-def]
    """One throwaway PostgreSQL cluster per test session (tests/support/pg.py), on a free loopback port."""
    from support.pg import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def openbao():  # type: ignore[no-untyped-def]
    """One OpenBao dev server per session (tests/support/bao.py); fails, never skips, if `bao` is missing."""
    from support.bao import OpenBao

    server = OpenBao().start()
    yield server
    server.stop()


@pytest.fixture
def vault_env(openbao, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("QTSP_VAULT_ADDR", openbao.addr)
    monkeypatch.setenv("QTSP_VAULT_TOKEN", openbao.token)
    for name in ("QTSP_VAULT_ROLE_ID", "QTSP_VAULT_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)
    # Nothing to reset: each Sandbox makes its own Vault backend, from the environment of then.
    yield openbao


@pytest.fixture(scope="session")
def _sandbox_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One initialised sandbox per session (CA keys are slow to make); tests copy it."""
    data_dir = tmp_path_factory.mktemp("template") / "qtsp-data"
    saved = os.environ.pop("QTSP_DATABASE_URL", None)
    try:
        sb = init_sandbox(data_dir)
        register.add_psp(sb, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                         country="BE", locality="Brussels", registration_number="0123.456.789")
        sb.engine.dispose()
    finally:
        if saved is not None:
            os.environ["QTSP_DATABASE_URL"] = saved
    return data_dir


@pytest.fixture
def data_dir(_sandbox_template: Path, tmp_path: Path) -> Path:
    target = tmp_path / "qtsp-data"
    shutil.copytree(_sandbox_template, target)
    return target


@pytest.fixture
def sandbox(data_dir: Path) -> Sandbox:
    from qtsp.services.context import open_sandbox

    sb = open_sandbox(data_dir)
    yield sb
    sb.engine.dispose()


@pytest.fixture
def loopback_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """qtsp.localtest.me -> 127.0.0.1 in this process (tests/support/loopback.py); the lookups made, returned."""
    from support.loopback import patch_dns

    return patch_dns(monkeypatch)


# --- a sandbox under a public base URL (the profiles as a shared sandbox publishes them) -----------------

PUBLIC_BASE = "http://qtsp.example.eu:8080"  # a shared sandbox: a public host name, so every pkilint rule applies


@pytest.fixture(scope="session")
def _public_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data_dir = tmp_path_factory.mktemp("public") / "qtsp-data"
    sb = init_sandbox(data_dir, base_url=PUBLIC_BASE)
    register.add_psp(sb, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")
    sb.engine.dispose()
    return data_dir


@pytest.fixture
def public_sandbox(_public_template: Path, tmp_path: Path) -> Iterator[Sandbox]:
    """A copy of a sandbox made with base_url = PUBLIC_BASE, with the sample PSP registered."""
    from qtsp.services.context import open_sandbox

    target = tmp_path / "qtsp-data"
    shutil.copytree(_public_template, target)
    sb = open_sandbox(target)
    assert sb.config.base == PUBLIC_BASE
    yield sb
    sb.engine.dispose()


# --- the store on either backend (tests/unit/ca_store: SQLite; tests/system/ca_store: PostgreSQL) -------


@pytest.fixture(params=["sqlite"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty SQLite database in tmp_path (tests/system/ca_store overrides this with PostgreSQL)."""
    return db.sqlite_url(tmp_path / "store.db")


@pytest.fixture
def engines() -> Iterator[Callable[[str], Engine]]:
    """Engines made through ca_store.db.make_engine, disposed after the test."""
    made: list[Engine] = []

    def make(url: str) -> Engine:
        engine = db.make_engine(url)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def store_env(store_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """QTSP_DATABASE_URL points the services at the test's database."""
    monkeypatch.setenv("QTSP_DATABASE_URL", store_url)
    return store_url


@pytest.fixture
def init(store_env: str) -> Iterator[Callable[[Path], Sandbox]]:
    """init_sandbox against the test's database; every sandbox's engine is disposed afterwards."""
    made: list[Sandbox] = []

    def make(data_dir: Path) -> Sandbox:
        sandbox = init_sandbox(data_dir)
        made.append(sandbox)
        return sandbox

    yield make
    for sandbox in made:
        sandbox.engine.dispose()


@pytest.fixture
def issued(init: Callable[[Path], Sandbox], tmp_path: Path) -> tuple[Sandbox, Issued]:
    """The whole path on the test's database: init, register a PSP, issue a QWAC with a generated key."""
    sandbox = init(tmp_path / "data")
    register.add_psp(sandbox, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                     country="BE", locality="Brussels", registration_number="0123.456.789")
    result = issue(sandbox, IssueRequest("qwac", SAMPLE_ORG, domains=("api.example.com",), generate_key="ecdsa-p256"))
    return sandbox, result


# --- CRLs --------------------------------------------------------------------------------------------------


@pytest.fixture
def revoked(sandbox: Sandbox) -> dict[str, x509.Certificate]:
    """One QWAC revoked with each reason (qtsp.core.ocsp.REASONS), one left good."""
    from qtsp.core.ocsp import REASONS
    from qtsp.core.types import serial_hex
    from qtsp.services import revocation
    from support.crl import issue_cert

    certs = {}
    for reason in (*REASONS, "good"):
        cert = issue_cert(sandbox, reason)
        if reason != "good":
            revocation.revoke(sandbox, serial_hex(cert.serial_number), reason, issuer_id="qwac-ca")
        certs[reason] = cert
    return certs


# --- the HTTP interfaces in process, and what they are called with ------------------------------------------


@pytest.fixture
def api(sandbox: Sandbox, data_dir: Path) -> Api:
    """An app on a copy of the sandbox (Flask's test client), with an operator and an auditor token."""
    from qtsp.web import create_app

    _, operator = tokens.create(sandbox, "ops", "operator", actor="test")
    _, auditor = tokens.create(sandbox, "audit", "auditor", actor="test")
    app = create_app({"data_dir": data_dir})
    return Api(app, app.test_client(), data_dir, sandbox, operator, auditor)


@pytest.fixture
def ocsp_files(sandbox: Sandbox, data_dir: Path) -> dict[str, Path]:
    """Two QWACs (one to revoke), a QSealC, the issuers and root as files openssl can read."""
    from cryptography.hazmat.primitives import serialization

    from qtsp.services import issuance

    files = {"issuer": data_dir / "ca" / "qwac-ca.pem", "root": data_dir / "ca" / "root.pem",
             "seal_issuer": data_dir / "ca" / "qseal-ca.pem"}
    for name in ("good", "revoked"):
        cert = issuance.issue(sandbox, issuance.IssueRequest("qwac", SAMPLE_ORG, domains=(f"{name}.example.com",),
                                                             generate_key="ecdsa-p256")).certificate
        files[name] = data_dir / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    seal = issuance.issue(sandbox, issuance.IssueRequest("qsealc", SAMPLE_ORG, generate_key="ecdsa-p256")).certificate
    files["seal"] = data_dir / "seal.pem"
    files["seal"].write_bytes(seal.public_bytes(serialization.Encoding.PEM))
    return files


@pytest.fixture
def ncas(sandbox: Sandbox, tmp_path: Path) -> dict[str, dict[str, bytes]]:
    """Two NCAs with generated credentials (key.pem, cert.pem under tmp_path/<NCA id>), and a Dutch PSP."""
    from qtsp.services import nca_identity

    creds = {}
    for nca_id, name in (("BE-NBB", "National Bank of Belgium"), ("NL-DNB", "The Netherlands Bank")):
        nca_identity.add_nca(sandbox, nca_id, name, generate=True, out=tmp_path / nca_id)
        creds[nca_id] = {"key": (tmp_path / nca_id / "key.pem").read_bytes(), "cert": (tmp_path / nca_id / "cert.pem").read_bytes()}
    register.add_psp(sandbox, org_id="PSDNL-DNB-R161162", name="Example Payments BV", roles="PSP_AI", locality="Amsterdam",
                     registration_number="12345678")
    return creds


# --- Java 17 PKIX as a bank's validator ------------------------------------------------------------------


@pytest.fixture(scope="session")
def bank_validator(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tests/support/java/BankValidator.java, compiled once per session; fails, never skips, without a JDK."""
    javac = shutil.which("javac")
    assert javac and shutil.which("java"), "javac/java missing: install openjdk-17-jdk-headless"
    classes = tmp_path_factory.mktemp("java-classes")
    source = ROOT / "tests" / "support" / "java" / "BankValidator.java"
    result = subprocess.run([javac, "-d", str(classes), str(source)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return classes
