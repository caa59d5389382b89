"""A small HTTPS server for a WSGI app behind mutual TLS (the demo bank of ``qtsp bank serve``): the
standard library's wsgiref, one thread per connection, the client certificate handed to the app as
``qtsp.peer_certificate`` (DER) and the raw request target as ``REQUEST_URI`` (RFC 9421's @target-uri
and draft-cavage's (request-target) need it as sent, not decoded).

The TLS handshake asks for a client certificate and verifies any it gets against ``client_cas`` (partial
chains allowed: a Trusted List names issuing CAs, not roots); a connection without one still reaches
the app, so that ``SignatureVerifier`` can answer CERTIFICATE_MISSING in the Berlin Group's terms
instead of a bare handshake failure. Every connection is bounded in time (``timeout``) and the request
line and header fields in size (http.server: 64 KiB a line, 100 fields).
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Sequence
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["tls_server"]


class _Handler(WSGIRequestHandler):
    timeout = 15.0

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def get_environ(self) -> dict[str, Any]:
        environ = super().get_environ()
        environ["REQUEST_URI"] = self.path
        environ["HTTPS"] = "on"  # wsgiref derives wsgi.url_scheme from it (wsgiref.util.guess_scheme)
        der = self.request.getpeercert(binary_form=True)
        if der:
            environ["qtsp.peer_certificate"] = der
        return environ

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # the access log is the caller's (a line per request would be the only output otherwise)


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    context: ssl.SSLContext

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, addr = self.socket.accept()
        # The handshake runs in the connection's thread (_Handler.setup), bounded by its timeout.
        return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a failed handshake or a client gone: nothing to tell anyone


def tls_server(app: Any, host: str, port: int, *, certfile: str, keyfile: str,
               client_cas: Sequence[x509.Certificate]) -> _Server:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(certfile, keyfile)
    context.verify_mode = ssl.CERT_OPTIONAL
    context.verify_flags |= ssl.VERIFY_X509_PARTIAL_CHAIN
    context.load_verify_locations(cadata="".join(c.public_bytes(Encoding.PEM).decode() for c in client_cas))
    server = _Server((host, port), _Handler, bind_and_activate=True)
    server.context = context
    server.set_app(app)
    return server
