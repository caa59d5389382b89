"""A TPP's HTTPS client: send a (signed) ``http_signatures.Request`` over mutual TLS with the client QWAC,
exactly as built (header order and spelling kept, Host the request's authority), and read the answer,
bounded in size and time. Used by ``qtsp tpp request`` and the demo bank's tests."""

from __future__ import annotations

import http.client
import ssl
from dataclasses import dataclass, field

from .http_signatures import Request

__all__ = ["MAX_RESPONSE_BYTES", "Response", "client_context", "send"]

MAX_RESPONSE_BYTES = 4 * 1024 * 1024


@dataclass
class Response:
    status: int
    reason: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


def client_context(*, certfile: str, keyfile: str, cafile: str | None = None, insecure: bool = False) -> ssl.SSLContext:
    """``certfile``: the QWAC, followed by its chain; ``cafile``: what the bank's server certificate must chain
    to (default: the system's); ``insecure``: no check of the bank's certificate (curl's -k)."""
    context = ssl.create_default_context(cafile=cafile)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    context.load_cert_chain(certfile, keyfile)
    return context


def send(request: Request, context: ssl.SSLContext, *, timeout: float = 30.0) -> Response:
    host, _, port = request.authority.rpartition(":") if request.authority.count(":") == 1 else (request.authority, "", "")
    host = host or request.authority
    connection = http.client.HTTPSConnection(host.strip("[]"), int(port) if port else 443, context=context,
                                             timeout=timeout)
    try:
        connection.putrequest(request.method, request.target, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", request.authority)
        for name, value in request.headers:
            if name.lower() not in ("host", "content-length"):
                connection.putheader(name, value)
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            connection.putheader("Content-Length", str(len(request.body)))
        connection.endheaders(request.body or None)
        answer = connection.getresponse()
        body = answer.read(MAX_RESPONSE_BYTES + 1)
        if len(body) > MAX_RESPONSE_BYTES:
            raise ValueError(f"the answer is larger than {MAX_RESPONSE_BYTES} bytes")
        return Response(answer.status, answer.reason, list(answer.getheaders()), body)
    finally:
        connection.close()
