"""Which responder signs an answer as of another time (the bug of issue 14: after a rotation, answers as
of before it were signed by a responder certificate not yet valid then)."""

from __future__ import annotations

import datetime as dt

import pytest

from qtsp.responder.issuers import in_use_at
from qtsp.services.ocsp import PastResponder

UTC = dt.timezone.utc


def day(n: int) -> dt.datetime:
    return dt.datetime(2027, 1, 1, tzinfo=UTC) + dt.timedelta(days=n)


def past(name: str, start: int, end: int) -> PastResponder:
    return PastResponder(day(start), day(end), name.encode(), f"file:{name}")


# Rotated every 7 days, each responder certificate valid 30 days: first (days 0-30), second (7-37),
# current (14-44).
HISTORY = [past("first", 0, 30), past("second", 7, 37)]
CURRENT = (day(14), day(44))


@pytest.mark.parametrize("at,expected", [
    (day(3), "first"),
    (day(7), "second"),  # the day of the rotation: the new one already
    (day(10), "second"),  # both valid: the newer, the one in use then
    (day(14), None),  # the current one from its notBefore
    (day(40), None),
    (day(-5), None),  # before any responder: the current one, never a refusal
    (day(50), None),  # after every responder's notAfter: the current one
])
def test_the_newest_responder_valid_then_signs(at: dt.datetime, expected: str | None) -> None:
    chosen = in_use_at(CURRENT, HISTORY, at)
    assert (None if chosen is None else chosen.cert_der.decode()) == expected


def test_the_order_of_the_history_does_not_matter() -> None:
    assert in_use_at(CURRENT, list(reversed(HISTORY)), day(10)).cert_der == b"second"  # type: ignore[union-attr]


def test_without_a_history_the_current_one_signs() -> None:
    assert in_use_at(CURRENT, [], day(3)) is None
