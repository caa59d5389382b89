"""The in-process answer cache, keyed by the request bytes (a decorator over any Source).

What it keeps: pre-signed answers (the inner source marks them ``reusable``); never an answer as of
another time or a simulated one (``no_store``), never one signed with a nonce, never the static answer
to a serial never issued (nothing is kept per request for those: a scanner's random serials cost no
memory). For at most CACHE_TTL seconds and never past the answer's nextUpdate, within CACHE_BYTES per
worker (oldest out first). The freshness watch empties it on every change (revocation, rotation,
behaviour): a cached "good" is never served after ``revoke`` has returned.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from ..clock import utcnow
from .bounded import ByteBoundedCache
from .freshness import Freshness
from .source import Answer, Source

CACHE_BYTES = 64 * 1024 * 1024  # per worker: ~70,000 pre-signed answers of ~1 KB (two per certificate)
CACHE_TTL = 300.0  # seconds an answer may stay in a worker's cache (never past nextUpdate)


class CachingSource:
    def __init__(self, inner: Source, freshness: Freshness, now: Callable[[], dt.datetime] = utcnow,
                 max_bytes: int = CACHE_BYTES, ttl: float = CACHE_TTL) -> None:
        self.inner = inner
        self.freshness = freshness
        self.now = now
        self.ttl = ttl
        self._cache: ByteBoundedCache[bytes, tuple[Answer, float]] = ByteBoundedCache(
            max_bytes, lambda key, value: len(key) + len(value[0].body) + len(value[0].etag))
        freshness.on_drop(self.clear)

    def clear(self) -> None:
        self._cache.clear()

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
        ttl = self.ttl
        if answer.next_update is not None:
            ttl = min(ttl, (answer.next_update - self.now()).total_seconds())
        if ttl > 0:
            self._cache.put(request_der, (answer, time.monotonic() + ttl))
        return answer
