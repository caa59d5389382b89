"""The present: a pre-signed answer from the store, the static answer to a serial never issued, or one
signed on demand.

Pre-signed single-certificate answers (one per certificate and CertID hash, re-signed by the
scheduler before half their validity: RFC 5019 4, BR 4.9.10) are what relying parties get. A request
naming a serial the CA never issued gets ``source.unused()`` (static ``unauthorized``, BR 4.9.10),
decided by the worker's filter of issued serials without asking the store, or by the store when the
filter says "maybe". Only what cannot be pre-signed is signed on demand: a nonce (RFC 6960 4.4.1),
several certificates in one request, a stored answer missing or past its nextUpdate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Callable

from ..clock import utcnow
from ..core import ocsp as core_ocsp
from ..services import ocsp_status
from ..services.context import Sandbox
from ..services.ocsp import IssuerEntry
from .issued import IssuedSerials
from .issuers import IssuerIndex
from .source import Answer, malformed, parse, unauthorized, unused
from .statuses import Statuses


class OnDemand:
    """Signs an answer now, or as of ``at`` (with the statuses and the responder of then)."""

    def __init__(self, index: IssuerIndex, statuses: Statuses, now: Callable[[], dt.datetime] = utcnow) -> None:
        self.index = index
        self.statuses = statuses
        self.now = now

    def answer(self, entry: IssuerEntry, request: core_ocsp.Request, at: dt.datetime | None = None) -> Answer:
        now = self.now() if at is None else at
        statuses = self.statuses.for_request(entry, request, now, at)
        if at is None and any(s.status == "unknown" for s in statuses):
            return unused()  # never issued: nothing signed (as of another time: "unknown", signed as of then)
        body = core_ocsp.build_response(self.index.responder_at(entry, at), statuses, now.replace(microsecond=0),
                                        request.nonce)
        outcome = statuses[0].status if len(statuses) == 1 else "multi"
        first = statuses[0]
        if at is not None:
            return Answer(body, outcome, first.this_update, first.next_update, no_store=True)
        return Answer(body, outcome, first.this_update, first.next_update, False, hashlib.sha1(body).hexdigest())


class StoreSource:
    """The bottom of the chain: answers for now. Time travel is AsOfSource's, above it."""

    def __init__(self, sandbox: Sandbox, index: IssuerIndex, on_demand: OnDemand,
                 now: Callable[[], dt.datetime] = utcnow, issued: IssuedSerials | None = None) -> None:
        self.sandbox = sandbox
        self.index = index
        self.on_demand = on_demand
        self.now = now
        self.issued = issued  # None: every serial is looked up in the store

    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer:
        if at is not None:
            raise ValueError("StoreSource answers for now: wrap it in AsOfSource for answers as of another time")
        request = parse(request_der)
        if request is None:
            return malformed(None)
        entry = self.index.issuer_of(request)
        if entry is None:
            return unauthorized(None)
        issued = self.issued
        if issued is not None and not all(issued.might_have(entry.ca_id, c.serial) for c in request.cert_ids):
            return unused()  # certain: not a single store query for a scanner's random serial
        if len(request.cert_ids) == 1 and request.nonce is None:
            cid = request.cert_ids[0]
            row = ocsp_status.presigned(self.sandbox, cid.issuer_key_hash, cid.serial)
            if row is not None and row.next_update > self.now():
                return Answer(row.der, row.status, row.this_update, row.next_update, True,
                              hashlib.sha1(row.der).hexdigest(), reusable=True)
        return self.on_demand.answer(entry, request)


class AsOfSource:
    """Decorator: an answer as of another time (time travel) is signed here, on demand, with the
    statuses and the responder of that time, and never kept; the present goes to the inner source."""

    def __init__(self, inner: StoreSource, index: IssuerIndex, on_demand: OnDemand) -> None:
        self.inner = inner
        self.index = index
        self.on_demand = on_demand

    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer:
        if at is None:
            return self.inner.answer(request_der)
        request = parse(request_der)
        if request is None:
            return malformed(at)
        entry = self.index.issuer_of(request)
        if entry is None:
            return unauthorized(at)
        return self.on_demand.answer(entry, request, at)
