"""The front `qtsp serve` puts before the WSGI app under granian: bodies read on the event loop, with a
deadline and a size bound, before a thread is given the request.

Why (issue 15, finding 1): granian's WSGI interface hands a request to one of its few blocking threads
as soon as the head has arrived, and ``wsgi.input.read()`` then waits in that thread, with no deadline,
for the body. Nine clients sending a body at a byte per second held every thread of two workers, and
OCSP stopped for everyone. granian has a header timeout but none for bodies.

So granian serves this RSGI app instead (``qtsp.web.front:app``): granian reads bodies asynchronously in
Rust, and here the whole body is awaited on the worker's event loop, which costs a coroutine per slow
client, not a thread. A body must arrive within BODY_DEADLINE of the head (408 and the connection
closed otherwise) and be at most MAX_BODY bytes (413 as soon as a Content-Length or the bytes received
say so, before anything is buffered past the bound; OCSP: 16 KiB within 2 s, see ``qtsp.web.limits``). Only then does the unchanged WSGI app run, in a
pool of ``QTSP_THREADS`` threads, with the body in memory: no thread ever waits on a client.
The gunicorn equivalent is ``qtsp.web.gunicorn_worker``.
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from collections.abc import Callable, Iterable

from .limits import THREADS_ENV, body_limits, refusal

log = logging.getLogger("qtsp.web.front")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
INLINE_PREFIX = "/ocsp/"  # GETs answered on the event loop (see __rsgi__)


class _TooLarge(Exception):
    pass


class RsgiFront:
    """An RSGI application running a WSGI one on threads, once each request's body is complete."""

    def __init__(self, wsgi_app: WsgiApp, threads: int, limits: Callable[[str], tuple[int, float]] = body_limits) -> None:
        self.wsgi_app = wsgi_app
        self.limits = limits  # path -> (largest body, seconds it may take)
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="qtsp-wsgi")

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        pass

    def __rsgi_del__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.pool.shutdown(wait=False)

    async def __rsgi__(self, scope: Any, protocol: Any) -> None:
        if scope.proto != "http":  # websockets: nothing here speaks them
            protocol.close(403)
            return
        headers = scope.headers
        body = b""
        if _may_have_body(scope.method, headers):
            max_body, deadline = self.limits(scope.path)
            declared = headers.get("content-length")
            if declared is not None and (not declared.isdigit() or int(declared) > max_body):
                return _refuse(protocol, 400 if not declared.isdigit() else 413, max_body)
            try:
                # With a Content-Length within bounds granian reads at most that much: take it in one call.
                async with asyncio.timeout(deadline):  # no task of its own, unlike wait_for
                    body = await (protocol() if declared is not None else self._read(protocol, max_body))
            except TimeoutError:
                log.info("request body from %s not complete within %.0f s: 408", scope.client, deadline)
                return _refuse(protocol, 408, max_body)
            except _TooLarge:
                return _refuse(protocol, 413, max_body)
            except Exception:  # noqa: BLE001 - the client went away mid-body: nobody to answer
                return None
        environ = _environ(scope, headers, body)
        if not body and scope.method in ("GET", "HEAD") and scope.path.startswith(INLINE_PREFIX):
            # An OCSP GET has no body to wait for, and its answer is almost always a pre-signed one from
            # memory (microseconds): answered here, on the loop, it skips the hop to a pool thread, which
            # cost more than half the GET throughput. A miss reads the store, as a thread would.
            status, response_headers, payload = self._call(environ)
        else:
            loop = asyncio.get_running_loop()
            status, response_headers, payload = await loop.run_in_executor(self.pool, self._call, environ)
        protocol.response_bytes(status, response_headers, payload)
        return None

    async def _read(self, protocol: Any, max_body: int) -> bytes:
        parts: list[bytes] = []
        size = 0
        async for chunk in protocol:
            size += len(chunk)
            if size > max_body:
                raise _TooLarge
            parts.append(chunk)
        return b"".join(parts)

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
        """The WSGI app, in a pool thread: (status, headers, body)."""
        started: list[Any] = []
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started[:] = [status, headers]
            return written.append

        result = self.wsgi_app(environ, start_response)
        try:
            body = b"".join([*written, *result])
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        return int(status.split(" ", 1)[0]), list(headers), body


def _may_have_body(method: str, headers: Any) -> bool:
    if "content-length" in headers or "transfer-encoding" in headers:
        return True
    return method not in ("GET", "HEAD", "OPTIONS", "DELETE")


def _refuse(protocol: Any, status: int, max_body: int) -> None:
    """A short problem+json answer, and the connection closed: its unread body must not be parsed as a request."""
    body, headers = refusal(status, max_body)
    protocol.response_bytes(status, headers, body)


def _environ(scope: Any, headers: Any, body: bytes) -> dict[str, Any]:
    """PEP 3333 environ from an RSGI scope (the path comes percent-decoded as UTF-8: WSGI wants latin-1)."""
    server_host, _, server_port = scope.server.rpartition(":")
    client_host, _, client_port = scope.client.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": scope.path.encode("utf-8", "surrogateescape").decode("latin-1"),
        "QUERY_STRING": scope.query_string,
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": client_host.strip("[]"),
        "REMOTE_PORT": client_port,
        "CONTENT_LENGTH": str(len(body)) if body or "content-length" in headers else "",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for name in headers.keys():
        if name == "content-length" or name == "transfer-encoding":
            continue
        value = ",".join(headers.get_all(name)) if name != "cookie" else ";".join(headers.get_all(name))
        if name == "content-type":
            environ["CONTENT_TYPE"] = value
        else:
            environ["HTTP_" + name.upper().replace("-", "_")] = value
    if "HTTP_HOST" not in environ and scope.authority:
        environ["HTTP_HOST"] = scope.authority
    return environ


def _build() -> RsgiFront:
    from .wsgi import app as wsgi_app

    return RsgiFront(wsgi_app, int(os.environ.get(THREADS_ENV) or 4))


app = _build()
