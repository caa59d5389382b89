"""The sandbox a command works on: data dir, configuration, database, key backend."""

from __future__ import annotations

import datetime as dt
import os
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterator

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from ca_store import db

from .. import config as config_mod
from ..core.errors import Kind, QTSPError
from ..signers import Backend, backend_for


# Time travel (issue 7): the offset between the clock the sandbox acts on and the real one. The CLI's
# --at sets it for the process; the service sets it per request from X-QTSP-Time when the sandbox's
# time_travel mode is on. A context variable, so one request's offset never leaks into another's.
TIME_HEADER = "X-QTSP-Time"  # the service's time travel request header (sandbox mode only)
_OFFSET: ContextVar[dt.timedelta | None] = ContextVar("qtsp_clock_offset", default=None)
EARLIEST, LATEST = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc)


def real_utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def utcnow() -> dt.datetime:
    """The only clock read outside tests: services pass it to the core as ``now``."""
    offset = _OFFSET.get()
    now = dt.datetime.now(dt.timezone.utc)
    return now if offset is None else now + offset


def time_travelling() -> bool:
    return _OFFSET.get() is not None


def parse_instant(text: str, *, assume_utc: bool = False) -> dt.datetime:
    """An ISO 8601 instant with an explicit zone (``2027-06-01T00:00Z``, ``2027-06-01T02:00:00+02:00``).

    With ``assume_utc`` (the CLI's ``--at``, typed by people), a date or a time without a zone is
    UTC: ``2027-06-01`` is midnight UTC. The X-QTSP-Time header and Trusted List times keep
    requiring the zone: there a missing zone is a client's or a list's mistake to report.
    """
    example = "2027-06-01, 2027-06-01T12:00 (UTC) or 2027-06-01T00:00+02:00" if assume_utc else "2027-06-01T00:00Z"
    if not isinstance(text, str) or not 10 <= len(text) <= 40:
        raise QTSPError(Kind.MALFORMED, f"a time must be ISO 8601{'' if assume_utc else ' with a zone'}, e.g. {example}")
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"not an ISO 8601 time: {text[:40]!r} (e.g. {example})") from None
    if moment.tzinfo is None:
        if not assume_utc:
            raise QTSPError(Kind.MALFORMED, f"the time {text!r} has no zone: add Z or an offset")
        moment = moment.replace(tzinfo=dt.timezone.utc)
    moment = moment.astimezone(dt.timezone.utc)
    if not EARLIEST <= moment < LATEST:
        raise QTSPError(Kind.MALFORMED, f"the time {text!r} is out of range (1970-9000)")
    return moment


def travel_to(moment: dt.datetime | None) -> Token[dt.timedelta | None]:
    """Act as of ``moment`` from now on in this context (None: the real clock); returns the reset token."""
    return _OFFSET.set(None if moment is None else moment - real_utcnow())


def reset_clock(token: Token[dt.timedelta | None]) -> None:
    _OFFSET.reset(token)


@contextmanager
def as_of(moment: dt.datetime | None) -> Iterator[None]:
    token = travel_to(moment)
    try:
        yield
    finally:
        _OFFSET.reset(token)


def check_writable(path: Path) -> None:
    """Refuse early, before anything is generated, when the data dir cannot be written."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise QTSPError(Kind.STORAGE, f"data dir {path} is not writable ({probe} refuses writes)")


@dataclass
class Sandbox:
    data_dir: Path
    config: config_mod.Config
    engine: Engine

    @cached_property
    def sessions(self) -> sessionmaker[Session]:
        return db.session_factory(self.engine)

    def backend(self, scheme: str | None = None) -> Backend:
        return backend_for(scheme or self.config.key_backend, self.data_dir)

    def transaction(self):  # type: ignore[no-untyped-def]
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
