"""The audit log's hash chain: each event carries the hash of the one before it."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

GENESIS = "0" * 64


def canonical_details(details: dict[str, Any]) -> str:
    return json.dumps(details, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def event_hash(prev_hash: str, seq: int, at: dt.datetime, actor: str, action: str, subject: str, details: str) -> str:
    body = json.dumps(
        [prev_hash, seq, at.astimezone(dt.timezone.utc).isoformat(), actor, action, subject, details],
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True)
class ChainEvent:
    seq: int
    at: dt.datetime
    actor: str
    action: str
    subject: str
    details: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainProblem:
    seq: int
    problem: str


def verify_chain(events: Iterable[ChainEvent], *, head: tuple[int, str] | None = None,
                 after: tuple[int, str] = (0, GENESIS)) -> ChainProblem | None:
    """The first event that was changed, removed or reordered, or None if the chain holds.

    ``head`` is the (seq, hash) the store recorded as the last append: it catches the
    removal of events at the end, which the chain alone cannot show. ``after`` is where
    ``events`` start: the (seq, hash) of the event before the first (a signed head).
    """
    prev_hash, expected_seq = after[1], after[0] + 1
    for event in events:
        if event.seq != expected_seq:
            return ChainProblem(expected_seq, f"event {expected_seq} is missing (next is {event.seq})")
        if event.prev_hash != prev_hash:
            return ChainProblem(event.seq, "does not follow the event before it (removed or reordered)")
        recomputed = event_hash(prev_hash, event.seq, event.at, event.actor, event.action, event.subject, event.details)
        if recomputed != event.hash:
            return ChainProblem(event.seq, "its content was changed after it was written")
        prev_hash, expected_seq = event.hash, expected_seq + 1
    if head is not None and head != (expected_seq - 1, prev_hash):
        return ChainProblem(expected_seq, f"the chain ends at event {expected_seq - 1} but the head records event {head[0]}")
    return None
