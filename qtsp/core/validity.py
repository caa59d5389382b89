"""Validity periods, counted inclusively (RFC 5280 4.1.2.5: notAfter is the last second)."""

from __future__ import annotations

import datetime as dt

UTC = dt.timezone.utc
ONE_SECOND = dt.timedelta(seconds=1)

# CA/B BR 6.3.2 (ballot SC-081): maximum TLS subscriber validity by date of issuance.
BR_TLS_SCHEDULE: tuple[tuple[dt.datetime, int], ...] = (
    (dt.datetime(2029, 3, 15, tzinfo=UTC), 47),
    (dt.datetime(2027, 3, 15, tzinfo=UTC), 100),
    (dt.datetime(2026, 3, 15, tzinfo=UTC), 200),
    (dt.datetime.min.replace(tzinfo=UTC), 398),
)


def br_tls_max_days(not_before: dt.datetime) -> int:
    for start, days in BR_TLS_SCHEDULE:
        if not_before >= start:
            return days
    raise AssertionError("unreachable")  # the last row starts at datetime.min


def not_after_for(not_before: dt.datetime, days: int) -> dt.datetime:
    """notAfter such that the period covers exactly ``days`` days, inclusive of both ends."""
    return not_before + dt.timedelta(days=days) - ONE_SECOND


def truncate(now: dt.datetime) -> dt.datetime:
    """Certificates carry whole seconds; keep UTC and drop microseconds."""
    if now.tzinfo is None:
        raise ValueError("time must be timezone-aware")
    return now.astimezone(UTC).replace(microsecond=0)
