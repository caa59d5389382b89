"""Certificate statuses for the answers signed on demand (nonce, several certificates, never issued,
simulator faults, time travel), and the SingleResponses made from them (RFC 6960 4.2.1).

Now: from a per-worker cache bounded in bytes, dropped whenever the freshness watch moves (every
revocation bumps it before it is acknowledged, so a cached "good" never outlives a revocation). Only
issued certificates are kept: a serial never issued is never cached (a scanner's random serials would
fill it, one entry each). As of another time: straight from the store, never cached.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence

from ..core import ocsp as core_ocsp
from ..core.types import IssuerId
from ..services import ocsp_status
from ..services.context import Sandbox
from ..services.ocsp import IssuerEntry
from ..services.ocsp_status import StatusRow
from .bounded import ByteBoundedCache

CACHE_BYTES = 16 * 1024 * 1024  # per worker; an entry is ~0.7 KB with its overhead
STATUS_TTL = 300.0


class Statuses:
    def __init__(self, sandbox: Sandbox, validity_hours: int) -> None:
        self.sandbox = sandbox
        self.validity_hours = validity_hours
        self._cache: ByteBoundedCache[tuple[IssuerId, int], tuple[StatusRow, float]] = ByteBoundedCache(
            CACHE_BYTES, lambda key, value: len(key[0]) + len(value[0][2] or ""))

    def clear(self) -> None:
        self._cache.clear()

    def now(self, ca_id: IssuerId, serials: Sequence[int]) -> dict[int, StatusRow | None]:
        """(status, revoked_at, reason) per serial, None for never issued by ``ca_id``."""
        now_m = time.monotonic()
        result: dict[int, StatusRow | None] = {}
        missing = []
        for serial in serials:
            hit = self._cache.get((ca_id, serial))
            if hit is not None and hit[1] > now_m:
                result[serial] = hit[0]
            else:
                missing.append(serial)
        if missing:
            found = ocsp_status.statuses(self.sandbox, ca_id, missing)
            for serial, value in found.items():
                if value is not None:  # never issued: not kept (see the module's docstring)
                    self._cache.put((ca_id, serial), (value, now_m + STATUS_TTL))
                result[serial] = value
        return result

    def for_request(self, entry: IssuerEntry, request: core_ocsp.Request, now: dt.datetime,
                    at: dt.datetime | None) -> list[core_ocsp.SingleStatus]:
        """One SingleResponse per CertID, valid from ``now`` (``at`` when given: as of then)."""
        this_update, next_update = core_ocsp.validity_window(now, self.validity_hours)
        serials = [c.serial for c in request.cert_ids]
        known = self.now(entry.ca_id, serials) if at is None else ocsp_status.statuses_as_of(
            self.sandbox, entry.ca_id, serials, at)
        statuses = []
        for cid in request.cert_ids:
            found = known[cid.serial]
            if found is None:
                # Never issued by this CA: "unknown", never "good" (BR 4.9.10).
                statuses.append(core_ocsp.SingleStatus(cid, "unknown", this_update, next_update))
            else:
                statuses.append(core_ocsp.SingleStatus(cid, found[0], this_update, next_update, found[1], found[2],
                                                       entry.archive_cutoff))
        return statuses
