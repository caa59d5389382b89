"""ISO 8601 instants as people, the X-QTSP-Time header and Trusted Lists write them (no clock read here)."""

from __future__ import annotations

import datetime as dt

from .errors import Kind, QTSPError

EARLIEST, LATEST = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), dt.datetime(9000, 1, 1, tzinfo=dt.timezone.utc)


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
