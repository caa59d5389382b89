"""Time travel at the edge (issue 7): one WSGI middleware in front of the whole service, OCSP included.

With the sandbox's ``time_travel`` on, a request carrying ``X-QTSP-Time`` acts as of that instant:
the clock (``qtsp.clock``) is moved for the request, the instant is handed to the views in the WSGI
environ (``requested_at``), the header is echoed, and no cache may keep the response
(``Cache-Control: no-store``, no ETag, Last-Modified or Expires: an answer about another time
must never be served to a client on the real clock). With time travel off, or a value that is not
an instant with a zone, the request is refused with 400 before anything runs: never a silent "now".
OCSP clients get the refusal as text/plain (they read no problem+json), everyone else as problem+json.

A request without the header costs one dict lookup here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from collections.abc import Callable, Iterable

from ..clock import as_of
from ..core.errors import QTSPError
from ..core.http import TIME_HEADER
from ..core.instants import parse_instant
from ..metrics import http_request, ocsp_request
from . import errors

_ENVIRON_HEADER = "HTTP_" + TIME_HEADER.upper().replace("-", "_")
AT = "qtsp.at"  # environ key: the instant a time-travelling request acts as of
# Replaced on every time-travelling response: validators and expiry would let a cache keep it.
_REPLACED = frozenset({"etag", "last-modified", "expires", "cache-control", TIME_HEADER.lower()})
_OFF = "time travel is off in this sandbox (time_travel = true in qtsp.toml turns it on)"

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def instant_text(moment: dt.datetime) -> str:
    """How a time-travelling response names its time: ``2027-06-01T00:00:00Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def requested_at(environ: dict[str, Any]) -> dt.datetime | None:
    """The instant this request acts as of, or None for now (the views' one way to ask)."""
    return environ.get(AT)


class TimeTravelMiddleware:
    def __init__(self, app: WsgiApp, enabled: bool, ocsp_prefix: str = "/ocsp") -> None:
        self.app = app
        self.enabled = enabled
        self.ocsp_prefix = ocsp_prefix

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        value = environ.get(_ENVIRON_HEADER)
        if value is None:
            return self.app(environ, start_response)
        if not self.enabled:
            return self._refuse(environ, start_response, None)
        try:
            moment = parse_instant(value)
        except QTSPError as exc:
            return self._refuse(environ, start_response, exc)
        echoed = instant_text(moment)

        def respond(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            kept = [(name, v) for name, v in headers if name.lower() not in _REPLACED]
            return start_response(status, kept + [(TIME_HEADER, echoed), ("Cache-Control", "no-store")], exc_info)

        environ[AT] = moment
        # The views run inside this call (Flask dispatches before returning, the OCSP path answers
        # with a list), so the clock is back to now before the server sends a byte.
        with as_of(moment):
            return self.app(environ, respond)

    def _refuse(self, environ: dict[str, Any], start_response: Callable[..., Any],
                exc: QTSPError | None) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self.ocsp_prefix or path.startswith(self.ocsp_prefix + "/"):
            text = (f"{TIME_HEADER} refused: {_OFF}\n" if exc is None else f"{TIME_HEADER}: {exc.detail}\n").encode()
            ocsp_request("get" if environ.get("REQUEST_METHOD") in ("GET", "HEAD") else "post", "400")
            start_response("400 Bad Request", [("Content-Type", "text/plain"), ("Content-Length", str(len(text))),
                                               ("Cache-Control", "no-store")])
            return [text]
        if exc is None:
            response = errors.problem(400, "time travel off", f"{TIME_HEADER} is refused: {_OFF}", "time_travel_off")
        else:
            response = errors.from_error(QTSPError(exc.kind, f"{TIME_HEADER}: {exc.detail}"))
        response.headers["Cache-Control"] = "no-store"
        http_request("time_travel_refused", response.status_code)
        return response(environ, start_response)
