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
    outcome: str  # good | revoked | unknown | multi | malformed | unauthorized | internal_error | simulated
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
