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


# The non-browser QWAC hierarchy (mutual TLS to bank APIs) is outside the browser root programs, so the
# schedule above does not bind it. Its ceiling is the BR 6.3.2 limit of before ballot SC-081 (398 days),
# the one PSD2 QWACs were issued under until 2026 and the one pkilint's non-browser PSD2 type lifts for
# QCP-w-psd2 certificates (TS 119 495 OVR-6.1-3 precedence); the sandbox's qwac_mtls_validity_days may set
# it lower.
NON_BROWSER_MAX_DAYS = 398


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
