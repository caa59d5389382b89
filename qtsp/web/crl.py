"""CRLs and the ARL at the URLs certificates carry: ``/crl/<ca>.crl`` and ``/crl/<ca>-delta.crl``.

HTTP in, bytes out: which CRL is served is the responder's (``qtsp.responder.crl``: as of another
time, a simulator fault, or the stored one). A stored CRL may be kept by caches until its nextUpdate,
at most an hour, so a CRL reissued after a revocation reaches relying parties within the hour; one
built for the request (time travel, a fault) may be kept by none.
"""

from __future__ import annotations

import datetime as dt
import re
from email.utils import format_datetime

from flask import Blueprint, Response, current_app, request

from ..clock import utcnow
from ..core.types import IssuerId
from ..responder.crl import CrlPublisher
from ..services import crl as crl_svc
from .errors import problem
from .state import state
from .time_travel import requested_at

bp = Blueprint("crl", __name__)

CA_ID = re.compile(r"^[a-z0-9-]{1,64}$")
MAX_AGE_CAP = 3600
DELTA_SUFFIX = "-delta"
MIMETYPE = "application/pkix-crl"


def _known(ca_id: IssuerId) -> bool:
    return crl_svc.ca_exists(state().sandbox, ca_id)


def _resolve(name: str) -> tuple[IssuerId, bool] | None:
    """``qwac-ca`` -> (qwac-ca, full); ``qwac-ca-delta`` -> (qwac-ca, delta); None if no such CA."""
    if not CA_ID.fullmatch(name):
        return None
    if _known(IssuerId(name)):
        return IssuerId(name), False
    base = IssuerId(name[: -len(DELTA_SUFFIX)])
    if name.endswith(DELTA_SUFFIX) and CA_ID.fullmatch(base) and _known(base):
        return base, True
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
    publisher: CrlPublisher = current_app.extensions["qtsp_responder"].crl
    answer = publisher.answer(ca_id, delta=delta, at=requested_at(request.environ))
    if answer.number is None or answer.this_update is None or answer.next_update is None:
        return Response(answer.der, mimetype=MIMETYPE, headers={"Cache-Control": "no-store"})
    # The number identifies the content (numbers never repeat per issuer), so no hashing of MBs.
    etag = f'"crl-{ca_id}-{answer.number}"'
    headers = _headers(etag, answer.this_update, answer.next_update, utcnow())
    if request.if_none_match.contains(etag.strip('"')):
        return Response(status=304, headers=headers)
    return Response(answer.der, mimetype=MIMETYPE, headers=headers)
