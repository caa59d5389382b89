"""When what an OCSP worker keeps (answers, statuses, issuers, behaviours) goes stale.

Two counters say so: this host's generation counter (a mmap'd file that every revocation, responder
rotation, CA rollover and behaviour change bumps after its commit: a memory read per request), and,
for changes made on another host sharing the PostgreSQL store, the store's change counter (the audit
head), read at most every STORE_CHECK_INTERVAL. When either moves, the reloads run, the epoch moves,
then the caches are dropped: an answer made before the move is never cached after it (the caching
source compares epochs), and no answer made under old behaviours lands in a new cache.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from ..services.generation import Generation

# Another host cannot bump this host's mmap counter; so each worker also reads the store's change
# counter at most this often (seconds).
STORE_CHECK_INTERVAL = 0.2


class Freshness:
    def __init__(self, generation: Generation, store_counter: Callable[[], int],
                 interval: float = STORE_CHECK_INTERVAL) -> None:
        self._generation = generation
        self._store_counter = store_counter
        self._interval = interval
        self._seen_generation = generation.value()
        self._seen_store = store_counter()
        self._next_store_check = 0.0
        self._lock = threading.Lock()
        self._reloads: list[Callable[[], None]] = []
        self._drops: list[Callable[[], None]] = []
        self.epoch = 0  # moves whenever the caches are dropped

    def on_reload(self, reload: Callable[[], None]) -> None:
        """``reload`` runs first on a change (issuers, behaviours), in the order registered."""
        self._reloads.append(reload)

    def on_drop(self, drop: Callable[[], None]) -> None:
        """``drop`` runs after the reloads and the epoch move (caches)."""
        self._drops.append(drop)

    def poll(self, now_m: float) -> int:
        """The epoch, after whatever reload a change asks for; ``now_m``: time.monotonic()."""
        if now_m >= self._next_store_check or self._generation.value() != self._seen_generation:
            self._refresh(now_m)
        return self.epoch

    def _refresh(self, now_m: float) -> None:
        generation = self._generation.value()
        if now_m >= self._next_store_check:
            self._next_store_check = now_m + self._interval
            try:
                store = self._store_counter()
            except Exception:  # the store is down: keep serving what is cached (pre-signed answers)
                store = self._seen_store
            if store != self._seen_store:
                self._seen_store = store
                self._seen_generation = -1  # forces the reload below
        if generation != self._seen_generation:
            with self._lock:
                if generation == self._seen_generation:
                    return  # another thread reloaded meanwhile
                for reload in self._reloads:
                    reload()
                self.epoch += 1
                for drop in self._drops:
                    drop()
                self._seen_generation = generation
