"""A per-worker cache bounded in bytes, not only in entries (issue 15, finding 3).

A bound in entries says nothing about memory when what a client sends decides each entry's size: at
200,000 entries the answer cache could hold ~360 MB per worker. Here every entry costs its key's and
value's bytes, as the owner measures them, plus ENTRY_OVERHEAD for the Python objects around them
(the dict slot, tuples, the Answer and its datetimes: ~0.5 KB measured with tracemalloc, rounded up),
and the oldest entries go first when a new one would pass the budget.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

ENTRY_OVERHEAD = 640  # bytes per entry beyond what ``size`` counts (measured: tests/unit/responder/test_bounded.py)


class ByteBoundedCache(Generic[K, V]):
    def __init__(self, max_bytes: int, size: Callable[[K, V], int]) -> None:
        self.max_bytes = max_bytes
        self._size = size
        self._data: OrderedDict[K, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    @property
    def nbytes(self) -> int:
        """What the entries cost by this cache's count (always <= max_bytes)."""
        return self._bytes

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: K) -> V | None:
        hit = self._data.get(key)  # a dict read: no lock on the hot path
        return None if hit is None else hit[0]

    def put(self, key: K, value: V) -> None:
        cost = self._size(key, value) + ENTRY_OVERHEAD
        if cost > self.max_bytes:
            return  # never worth emptying the cache for
        with self._lock:
            old = self._data.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            while self._data and self._bytes + cost > self.max_bytes:
                _, (_, freed) = self._data.popitem(last=False)  # the oldest first
                self._bytes -= freed
            self._data[key] = (value, cost)
            self._bytes += cost

    def clear(self) -> None:
        with self._lock:
            self._data = OrderedDict()
            self._bytes = 0
