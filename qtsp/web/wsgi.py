"""WSGI entry point for servers that import a module attribute: ``qtsp.web.wsgi:app``.

The data dir comes from ``QTSP_DATA_DIR`` (``qtsp serve`` sets it); logging from QTSP_LOG_LEVEL,
QTSP_LOG_FORMAT and QTSP_ACCESS_LOG (``qtsp serve`` has granian or gunicorn apply the same settings
before this module loads; another server that configured no logging gets them here)."""

from __future__ import annotations

import io
import json
import logging
import os
from pathlib import Path
from typing import Any, cast
from collections.abc import Callable, Iterable

from ..logging_setup import LogSettings, configure
from .access_log import AccessLogMiddleware
from .app import create_app
from .limits import MAX_BODY, METRICS_TOKEN_ENV

if not logging.getLogger().handlers:
    configure(LogSettings.from_env())


def _metrics_token() -> str | None:
    """The token /metrics requires, from the file ``QTSP_METRICS_TOKEN_FILE`` names (checked by `qtsp serve`)."""
    path = os.environ.get(METRICS_TOKEN_ENV)
    return Path(path).read_text().strip() or None if path else None


app = create_app({"metrics_token": _metrics_token()})


def _bounded_body_without_length(wsgi_app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """A request body sent without Content-Length (chunked, or HTTP/2 without the header) is read here,
    at most MAX_BODY bytes: more is 413; less reaches the app as if it had come with a Content-Length.

    Without this, werkzeug reads such a body as empty under granian (which does not set
    ``wsgi.input_terminated``), or silently cuts it at MAX_CONTENT_LENGTH instead of refusing it."""

    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("CONTENT_LENGTH") and environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            body = environ["wsgi.input"].read(MAX_BODY + 1)
            if len(body) > MAX_BODY:
                problem = json.dumps({"type": "https://qtsp.dev/problems/http", "title": "content too large", "status": 413,
                                      "detail": f"request bodies are limited to {MAX_BODY} bytes"}).encode()
                start_response("413 Content Too Large", [("Content-Type", "application/problem+json"),
                                                         ("Content-Length", str(len(problem))), ("Connection", "close")])
                return [problem]
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return wsgi_app(environ, start_response)

    return call


# Inside the access log (create_app puts it outermost), so that a refused body is logged with a request id too.
_access = cast(AccessLogMiddleware, app.wsgi_app)
_access.app = _bounded_body_without_length(_access.app)
