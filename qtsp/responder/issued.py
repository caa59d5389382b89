"""Which serials each CA has issued, per worker, as a Bloom filter whose "no" is certain (issue 15, finding 3).

A request about a serial the filter has never seen is answered at once with the static answer for a
serial never issued (``source.unused``: no store query, no signature, nothing kept), so a scanner's
random serials cost what a cached answer costs. A "maybe" (issued, or one of the ~1% false positives)
goes on to the store as before, which has the last word.

Size: BITS_PER_ENTRY bits per certificate, room for twice the store's certificates (1.25 MB per
million certificates), never less than MIN_CAPACITY; past its room it is rebuilt twice as large from
the store. It grows with what was issued, never with what is asked.

Up to date: issuance bumps this host's ISSUED counter after its commit (``services.issuance``), and
the filter reads it on every question (a memory read) and adds the certificates recorded since its
last look before answering; so on its host a certificate is never called "never issued" once
``issue`` has returned. Certificates issued on another host sharing the store come in with the
freshness watch's store change counter (``Freshness``: within STORE_CHECK_INTERVAL, 200 ms), the
same bound as a revocation made there.

Ids are not commit order: on PostgreSQL two issuances at once take ids 100 and 101, and 101 may commit
first. Reading "after the last id seen" would then skip 100 for ever, and answer a certificate that was
issued (and perhaps revoked) as never issued. So the ids skipped over are kept as gaps and asked for
again at every catch-up until they appear, or for GAP_TTL seconds (a rolled-back transaction leaves a
gap that never fills); at most MAX_GAPS of them, the oldest dropped first.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import threading
import time

from ..core.types import IssuerId
from ..services import ocsp_status
from ..services.context import Sandbox
from ..services.generation import Generation

log = logging.getLogger("qtsp.responder")

BITS_PER_ENTRY = 10
HASHES = 7  # the best k for 10 bits per entry: ~0.8% false positives
MIN_CAPACITY = 1 << 16  # entries (80 KiB)
GAP_TTL = 300.0  # seconds a skipped id is asked for again (longer than any issuance transaction)
MAX_GAPS = 10_000
_UNPACK = struct.Struct(f"<{HASHES}I").unpack


def _key(ca_id: str, serial: int) -> bytes:
    return ca_id.encode() + b"\0" + serial.to_bytes(serial.bit_length() // 8 + 1, "big", signed=True)


def _positions(key: bytes, m: int) -> list[int]:
    return [p % m for p in _UNPACK(hashlib.blake2b(key, digest_size=4 * HASHES).digest())]


class IssuedSerials:
    def __init__(self, sandbox: Sandbox, counter: Generation) -> None:
        self.sandbox = sandbox
        self._counter = counter
        self._lock = threading.Lock()
        self._filter = (bytearray(1), 8)  # (bits, m): swapped whole, so a reader never mixes two
        self._capacity = 0
        self._count = 0
        self._last_id = 0
        self._seen = -1  # the ISSUED counter the filter is up to date with
        self._stale = False
        self._gaps: dict[int, float] = {}  # ids skipped over (maybe committed later) -> when first skipped
        self.refresh()

    @property
    def nbytes(self) -> int:
        return len(self._filter[0])

    def might_have(self, ca_id: IssuerId, serial: int) -> bool:
        """False: ``ca_id`` never issued ``serial`` (certain); True: it may have (ask the store)."""
        if self._stale or self._counter.value() != self._seen:
            self.refresh()
        bits, m = self._filter
        for p in _positions(_key(ca_id, serial), m):
            if not bits[p >> 3] & (1 << (p & 7)):
                return False
        return True

    def refresh(self) -> None:
        """Add what was recorded since the last look (also the freshness watch's reload hook: a change
        on another host). A store failure keeps the filter as it is and tries again on the next question."""
        with self._lock:
            seen = self._counter.value()  # before reading: what a bump announced is committed by now
            try:
                self._catch_up()
            except Exception as exc:  # noqa: BLE001 - keep serving; the next question retries
                self._stale = True
                log.warning("could not read the issued serials (%s); will retry", type(exc).__name__)
                return
            self._seen, self._stale = seen, False

    def _catch_up(self) -> None:
        if self._capacity == 0:
            self._rebuild()
            return
        bits, m = self._filter
        if self._gaps:
            late = ocsp_status.issued_with_ids(self.sandbox, sorted(self._gaps))
            for row_id, _, _ in late:
                del self._gaps[row_id]
            if late:
                self._add(bits, m, late, advance=False)
            expired = time.monotonic() - GAP_TTL
            for row_id in [i for i, since in self._gaps.items() if since < expired]:
                del self._gaps[row_id]
        for chunk in ocsp_status.issued_after(self.sandbox, self._last_id):
            if self._count + len(chunk) > self._capacity:
                self._rebuild()
                return
            self._add(bits, m, chunk)

    def _rebuild(self) -> None:
        capacity = max(MIN_CAPACITY, 2 * ocsp_status.issued_count(self.sandbox))
        m = capacity * BITS_PER_ENTRY
        bits = bytearray((m + 7) // 8)
        self._count, self._last_id = 0, 0
        self._gaps.clear()
        for chunk in ocsp_status.issued_after(self.sandbox, 0):
            self._add(bits, m, chunk)
        self._filter, self._capacity = (bits, m), capacity

    def _add(self, bits: bytearray, m: int, rows: list[tuple[int, str, str]], *, advance: bool = True) -> None:
        if advance:  # rows in id order after _last_id: the ids they skip may still commit
            now, expected = time.monotonic(), self._last_id + 1
            for row_id, _, _ in rows:
                for missing in range(expected, min(row_id, expected + MAX_GAPS)):
                    self._gaps[missing] = now
                expected = row_id + 1
            while len(self._gaps) > MAX_GAPS:
                del self._gaps[next(iter(self._gaps))]  # the oldest skipped first (insertion order)
        for _, ca_id, serial in rows:
            try:
                number = int(serial, 16)
            except ValueError:  # a damaged row: the store has the last word on it anyway
                continue
            for p in _positions(_key(ca_id, number), m):
                bits[p >> 3] |= 1 << (p & 7)
        self._count += len(rows)
        if advance:
            self._last_id = rows[-1][0]
