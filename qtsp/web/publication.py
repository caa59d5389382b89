"""AIA: each CA certificate at its caIssuers URL (DER), plus PEM and the chain as PEM."""

from __future__ import annotations

import datetime as dt
import hashlib
from email.utils import format_datetime

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from flask import Blueprint, Response, request

from ..services import search
from .state import state

bp = Blueprint("publication", __name__)
CA_CACHE = "public, max-age=86400"


def _ca_certificates() -> dict[str, tuple[x509.Certificate, str | None]]:
    return search.ca_certificates(state().sandbox)


def _cacheable(body: bytes, mimetype: str, cache: str, last_modified: dt.datetime | None = None) -> Response:
    etag = hashlib.sha256(body).hexdigest()[:32]
    if request.if_none_match.contains(etag):
        return Response(status=304, headers={"ETag": f'"{etag}"', "Cache-Control": cache})
    response = Response(body, mimetype=mimetype)
    response.headers["Cache-Control"] = cache
    response.headers["ETag"] = f'"{etag}"'
    if last_modified is not None:
        response.headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
    return response


@bp.get("/ca/<ca_id>.der")
def ca_der(ca_id: str) -> Response:
    cas = _ca_certificates()
    if ca_id not in cas:
        from .errors import problem

        return problem(404, "not found", f"no CA {ca_id!r}")
    cert = cas[ca_id][0]
    return _cacheable(cert.public_bytes(Encoding.DER), "application/pkix-cert", CA_CACHE, cert.not_valid_before_utc)


@bp.get("/ca/<ca_id>.pem")
def ca_pem(ca_id: str) -> Response:
    cas = _ca_certificates()
    if ca_id not in cas:
        from .errors import problem

        return problem(404, "not found", f"no CA {ca_id!r}")
    return _cacheable(cas[ca_id][0].public_bytes(Encoding.PEM), "application/x-pem-file", CA_CACHE)


@bp.get("/ca/<ca_id>-chain.pem")
def ca_chain(ca_id: str) -> Response:
    """The CA and its ancestors up to the root, as PEM (what a server configures)."""
    cas = _ca_certificates()
    if ca_id not in cas:
        from .errors import problem

        return problem(404, "not found", f"no CA {ca_id!r}")
    chain: list[bytes] = []
    current: str | None = ca_id
    while current is not None and current in cas and len(chain) < 8:
        cert, parent = cas[current]
        chain.append(cert.public_bytes(Encoding.PEM))
        current = parent
    return _cacheable(b"".join(chain), "application/x-pem-file", CA_CACHE)
