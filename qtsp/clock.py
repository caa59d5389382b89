"""The one source of "now" outside tests: services read it and pass it to the core as ``now``.

Time travel (issue 7) is an offset between the clock the sandbox acts on and the real one, held in
a context variable so that one request's offset never leaks into another's (threads, and asyncio
tasks, each see their own). Two things set it, and only these two: the CLI's ``--at`` for one
command (``cli/output.py``), and the service's time-travel middleware for one request carrying
``X-QTSP-Time`` (``qtsp/web/time_travel.py``). Parsing the instant is ``qtsp.core.instants``'s job,
naming the header ``qtsp.core.http``'s.

Imported by the CLI before any command runs, so it stays light: the standard library only.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from contextvars import ContextVar, Token
from collections.abc import Iterator

_OFFSET: ContextVar[dt.timedelta | None] = ContextVar("qtsp_clock_offset", default=None)


def real_utcnow() -> dt.datetime:
    """The wall clock, whatever time travel says (what "the future" is measured against)."""
    return dt.datetime.now(dt.timezone.utc)


def utcnow() -> dt.datetime:
    """Now as the sandbox acts on it: the real clock moved by the time-travel offset, if any."""
    offset = _OFFSET.get()
    now = dt.datetime.now(dt.timezone.utc)
    return now if offset is None else now + offset


def time_travelling() -> bool:
    return _OFFSET.get() is not None


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
