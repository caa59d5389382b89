"""The data directory and what is secret in it (issue 15, "Low": ``qtsp.db``, its WAL/SHM and
``qtsp.toml`` were world-readable when the data directory already existed with mode 755): the CLI,
``qtsp init`` and the service (its app factory, what ``serve`` and every worker call) leave it 0700,
the database and its side files and the configuration 0600, whatever the umask; what was looser is
tightened, with a warning on stderr (the log, for the service)."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from cli.main import cli

SECRET_FILES = ("qtsp.db", "qtsp.db-wal", "qtsp.db-shm", "qtsp.toml")


@pytest.fixture
def loose_umask() -> Iterator[None]:
    old = os.umask(0)  # the worst case: nothing removed from what is asked for
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(autouse=True)
def _sqlite_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QTSP_DATABASE_URL", raising=False)  # the data dir's own qtsp.db


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def invoke(*args: object) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def loosen(data_dir: Path) -> None:
    """As an older version, or an operator's `mkdir -m 755` and a permissive umask, left them."""
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as conn:  # a reader holds the WAL and SHM open
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("SELECT count(*) FROM certificates").fetchone()
    for name in SECRET_FILES:
        path = data_dir / name
        if not path.exists():
            path.write_bytes(b"")  # SQLite keeps -wal/-shm only while connections are open
        path.chmod(0o644)
    data_dir.chmod(0o755)


def assert_private(data_dir: Path) -> None:
    assert mode(data_dir) == 0o700
    for name in SECRET_FILES:
        if (data_dir / name).exists():
            assert mode(data_dir / name) == 0o600, name
    assert (data_dir / "qtsp.db").exists() and (data_dir / "qtsp.toml").exists()


def test_a_cli_command_tightens_a_0755_data_dir_and_0644_files_and_says_so(data_dir: Path) -> None:
    loosen(data_dir)
    result = invoke("ca", "list", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert_private(data_dir)
    for name in (data_dir, *(data_dir / n for n in SECRET_FILES)):
        assert f"{name} was mode" in result.stderr, result.stderr
    again = invoke("ca", "list", "--data-dir", data_dir)
    assert again.exit_code == 0 and "was mode" not in again.stderr  # said once, when it was fixed


def test_init_into_an_existing_0755_directory_under_umask_0(tmp_path: Path, loose_umask: None) -> None:
    data_dir = tmp_path / "qtsp-data"
    data_dir.mkdir()
    data_dir.chmod(0o755)
    result = invoke("init", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert_private(data_dir)
    assert "qtsp.db was mode" not in result.stderr  # born 0600, never loose for a moment
    # The WAL and SHM SQLite makes as the store is written inherit the database file's 0600.
    register = invoke("register", "add", "--data-dir", data_dir, "--org-id", "PSDBE-NBB-0123456789",
                      "--name", "Example Fintech SA", "--roles", "PSP_AI", "--country", "BE")
    assert register.exit_code == 0, register.output
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as conn:
        conn.execute("SELECT count(*) FROM certificates").fetchone()
        assert (data_dir / "qtsp.db-wal").exists() and (data_dir / "qtsp.db-shm").exists()
        assert_private(data_dir)


def test_init_into_a_new_directory_under_umask_0(tmp_path: Path, loose_umask: None) -> None:
    data_dir = tmp_path / "new" / "qtsp-data"
    result = invoke("init", "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    assert_private(data_dir)
    assert mode(data_dir / "secrets" / "key-passphrase") == 0o600
    assert all(mode(key) == 0o600 for key in (data_dir / "keys").iterdir())


def test_the_service_tightens_the_data_dir_when_it_opens_it(data_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    from qtsp.web.app import create_app

    loosen(data_dir)
    with caplog.at_level(logging.WARNING, logger="qtsp.files"):
        app = create_app({"data_dir": str(data_dir)})
    try:
        assert_private(data_dir)
        assert f"{data_dir} was mode 0755" in caplog.text
    finally:
        app.extensions["qtsp"].sandbox.engine.dispose()
