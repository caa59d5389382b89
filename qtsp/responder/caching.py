"""The in-process answer cache, keyed by the request bytes (a decorator over any Source).

What it keeps: pre-signed answers, and "unknown" answers to requests without a nonce (the inner source
marks both ``reusable``); never an answer as of another time or a simulated one (``no_store``), never
one signed with a nonce. For at most CACHE_TTL seconds and never past the answer's nextUpdate. The
freshness watch empties it on every change (revocation, rotation, behaviour): a cached "good" is
never served after ``revoke`` has returned.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from ..clock import utcnow
from .freshness import Freshness
from .source import Answer, Source

CACHE_LIMIT = 200_000
CACHE_TTL = 300.0  # seconds an answer may stay in a worker's cache (never past nextUpdate)


class CachingSource:
    def __init__(self, inner: Source, freshness: Freshness, now: Callable[[], dt.datetime] = utcnow,
                 limit: int = CACHE_LIMIT, ttl: float = CACHE_TTL) -> None:
        self.inner = inner
        self.freshness = freshness
        self.now = now
        self.limit = limit
        self.ttl = ttl
        self._cache: dict[bytes, tuple[Answer, float]] = {}
        freshness.on_drop(self.clear)

    def clear(self) -> None:
        self._cache = {}

    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer:
        now_m = time.monotonic()
        epoch = self.freshness.poll(now_m)
        if at is not None:
            return self.inner.answer(request_der, at)
        hit = self._cache.get(request_der)
        if hit is not None and hit[1] > now_m:
            return hit[0]
        answer = self.inner.answer(request_der)
        if answer.no_store or not answer.reusable or epoch != self.freshness.epoch:
            return answer  # the last: made before a change, it may already be stale
        if len(self._cache) >= self.limit:
            self._cache = {}
        ttl = self.ttl
        if answer.next_update is not None:
            ttl = min(ttl, (answer.next_update - self.now()).total_seconds())
        if ttl > 0:
            self._cache[request_der] = (answer, time.monotonic() + ttl)
        return answer
