"""The demo site of ``qtsp site serve`` (issue 18): an HTTPS server on loopback that presents a TLS certificate
and advertises its 2-QWAC TLS certificate binding, as a site under eIDAS 2.0 would (ETSI TS 119 411-5 V2.1.1
6.2): every page answers with ``Link: </tls-certificate-binding.jws>; rel="tls-certificate-binding"``, and
that path serves the binding. A relying party (``qtsp binding check``, a browser) can then be tested end to end.

Bounded on purpose: one request at a time, GET and HEAD only, 10 s per connection, request lines and headers
as http.server bounds them (64 KiB), a fixed set of paths; stops on SIGTERM or SIGINT. The binding is served as
given, good or broken: the point is to test what a verifier makes of it.
"""

from __future__ import annotations

import http.server
import signal
import socket
import ssl
from pathlib import Path
from types import FrameType
from typing import Any

from ..core.errors import Kind, QTSPError

BINDING_PATH = "/tls-certificate-binding.jws"
LINK = f'<{BINDING_PATH}>; rel="tls-certificate-binding"'
TIMEOUT = 10.0
PAGE = (b"<!doctype html><html><head><meta charset=\"utf-8\"><title>qtsp demo site</title></head><body>"
        b"<h1>qtsp demo site</h1><p>This site is authenticated by a 2-QWAC through a TLS certificate binding: "
        b"see the Link header, rel=\"tls-certificate-binding\".</p></body></html>\n")


def _handler(binding: bytes) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "qtsp-demo-site"
        sys_version = ""
        timeout = TIMEOUT

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Link", LINK)
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.split("?", 1)[0]
            if path == BINDING_PATH:
                self._send(200, binding, "application/jose")
            elif path in ("/", "/index.html"):
                self._send(200, PAGE, "text/html; charset=utf-8")
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")

        do_HEAD = do_GET  # noqa: N815

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
            pass  # quiet: the demo site keeps no log

    return Handler


class _Server(http.server.HTTPServer):
    def __init__(self, address: tuple[str, int], handler: type[http.server.BaseHTTPRequestHandler],
                 context: ssl.SSLContext) -> None:
        super().__init__(address, handler)
        self.context = context

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = super().get_request()
        sock.settimeout(TIMEOUT)  # the handshake too is bounded
        try:
            return self.context.wrap_socket(sock, server_side=True), addr
        except (OSError, ssl.SSLError):
            sock.close()
            raise

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up or fails the handshake is not ours to report


def serve(*, tls_cert: Path, tls_key: Path, binding: bytes, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT. ``host`` must be a loopback address."""
    if host not in ("127.0.0.1", "::1"):
        raise QTSPError(Kind.POLICY, "the demo site listens on loopback only (127.0.0.1 or ::1)")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(tls_cert), str(tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise QTSPError(Kind.MALFORMED, f"cannot use {tls_cert} with {tls_key}: {type(exc).__name__}") from None
    server = _Server((host, port), _handler(binding), context)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.server_close()
