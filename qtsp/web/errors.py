"""Errors at the edge: QTSPError -> RFC 9457 problem+json (OCSP has its own status codes).

Details are shown to API clients as they are: services word them for both the CLI and the API
(a concept such as "a domain name", never a CLI flag or command)."""

from __future__ import annotations

from flask import Response, json
from werkzeug.exceptions import MethodNotAllowed

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


class ApiProblem(Exception):
    """A refusal by the web layer itself (bad query, wrong media type ...), before any service runs."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def problem(status: int, title: str, detail: str, kind: str | None = None, **extra: object) -> Response:
    body = {"type": f"https://qtsp.dev/problems/{kind or 'http'}", "title": title, "status": status, "detail": detail}
    body.update(extra)
    return Response(json.dumps(body), status=status, mimetype="application/problem+json")


def from_error(exc: QTSPError) -> Response:
    status = HTTP_STATUS[exc.kind]
    extra = {"findings": exc.findings} if exc.findings else {}
    return problem(status, exc.kind.value.replace("_", " "), exc.detail, exc.kind.value, **extra)


def allowed_methods(exc: MethodNotAllowed) -> list[str]:
    """The methods the URL takes, sorted (werkzeug collects them from a set: the order would vary)."""
    return sorted({m.upper() for m in exc.valid_methods or ()})


def method_not_allowed(exc: MethodNotAllowed) -> Response:
    """405 for a URL that exists but not with this method, with the Allow header RFC 9110 15.5.6
    requires (the app's 405 handler returns this)."""
    allowed = allowed_methods(exc)
    response = problem(405, "method not allowed", f"this resource takes {', '.join(allowed) or 'no method'}")
    response.headers["Allow"] = ", ".join(allowed)
    return response
