"""The responder's caches are bounded in bytes (issue 15, finding 3): at the old bound of 200,000 entries
the answer cache could hold ~360 MB per worker. What the cache counts must be what it holds: measured
here with tracemalloc, against a budget, with the oldest entries going first."""

from __future__ import annotations

import datetime as dt
import os
import tracemalloc
from pathlib import Path

from qtsp.responder.bounded import ENTRY_OVERHEAD, ByteBoundedCache
from qtsp.responder.caching import CachingSource
from qtsp.responder.source import Answer

from .fakes import NOW, freshness

BUDGET = 256 * 1024


def _answer(n: int) -> Answer:
    body = os.urandom(900 + n % 200)  # a pre-signed answer: ~1 KB
    return Answer(body, "good", NOW, NOW + dt.timedelta(hours=96), True, body[:20].hex(), reusable=True)


def test_the_count_is_what_is_held_and_stays_in_budget() -> None:
    cache: ByteBoundedCache[bytes, tuple[Answer, float]] = ByteBoundedCache(
        BUDGET, lambda key, value: len(key) + len(value[0].body) + len(value[0].etag))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(5000):  # ~5 MB offered to a 256 KiB cache
            cache.put(os.urandom(80), (_answer(n), 1e12))
            assert cache.nbytes <= BUDGET
        # What is held beyond the entries just made and dropped: within the budget, give or take the
        # OrderedDict's own table.
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert held <= BUDGET * 1.3, (held, cache.nbytes, len(cache))
    # ENTRY_OVERHEAD does not undercount by much: a full cache holds at least 70% of what it counts.
    assert held >= cache.nbytes * 0.7, (held, cache.nbytes, ENTRY_OVERHEAD)


def test_the_oldest_go_first_and_a_giant_is_never_kept() -> None:
    cache: ByteBoundedCache[int, bytes] = ByteBoundedCache(10 * (100 + ENTRY_OVERHEAD), lambda _k, v: len(v))
    for n in range(15):
        cache.put(n, b"x" * 100)
    assert len(cache) == 10 and cache.get(4) is None and cache.get(5) == b"x" * 100 and cache.get(14) is not None
    cache.put(99, b"y" * 20_000)  # larger than the whole budget: not worth emptying the cache for
    assert cache.get(99) is None and len(cache) == 10
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0


def test_the_answer_cache_holds_its_budget_under_varied_request_bytes(tmp_path: Path) -> None:
    """Any request bytes that earn a pre-signed answer (padding, other encodings, other hashes) make an
    entry each: the cache's memory stays within its budget however many there are."""

    class Store:
        def answer(self, der: bytes, at: dt.datetime | None = None) -> Answer:
            return _answer(len(der))

    fresh, _ = freshness(tmp_path)
    source = CachingSource(Store(), fresh, lambda: NOW, max_bytes=BUDGET)  # type: ignore[arg-type]
    for n in range(3000):
        source.answer(n.to_bytes(4, "big") * 20)
    assert source._cache.nbytes <= BUDGET and 0 < len(source._cache) < 3000
