"""The responder's one interface: OCSP request bytes in, an Answer out (RFC 6960, RFC 5019 profile).

Boulder's responder was an HTTP wrapper over a one-method ``Source``, with caching and filtering as
decorators around it; ours is the same shape. ``answer(request_der, at)``: ``at`` asks for the answer
as of another time (the sandbox's time travel), which nothing pre-signed or cached can give.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from ..core import ocsp as core_ocsp
from ..core.errors import QTSPError


@dataclass(frozen=True)
class Answer:
    body: bytes
    # good | revoked | unknown (as of another time) | multi | unused (a serial never issued) | malformed |
    # unauthorized | internal_error | simulated
    outcome: str
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    cacheable: bool = False  # pre-signed, no nonce: HTTP caches may keep it (RFC 5019 6)
    etag: str = ""
    no_store: bool = False  # simulated, or as of another time: never in any cache
    reusable: bool = False  # the same request bytes may get these bytes again (the in-process cache)


class Source(Protocol):
    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer: ...


def parse(der: bytes) -> core_ocsp.Request | None:
    """The request, or None when it is not one we can read (answered with malformedRequest)."""
    try:
        return core_ocsp.parse_request(der)
    except QTSPError:
        return None


# RFC 6960 4.2.1: the responseStatus-only answers. An answer as of another time is never kept by
# anyone, so even these are marked no_store then.
def malformed(at: dt.datetime | None) -> Answer:
    return Answer(core_ocsp.MALFORMED, "malformed", no_store=at is not None)


def unauthorized(at: dt.datetime | None) -> Answer:
    # Not an issuer we serve, or several issuers in one request: no single responder is authorised
    # (RFC 6960 2.3).
    return Answer(core_ocsp.UNAUTHORIZED, "unauthorized", no_store=at is not None)


def unused() -> Answer:
    """The one static answer to a request about a serial this CA never issued ("unused", CA/B Forum BR
    4.9.10; "unassigned" in later BR versions, 4.9.9): never "good" (BR 4.9.10: MUST NOT for a CA that is
    not technically constrained). ``unauthorized`` (RFC 6960 2.3; RFC 5019 2.2.3: the responder cannot
    answer authoritatively), as Let's Encrypt's Boulder answers: unsigned, the same five bytes for
    every such request, so a scanner's random serials cost no signature and no memory (a signed
    "unknown" must name the request's CertID, so it cannot be pre-built). The outcome is counted apart
    in qtsp_ocsp_requests_total: BR 4.9.10 asks the CA to monitor requests for unused serials. Never
    kept by any cache: there is nothing to keep."""
    return Answer(core_ocsp.UNAUTHORIZED, "unused")


def internal_error(at: dt.datetime | None) -> Answer:
    return Answer(core_ocsp.INTERNAL_ERROR, "internal_error", no_store=at is not None)


class Guarded:
    """Decorator: a store or signer failure below becomes internalError. tryLater (RFC 6960 2.3) would
    also do; internalError is the honest one."""

    def __init__(self, inner: Source) -> None:
        self.inner = inner

    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer:
        try:
            return self.inner.answer(request_der, at)
        except Exception:
            return internal_error(at)
