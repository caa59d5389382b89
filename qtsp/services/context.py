"""The sandbox a command works on: data dir, configuration, database, key backend."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

from ca_store import db

from .. import config as config_mod, files
from ..core.errors import Kind, QTSPError
from ..signers import Backend, Connected, backend_for

if TYPE_CHECKING:
    from ..lint import Linter


def check_writable(path: Path) -> None:
    """Refuse early, before anything is generated, when the data dir cannot be written."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise QTSPError(Kind.STORAGE, f"data dir {path} is not writable ({probe} refuses writes)")


def secure_data_dir(data_dir: Path, url: str | None = None) -> None:
    """The data dir 0700, and its configuration and SQLite database 0600, whatever the umask; each
    tightened, with a warning, when it was open to other users (a data dir made 0755 by hand or by an
    older version). The database is created here, 0600, if it is not there yet: SQLite gives its
    -wal, -shm and -journal files the database file's mode, so they are born 0600 too."""
    files.tighten_dir(data_dir)
    files.private_file(data_dir / config_mod.CONFIG_NAME)
    database = sqlite_file(url or config_mod.database_url(data_dir))
    if database is not None:
        files.private_file(database, create=True)
        for suffix in ("-wal", "-shm", "-journal"):
            files.private_file(database.with_name(database.name + suffix))


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for another database, or SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


@dataclass
class Sandbox:
    """What a command works on, and what it keeps for as long as it works: the key backends (a file
    key decrypted once, one Vault client) are made on first use and kept here, one per scheme."""

    data_dir: Path
    config: config_mod.Config
    engine: Engine
    _backends: dict[str, Backend] = field(default_factory=dict, init=False, repr=False, compare=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)

    def backend(self, scheme_or_ref: str | None = None) -> Backend:
        """The backend of a scheme or a key reference's scheme (the configured one by default)."""
        scheme = (scheme_or_ref or self.config.key_backend).split(":", 1)[0]
        backend = self._backends.get(scheme)
        if backend is None:
            with self._lock:
                backend = self._backends.get(scheme)
                if backend is None:
                    backend = self._backends[scheme] = backend_for(scheme, self.data_dir)
        return backend

    @cached_property
    def linter(self) -> Linter:
        """pkilint's validators, built on first use and kept (slow to make), and the lint copies' throwaway keys."""
        from ..lint import Linter  # pkilint loads in ~0.5 s: only for commands that lint

        return Linter()

    def after_fork(self) -> None:
        """In a forked worker, before its first call: the backends drop their connections (``Connected``)."""
        self._lock = threading.Lock()
        for backend in self._backends.values():
            if isinstance(backend, Connected):
                backend.forget_connection()

    def transaction(self) -> AbstractContextManager[Session]:
        return db.transaction(self.sessions)

    @property
    def ca_dir(self) -> Path:
        return self.data_dir / "ca"


def open_sandbox(data_dir: Path) -> Sandbox:
    """An initialised sandbox, or a clear error saying to run ``qtsp init``."""
    cfg_path = data_dir / config_mod.CONFIG_NAME
    if not cfg_path.exists():
        raise QTSPError(Kind.NOT_FOUND, f"no sandbox in {data_dir}: run 'qtsp init --data-dir {data_dir}' first")
    cfg = config_mod.load(cfg_path)
    url = config_mod.database_url(data_dir)
    secure_data_dir(data_dir, url)
    engine = db.make_engine(url)
    try:
        initialised = db.is_initialised(engine)
    except Exception as exc:  # driver errors: unreachable server, bad credentials
        raise QTSPError(Kind.STORAGE, f"cannot reach the database: {type(exc).__name__}") from None
    if not initialised:
        raise QTSPError(Kind.NOT_FOUND, f"the database for {data_dir} has no sandbox: run 'qtsp init'")
    db.ensure_current(engine)
    return Sandbox(data_dir, cfg, engine)
