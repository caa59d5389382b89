"""The present: a pre-signed answer from the store, or one signed on demand.

Pre-signed single-certificate answers (one per certificate and CertID hash, re-signed by the
scheduler before half their validity: RFC 5019 4, BR 4.9.10) are what relying parties get. Only what
cannot be pre-signed is signed on demand: a nonce (RFC 6960 4.4.1), several certificates in one
request, a serial never issued, a stored answer missing or past its nextUpdate.
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
from .issuers import IssuerIndex
from .source import Answer, malformed, parse, unauthorized
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
        body = core_ocsp.build_response(self.index.responder_at(entry, at), statuses, now.replace(microsecond=0),
                                        request.nonce)
        outcome = statuses[0].status if len(statuses) == 1 else "multi"
        first = statuses[0]
        if at is not None:
            return Answer(body, outcome, first.this_update, first.next_update, no_store=True)
        # "unknown" without a nonce is the same bytes for the same request until the next change:
        # worth keeping, as scanners ask about serials that were never issued again and again.
        return Answer(body, outcome, first.this_update, first.next_update, False, hashlib.sha1(body).hexdigest(),
                      reusable=outcome == "unknown" and request.nonce is None)


class StoreSource:
    """The bottom of the chain: answers for now. Time travel is AsOfSource's, above it."""

    def __init__(self, sandbox: Sandbox, index: IssuerIndex, on_demand: OnDemand,
                 now: Callable[[], dt.datetime] = utcnow) -> None:
        self.sandbox = sandbox
        self.index = index
        self.on_demand = on_demand
        self.now = now

    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer:
        if at is not None:
            raise ValueError("StoreSource answers for now: wrap it in AsOfSource for answers as of another time")
        request = parse(request_der)
        if request is None:
            return malformed(None)
        entry = self.index.issuer_of(request)
        if entry is None:
            return unauthorized(None)
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
