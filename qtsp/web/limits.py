"""How much of a request body the server waits for, and for how long, before any thread takes it.

Both fronts of `qtsp serve` apply these before the WSGI app runs (granian: ``qtsp.web.front``;
gunicorn: ``qtsp.web.gunicorn_worker``); the app keeps its own checks for other servers.

- An OCSP request is a few hundred bytes (at most ``core.ocsp.MAX_REQUEST_BYTES``) and comes in one
  packet with its head: OCSP_BODY_DEADLINE from the end of the head is generous, and a client slower
  than that is refused (408) rather than waited for.
- Every other body (a CSR and some JSON, a signed NCA request) is at most MAX_BODY bytes and must be
  complete within BODY_DEADLINE, the same time a client has to send its head (HEADER_TIMEOUT).
"""

from __future__ import annotations

import json

from ..core import ocsp as core_ocsp

MAX_BODY = 256 * 1024  # REST bodies: a CSR and some JSON
BODY_DEADLINE = 10.0  # seconds from the end of the head to the end of the body
OCSP_BODY_DEADLINE = 2.0
HEADER_TIMEOUT = 10.0  # seconds from a request's first byte to the end of its head
HEAD_LIMIT = 48 * 1024  # the longest legitimate head: an OCSP GET of a 16 KiB request (~22 KiB of base64)
OCSP_PREFIX = "/ocsp"
METRICS_TOKEN_ENV = "QTSP_METRICS_TOKEN_FILE"  # a file holding the bearer token /metrics requires
THREADS_ENV = "QTSP_THREADS"  # threads per worker that run the WSGI app behind a front (`qtsp serve --threads`)

_TITLES = {400: "bad request", 408: "request timeout", 413: "content too large", 431: "request header fields too large"}


def body_limits(path: str) -> tuple[int, float]:
    """(largest body in bytes, seconds it may take to arrive) for a request to ``path``."""
    if path == OCSP_PREFIX or path.startswith(OCSP_PREFIX + "/"):
        return core_ocsp.MAX_REQUEST_BYTES, OCSP_BODY_DEADLINE
    return MAX_BODY, BODY_DEADLINE


def refusal(status: int, max_body: int = MAX_BODY) -> tuple[bytes, list[tuple[str, str]]]:
    """The body and headers of a refusal by the front: problem+json, and the connection closed (the
    rest of an unread body must never be taken for the next request)."""
    detail = {400: "malformed request framing (Content-Length or chunked encoding)",
              408: "the request body did not arrive in time",
              413: f"request bodies are limited to {max_body} bytes",
              431: "the request head is too large"}[status]
    body = json.dumps({"type": "https://qtsp.dev/problems/http", "title": _TITLES[status], "status": status,
                       "detail": detail}).encode()
    return body, [("Content-Type", "application/problem+json"), ("Content-Length", str(len(body))),
                  ("Connection", "close"), ("Cache-Control", "no-store")]
