"""Request ids and the access log: WSGI middleware in front of everything, the OCSP fast path included.

Every response carries ``X-Request-ID``: the caller's, when it is sane (1-128 characters of
``A-Z a-z 0-9 . _ ~ : + / = -``: it goes into log lines and headers as it is), otherwise a new
random one. Log lines written while the request runs carry it too. The access line (method, path
without the query string, status, duration in ms, request id) is written when the response is
done; headers are never logged.
"""

from __future__ import annotations

import itertools
import os
import re
import time
from typing import Any
from collections.abc import Callable, Iterable

from werkzeug.wsgi import ClosingIterator

from ..logging_setup import AccessLog, request_id

HEADER = "X-Request-ID"
_ENVIRON = "HTTP_X_REQUEST_ID"
_sane = re.compile(r"[A-Za-z0-9._~:+/=-]{1,128}").fullmatch

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Ids:
    """New request ids: 8 random hex digits per process, then a counter (16 hex digits in all); cheaper
    than 8 random bytes a request, and unique across workers (reset in each forked one) and restarts."""

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = os.urandom(4).hex()
        self._count = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFF:08x}"


_ids = _Ids()


class AccessLogMiddleware:
    def __init__(self, app: WsgiApp, log: AccessLog | None) -> None:
        self.app = app
        self.log = log  # None: request ids only (``--no-access-log``, or a level above info)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.perf_counter()
        rid = environ.get(_ENVIRON)
        if rid is None or not _sane(rid):
            rid = _ids.new()
        status = ["500"]  # what the server sends if the app raises before starting the response

        def respond(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            status[0] = line
            headers.append((HEADER, rid))
            return start_response(line, headers, exc_info)

        token = request_id.set(rid)
        try:
            result = self.app(environ, respond)
        except BaseException:
            self._write(environ, status[0], started, rid)
            raise
        finally:
            request_id.reset(token)
        if self.log is None:
            return result
        if type(result) is list:  # the OCSP fast path and the 413 guard: the body is ready, the request done
            self._write(environ, status[0], started, rid)
            return result
        return ClosingIterator(result, lambda: self._write(environ, status[0], started, rid))

    def _write(self, environ: dict[str, Any], status: str, started: float, rid: str) -> None:
        if self.log is not None:
            self.log.write(environ.get("REQUEST_METHOD", "-"), environ.get("PATH_INFO", ""), status,
                           (time.perf_counter() - started) * 1000, rid)
