"""CRLs and the ARL at the URLs certificates carry: ``/crl/<ca>.crl`` and ``/crl/<ca>-delta.crl``.

Served from the store (the scheduler keeps them fresh); a CA with no CRL yet, or only one past
its nextUpdate, gets one made on demand. Caches may keep a CRL until its nextUpdate, at most
an hour, so a CRL reissued after a revocation reaches relying parties within the hour.

The simulator (issue 7) serves, at the same URL and never stored nor cacheable, a misbehaving full
CRL when the CA has a CRL behaviour (expired-crl, crl-wrong-key), and, for a request as of another
time (X-QTSP-Time), the full CRL as of then; there is no delta CRL as of another time.
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import format_datetime

from flask import Blueprint, Response, current_app, g, request

from ca_store.models import CertificateAuthority

from ..clock import utcnow
from ..services import crl as crl_svc
from ..services import simulator
from .errors import problem
from .state import state

bp = Blueprint("crl", __name__)

CA_ID = re.compile(r"^[a-z0-9-]{1,64}$")
MAX_AGE_CAP = 3600
DELTA_SUFFIX = "-delta"
MIMETYPE = "application/pkix-crl"


def _known(ca_id: str) -> bool:
    with state().sandbox.transaction() as session:
        return session.get(CertificateAuthority, ca_id) is not None


def _resolve(name: str) -> tuple[str, bool] | None:
    """``qwac-ca`` -> (qwac-ca, full); ``qwac-ca-delta`` -> (qwac-ca, delta); None if no such CA."""
    if not CA_ID.fullmatch(name):
        return None
    if _known(name):
        return name, False
    if name.endswith(DELTA_SUFFIX) and CA_ID.fullmatch(name[: -len(DELTA_SUFFIX)]) and _known(name[: -len(DELTA_SUFFIX)]):
        return name[: -len(DELTA_SUFFIX)], True
    return None


def _headers(etag: str, this_update: dt.datetime, next_update: dt.datetime, now: dt.datetime) -> dict[str, str]:
    max_age = max(0, min(MAX_AGE_CAP, int((next_update - now).total_seconds())))
    return {
        "Cache-Control": f"public, max-age={max_age}, no-transform",
        "ETag": etag,
        "Last-Modified": format_datetime(this_update, usegmt=True),
        "Expires": format_datetime(next_update, usegmt=True),
    }


@bp.get("/crl/<name>.crl")
def crl(name: str) -> Response:
    resolved = _resolve(name)
    if resolved is None:
        return problem(404, "not found", f"no CRL {name!r}: no such CA")
    ca_id, delta = resolved
    at = g.get("qtsp_time")
    if at is not None:
        if delta:
            return problem(404, "not found", f"no delta CRL of {ca_id} as of another time: the full CRL as of then "
                                             "lists every revocation up to it and announces no delta")
        return _unstored(simulator.crl_as_of(state().sandbox, ca_id, at))
    if not delta:
        behaviour = current_app.extensions["qtsp_ocsp"].behaviours().crl(ca_id)
        if behaviour is not None:
            return _unstored(simulator.misbehaving_crl(state().sandbox, ca_id, behaviour.behaviour, utcnow()))
    now = utcnow()
    record = crl_svc.current(state().sandbox, ca_id, now, delta=delta)
    # The number identifies the content (numbers never repeat per issuer), so no hashing of MBs.
    etag = f'"crl-{ca_id}-{record.number}"'
    headers = _headers(etag, record.this_update, record.next_update, now)
    if request.if_none_match.contains(etag.strip('"')):
        return Response(status=304, headers=headers)
    response = Response(record.der, mimetype=MIMETYPE, headers=headers)
    return response


def _unstored(der: bytes) -> Response:
    """A CRL the simulator made for this request: no cache may keep it."""
    return Response(der, mimetype=MIMETYPE, headers={"Cache-Control": "no-store"})
