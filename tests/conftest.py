"""Shared fixtures: a sandbox made by the real init path, in a temp dir, with file keys."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qtsp.services import register
from qtsp.services.context import Sandbox
from qtsp.services.hierarchy import init_sandbox

SAMPLE_ORG = "PSDBE-NBB-0123456789"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests choose their own store; a developer's QTSP_* variables must not leak in.
    for name in ("QTSP_DATA_DIR", "QTSP_DATABASE_URL", "QTSP_KEY_PASSPHRASE", "QTSP_VAULT_ADDR", "QTSP_VAULT_TOKEN",
                 "QTSP_VAULT_ROLE_ID", "QTSP_VAULT_SECRET_ID"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def pg_cluster():  # type: ignore[no-untyped-def]
    """One throwaway PostgreSQL cluster per test session (tests/pg.py), on a free loopback port."""
    from pg import PostgresCluster

    with PostgresCluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def openbao():  # type: ignore[no-untyped-def]
    """One OpenBao dev server per session (tests/bao.py); fails, never skips, if `bao` is missing."""
    from bao import OpenBao

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
    import shutil

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
    """qtsp.localtest.me -> 127.0.0.1 in this process (tests/loopback.py); the lookups made, returned."""
    from loopback import patch_dns

    return patch_dns(monkeypatch)
