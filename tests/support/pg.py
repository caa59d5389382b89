"""A throwaway PostgreSQL cluster for tests: initdb into a temp dir, start on a free loopback port.

    with PostgresCluster() as pg:
        url = pg.new_database()   # postgresql+psycopg://qtsp@127.0.0.1:PORT/t_1

Needs the PostgreSQL server binaries (``apt-get install postgresql``); without them it raises
RuntimeError, so a test run fails loudly instead of silently skipping the PostgreSQL tests.
As root it runs the server as the ``postgres`` user (initdb refuses to run as root).
"""

from __future__ import annotations

import glob
import itertools
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

USER = "qtsp"
INSTALL_HINT = "install the PostgreSQL server binaries, e.g. 'apt-get install postgresql'"

INITDB_TIMEOUT = 120
START_TIMEOUT = 60
STOP_TIMEOUT = 30
SQL_TIMEOUT = 30


def _version_key(path: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path))


def find_binaries() -> tuple[str, str]:
    """``initdb`` and ``pg_ctl``, from the same installation: PATH first, then /usr/lib/postgresql/*/bin."""
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return initdb, pg_ctl
    for bindir in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True):
        candidates = (os.path.join(bindir, "initdb"), os.path.join(bindir, "pg_ctl"))
        if all(os.access(c, os.X_OK) for c in candidates):
            return candidates
    raise RuntimeError(
        "PostgreSQL tests need 'initdb' and 'pg_ctl' (not on PATH, nor in /usr/lib/postgresql/*/bin): " + INSTALL_HINT
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresCluster:
    """One PostgreSQL server in a temporary directory, trust auth, superuser ``qtsp``."""

    def __init__(self, *, dbname: str = "qtsp") -> None:
        self.initdb, self.pg_ctl = find_binaries()
        self.dbname = dbname
        self.as_postgres = os.geteuid() == 0
        self.dir: Path | None = None
        self.port: int | None = None
        self._running = False
        self._counter = itertools.count(1)

    # --- lifecycle ------------------------------------------------------------------------

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()

    def _run(self, args: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
        if self.as_postgres:
            args = ["runuser", "-u", "postgres", "--", *args]
        try:
            return subprocess.run(
                args,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=True,
                cwd=self.dir,
                env={**os.environ, "LC_ALL": "C", "LANG": "C"},
            )
        except FileNotFoundError as exc:
            raise RuntimeError(f"cannot run {args[0]}: {exc}; {INSTALL_HINT}") from None
        except subprocess.CalledProcessError as exc:
            raise RuntimeError(
                f"{' '.join(args)} failed with exit code {exc.returncode}:\n{exc.stdout}\n{exc.stderr}\n{self._log_tail()}"
            ) from None
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{' '.join(args)} did not finish within {timeout}s\n{self._log_tail()}") from None

    def _log_tail(self, lines: int = 30) -> str:
        if self.dir is None:
            return ""
        try:
            text = (self.dir / "log").read_text(errors="replace")
        except OSError:
            return ""
        return "server log:\n" + "\n".join(text.splitlines()[-lines:])

    def start(self) -> None:
        if self._running:
            return
        self.dir = Path(tempfile.mkdtemp(prefix="qtsp-pg-"))
        try:
            if self.as_postgres:
                shutil.chown(self.dir, user="postgres", group=None)
            pgdata = self.dir / "data"
            self._run([self.initdb, "-D", str(pgdata), "-A", "trust", "-U", USER, "-E", "UTF8", "--locale=C", "-N"],
                      INITDB_TIMEOUT)
            for attempt in range(3):  # the port can be taken between free_port() and the bind
                self.port = free_port()
                options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
                try:
                    self._run([self.pg_ctl, "-D", str(pgdata), "-o", options, "-w", "-t", str(START_TIMEOUT),
                               "start", "-l", str(self.dir / "log")], START_TIMEOUT + 10)
                    break
                except RuntimeError:
                    if attempt == 2:
                        raise
            self._running = True
            self._execute(f'CREATE DATABASE "{self.dbname}"')
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        if self.dir is None:
            return
        pgdata = self.dir / "data"
        if (pgdata / "postmaster.pid").exists():
            try:
                self._run([self.pg_ctl, "-D", str(pgdata), "-m", "immediate", "-w", "-t", str(STOP_TIMEOUT), "stop"],
                          STOP_TIMEOUT + 10)
            except RuntimeError:
                self._kill_postmaster(pgdata)
        self._running = False
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = None

    @staticmethod
    def _kill_postmaster(pgdata: Path) -> None:
        """Last resort when pg_ctl stop fails: SIGQUIT (immediate shutdown) to the server we started."""
        try:
            pid = int((pgdata / "postmaster.pid").read_text().split()[0])
            os.kill(pid, signal.SIGQUIT)
        except (OSError, ValueError, IndexError):
            return
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except OSError:
                return
            time.sleep(0.1)

    # --- databases ------------------------------------------------------------------------

    def url_for(self, dbname: str) -> str:
        if self.port is None:
            raise RuntimeError("the cluster is not running")
        return f"postgresql+psycopg://{USER}@127.0.0.1:{self.port}/{dbname}"

    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def _execute(self, sql: str) -> None:
        import psycopg

        with psycopg.connect(
            host="127.0.0.1", port=self.port, user=USER, dbname="postgres", autocommit=True, connect_timeout=SQL_TIMEOUT
        ) as conn:
            conn.execute(f"SET statement_timeout = {SQL_TIMEOUT * 1000}")
            conn.execute(sql)  # type: ignore[arg-type]

    def new_database(self, prefix: str = "t") -> str:
        """A fresh, empty database on this cluster; returns its SQLAlchemy URL."""
        if not self._running:
            raise RuntimeError("the cluster is not running")
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,40}", prefix):
            raise ValueError(f"bad database name prefix {prefix!r}")
        name = f"{prefix}_{next(self._counter)}"
        self._execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)
