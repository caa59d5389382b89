"""GET /tl.xml: the sandbox Trusted List (ETSI TS 119 612); GET /tl-signer.pem: the certificate to pin.

The current list is kept in process for a second, so a burst of fetches costs one store read per
second per worker; a CA rollover shows in the next list at most that second later (plus max-age in
caches in front). Requests that travel in time (X-QTSP-Time) skip the cache.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
import time
from email.utils import format_datetime
from typing import cast

from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, current_app, request

from ..clock import time_travelling, utcnow
from ..services import trusted_list as tl_svc
from ..services.context import Sandbox
from .state import state

bp = Blueprint("tl", __name__)

CACHE_SECONDS = 1.0
SIGNER_CACHE_SECONDS = 60.0
MAX_AGE_CAP = 300  # how stale a cache in front may serve the list after a rollover
SIGNER_CACHE = "public, max-age=3600"


class _Cache:
    """Per app: the current list and the signer PEM, each with a monotonic expiry."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.record: tuple[float, tl_svc.PublishedList] | None = None
        self.signer_pem: tuple[float, bytes] | None = None


def _cache() -> _Cache:
    return cast(_Cache, current_app.extensions.setdefault("qtsp_tl", _Cache()))


def _current(sandbox: Sandbox, now: dt.datetime) -> tl_svc.PublishedList:
    if time_travelling():
        return tl_svc.current(sandbox, now)
    cache = _cache()
    hit = cache.record
    if hit is not None and hit[0] > time.monotonic():
        return hit[1]
    with cache.lock:  # one refresh per worker; concurrent requests wait for it rather than all reading the store
        hit = cache.record
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        record = tl_svc.current(sandbox, now)
        cache.record = (time.monotonic() + CACHE_SECONDS, record)
        return record


@bp.get("/tl.xml")
def trusted_list() -> Response:
    now = utcnow()
    record = _current(state().sandbox, now)
    etag = f'"tl-{record.sequence}"'  # a sequence number names one content: numbers are never reused
    max_age = max(0, min(MAX_AGE_CAP, int((record.next_update - now).total_seconds())))
    headers = {
        "ETag": etag,
        "Cache-Control": f"public, max-age={max_age}, no-transform",
        "Last-Modified": format_datetime(record.issued_at, usegmt=True),
        "Expires": format_datetime(record.next_update, usegmt=True),
    }
    if request.if_none_match.contains(etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(record.xml, content_type=tl_svc.MEDIA_TYPE, headers=headers)  # the XML declares its encoding


@bp.get("/tl-signer.pem")
def signer_pem() -> Response:
    cache = _cache()
    hit = cache.signer_pem
    if hit is None or hit[0] <= time.monotonic():
        pem = tl_svc.signer_certificate(state().sandbox).public_bytes(Encoding.PEM)
        hit = cache.signer_pem = (time.monotonic() + SIGNER_CACHE_SECONDS, pem)
    body = hit[1]
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    headers = {"ETag": etag, "Cache-Control": SIGNER_CACHE}
    if request.if_none_match.contains(etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(body, mimetype="application/x-pem-file", headers=headers)
