"""Errors at the edge: QTSPError -> RFC 9457 problem+json (OCSP has its own status codes)."""

from __future__ import annotations

from flask import Response, json

from ..core.errors import Kind, QTSPError

HTTP_STATUS = {
    Kind.MALFORMED: 400,
    Kind.POLICY: 422,
    Kind.NOT_FOUND: 404,
    Kind.CONFLICT: 409,
    Kind.ALREADY_REVOKED: 409,
    Kind.UNAUTHORISED: 403,
    Kind.UNAUTHENTICATED: 401,
    Kind.SIGNER_UNAVAILABLE: 503,
    Kind.LINT: 422,
    Kind.STORAGE: 503,
    Kind.INTEGRITY: 500,
}


def problem(status: int, title: str, detail: str, kind: str | None = None, **extra: object) -> Response:
    body = {"type": f"https://qtsp.dev/problems/{kind or 'http'}", "title": title, "status": status, "detail": detail}
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def from_error(exc: QTSPError) -> Response:
    status = HTTP_STATUS[exc.kind]
    extra = {"findings": exc.findings} if exc.findings else {}
    return problem(status, exc.kind.value.replace("_", " "), exc.detail, exc.kind.value, **extra)
