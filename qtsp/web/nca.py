"""/nca/v1: the NCA register feed and NCA-requested revocation (TS 119 495 6.2.6)."""

from __future__ import annotations

from flask import Blueprint, Response, json, request

from ..clock import utcnow
from ..core.errors import Kind, QTSPError
from ..services import nca
from . import errors, metrics
from .state import state

bp = Blueprint("nca", __name__, url_prefix="/nca/v1")
JOSE = "application/jose"


def _body() -> bytes:
    if (request.mimetype or "") != JOSE:
        raise _Http(415, "unsupported media type", f"send the compact JWS as {JOSE}")
    if request.content_length is not None and request.content_length > nca.MAX_JWS_BYTES:
        raise _Http(413, "content too large", f"NCA requests are limited to {nca.MAX_JWS_BYTES} bytes")
    data = request.get_data(cache=False)
    if len(data) > nca.MAX_JWS_BYTES:
        raise _Http(413, "content too large", f"NCA requests are limited to {nca.MAX_JWS_BYTES} bytes")
    return data


class _Http(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


@bp.errorhandler(_Http)
def _http(exc: _Http) -> Response:
    return errors.problem(exc.status, exc.title, exc.detail)


@bp.errorhandler(QTSPError)
def _qtsp(exc: QTSPError) -> Response:
    response = errors.from_error(exc)
    if exc.kind is Kind.UNAUTHENTICATED:
        response.headers["WWW-Authenticate"] = 'JWS realm="qtsp-nca"'
    return response


@bp.after_request
def _count(response: Response) -> Response:
    metrics.http_request(request.endpoint or "nca.unmatched", response.status_code)
    response.headers["Cache-Control"] = "no-store"
    return response


def _answer(outcome: nca.Outcome) -> Response:
    body = {"result": outcome.result, "receipt": outcome.receipt}
    response = Response(json.dumps(body), status=outcome.status, mimetype="application/json")
    if outcome.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.post("/authorisations")
def authorisations() -> Response:
    return _answer(nca.handle(state().sandbox, "authorisation", _body()))


@bp.post("/revocation-requests")
def revocation_requests() -> Response:
    return _answer(nca.handle(state().sandbox, "revocation", _body()))


@bp.get("/revocation-requests/<request_id>")
def get_revocation_request(request_id: str) -> Response:
    """Authenticated like a request: ``Authorization: JWS <compact>`` with body {"get": request_id}, aud this
    URL; each signed query is good once."""
    header = request.headers.get("Authorization", "")
    if not header.startswith("JWS "):
        raise QTSPError(Kind.UNAUTHENTICATED, "send Authorization: JWS <compact JWS signed by the NCA>")
    return _answer(nca.status_query(state().sandbox, header[4:], request_id, path=request.path, now=utcnow()))
