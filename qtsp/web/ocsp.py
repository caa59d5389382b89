"""OCSP over HTTP (RFC 6960 appendix A, RFC 5019 profile): a WSGI fast path in front of Flask.

HTTP in, bytes out: ``POST /ocsp`` and ``GET /ocsp/<base64>`` are read here (media type, size
limits), answered by the responder's Source (``qtsp.responder``), and sent with the caching headers of
RFC 5019 6, or 304 to a GET whose ETag the client already has. They never reach Flask. Time travel
was settled in front (``qtsp.web.time_travel``): the instant, if any, is in the environ.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import time
from email.utils import format_datetime
from typing import Any
from collections.abc import Callable, Iterable
from urllib.parse import unquote

from ..core import ocsp as core_ocsp
from ..responder import Answer, Source
from ..responder.bounded import ByteBoundedCache
from ..responder.source import malformed
from . import metrics
from .time_travel import AT

CONTENT_TYPE = "application/ocsp-response"
REQUEST_TYPE = "application/ocsp-request"
MAX_GET_PATH = 4 * core_ocsp.MAX_REQUEST_BYTES // 3 + 16
HEADER_CACHE_BYTES = 16 * 1024 * 1024  # per worker: ~20,000 distinct pre-signed bodies' headers


def _http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.timezone.utc), usegmt=True)


class OcspFastPath:
    """WSGI middleware: ``/ocsp`` (POST) and ``/ocsp/<base64>`` (GET) never reach Flask."""

    def __init__(self, app: Callable[..., Iterable[bytes]], source: Source, max_age: int, prefix: str = "/ocsp") -> None:
        self.app = app
        self.source = source
        self.max_age = max_age  # ocsp_max_age_seconds
        self.prefix = prefix
        # An answer's fixed headers by ETag (see _fixed_headers): per worker, one entry per distinct body.
        self._headers: ByteBoundedCache[str, tuple[tuple[tuple[str, str], ...], float | None]] = ByteBoundedCache(
            HEADER_CACHE_BYTES, lambda etag, value: len(etag) + sum(len(k) + len(v) for k, v in value[0]))

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return self.app(environ, start_response)
        method = environ.get("REQUEST_METHOD", "GET")
        at = environ.get(AT)  # time travel, settled in front: the instant, or None for now
        if method == "POST":
            return self._post(environ, start_response, at)
        if method in ("GET", "HEAD"):
            return self._get(environ, start_response, path[len(self.prefix) + 1 :], at)
        return self._plain(start_response, "405 Method Not Allowed", b"OCSP takes GET or POST\n", "post", [("Allow", "GET, POST")])

    def _plain(self, start_response: Callable[..., Any], status: str, text: bytes, method: str,
               extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        metrics.ocsp_request(method, status.split()[0])
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(text))),
                                ("Cache-Control", "no-store")] + (extra or []))
        return [text]

    def _post(self, environ: dict[str, Any], start_response: Callable[..., Any], at: dt.datetime | None) -> list[bytes]:
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if ctype != REQUEST_TYPE:
            return self._plain(start_response, "415 Unsupported Media Type", b"Content-Type must be application/ocsp-request\n", "post")
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return self._plain(start_response, "400 Bad Request", b"bad Content-Length\n", "post")
        if length > core_ocsp.MAX_REQUEST_BYTES:
            return self._plain(start_response, "413 Content Too Large", b"OCSP request too large\n", "post")
        stream = environ["wsgi.input"]
        body = stream.read(length) if length >= 0 else stream.read(core_ocsp.MAX_REQUEST_BYTES + 1)
        if len(body) > core_ocsp.MAX_REQUEST_BYTES:
            return self._plain(start_response, "413 Content Too Large", b"OCSP request too large\n", "post")
        return self._respond(start_response, self.source.answer(body, at), "post", environ)

    def _get(self, environ: dict[str, Any], start_response: Callable[..., Any], encoded: str,
             at: dt.datetime | None) -> list[bytes]:
        if len(encoded) > MAX_GET_PATH:
            return self._plain(start_response, "414 URI Too Long", b"OCSP GET request too long\n", "get")
        text = unquote(encoded)
        try:  # RFC 6960 A.1: base64 of the DER, URL-encoded; the URL-safe alphabet is accepted too
            der = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        answer = self.source.answer(der, at) if der else malformed(at)
        if answer.etag and environ.get("HTTP_IF_NONE_MATCH", "").strip('"') == answer.etag:
            metrics.ocsp_request("get", "not_modified")
            start_response("304 Not Modified", [("ETag", f'"{answer.etag}"')])
            return []
        return self._respond(start_response, answer, "get", environ)

    def _respond(self, start_response: Callable[..., Any], answer: Answer, method: str,
                 environ: dict[str, Any]) -> list[bytes]:
        metrics.ocsp_request(method, answer.outcome)
        fixed, expires = self._fixed_headers(answer)
        headers = list(fixed)
        if expires is not None:
            # RFC 5019 6.2: max-age no later than nextUpdate, and at most ocsp_max_age_seconds, which
            # bounds how long an HTTP cache or CDN in front may keep serving a status after a revocation.
            max_age = max(0, min(int(expires - time.time()), self.max_age))
            headers.append(("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate"))
        else:
            headers.append(("Cache-Control", "no-cache, no-store, max-age=0"))
        start_response("200 OK", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [answer.body]

    def _fixed_headers(self, answer: Answer) -> tuple[tuple[tuple[str, str], ...], float | None]:
        """The headers that do not change while an answer is cached (formatting dates costs ~8 us), and,
        for a cacheable answer, its nextUpdate as a timestamp (max-age is counted down from it).

        Kept per ETag, the SHA-1 of the pre-signed body, which fixes every one of them: after a revocation
        empties the answer cache, the same bodies find their headers again, so this holds one entry per
        distinct body. (Keyed by the answer object it grew by one entry per object ever made, ~40 MiB a
        minute per worker under a soak with revocations.) Bounded in bytes, oldest out first."""
        cached = self._headers.get(answer.etag) if answer.cacheable else None
        if cached is not None:
            return cached
        headers: list[tuple[str, str]] = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(answer.body)))]
        if answer.cacheable and answer.next_update is not None and answer.this_update is not None:
            headers += [("Last-Modified", _http_date(answer.this_update)), ("Expires", _http_date(answer.next_update)),
                        ("ETag", f'"{answer.etag}"')]
        expires = answer.next_update.timestamp() if answer.cacheable and answer.next_update is not None else None
        fixed = (tuple(headers), expires)
        if answer.cacheable:
            self._headers.put(answer.etag, fixed)
        return fixed
