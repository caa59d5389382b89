"""The sandbox a command works on: data dir, configuration, database, key backend."""

from __future__ import annotations

import os
import threading
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ca_store import db

from .. import config as config_mod
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
    engine = db.make_engine(config_mod.database_url(data_dir))
    try:
        initialised = db.is_initialised(engine)
    except Exception as exc:  # driver errors: unreachable server, bad credentials
        raise QTSPError(Kind.STORAGE, f"cannot reach the database: {type(exc).__name__}") from None
    if not initialised:
        raise QTSPError(Kind.NOT_FOUND, f"the database for {data_dir} has no sandbox: run 'qtsp init'")
    db.ensure_current(engine)
    return Sandbox(data_dir, cfg, engine)
