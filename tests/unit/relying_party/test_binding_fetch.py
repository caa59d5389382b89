"""What ``qtsp binding check`` fetches (qtsp/relying_party/binding.py ``fetch_site``), against a throwaway HTTPS
stub on loopback that misbehaves: a Link to another origin, no Link, an oversized binding, an error status. Each
is refused with its reason and never followed; the well-behaved stub yields the handshake's certificate and the
binding. The real demo site: tests/system/relying_party/test_binding_site.py."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtsp.core import tls_binding
from qtsp.core.errors import Kind, QTSPError
from qtsp.relying_party.binding import fetch_site

BEHAVIOUR: dict[str, object] = {}


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/binding.jws":
            body = BEHAVIOUR.get("binding", b"header..signature")
            status = int(BEHAVIOUR.get("binding_status", 200))  # type: ignore[call-overload]
        else:
            body, status = b"<html></html>", int(BEHAVIOUR.get("page_status", 200))  # type: ignore[call-overload]
        self.send_response(status)
        link = BEHAVIOUR.get("link", '</binding.jws>; rel="tls-certificate-binding"')
        if link:
            self.send_header("Link", str(link))
        self.send_header("Content-Length", str(len(body)))  # type: ignore[arg-type]
        self.end_headers()
        self.wfile.write(body)  # type: ignore[arg-type]

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, x509.Certificate]]:
    work: Path = tmp_path_factory.mktemp("stub")
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stub")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (work / "c.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (work / "k.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(work / "c.pem"), str(work / "k.pem"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"https://127.0.0.1:{server.server_address[1]}/", cert
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _reset() -> Iterator[None]:
    BEHAVIOUR.clear()
    yield
    BEHAVIOUR.clear()


def test_the_page_the_certificate_and_the_binding(site: tuple[str, x509.Certificate]) -> None:
    url, cert = site
    fetched = fetch_site(url)
    assert fetched.tls_cert == cert and fetched.binding == b"header..signature"
    assert fetched.binding_url == url + "binding.jws"


@pytest.mark.parametrize(("behaviour", "kind", "fragment"), [
    ({"link": '<https://127.0.0.2:1/binding.jws>; rel="tls-certificate-binding"'}, Kind.POLICY, "origin"),
    ({"link": '<http://127.0.0.1/binding.jws>; rel="tls-certificate-binding"'}, Kind.POLICY, "origin"),
    ({"link": ""}, Kind.NOT_FOUND, "no Link header"),
    ({"link": '</binding.jws>; rel="preload"'}, Kind.NOT_FOUND, "no Link header"),
    ({"binding": b"x" * (tls_binding.MAX_BINDING_BYTES + 1)}, Kind.MALFORMED, "larger than"),
    ({"page_status": 404}, Kind.NOT_FOUND, "HTTP 404"),
    ({"binding_status": 500}, Kind.NOT_FOUND, "HTTP 500"),
])
def test_misbehaving_sites_are_refused_with_the_reason(site: tuple[str, x509.Certificate], behaviour: dict[str, object],
                                                       kind: Kind, fragment: str) -> None:
    BEHAVIOUR.update(behaviour)
    with pytest.raises(QTSPError) as refused:
        fetch_site(site[0])
    assert refused.value.kind is kind and fragment in refused.value.detail


def test_a_tls_ca_given_is_enforced(site: tuple[str, x509.Certificate], tmp_path: Path) -> None:
    other = tmp_path / "other.pem"
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else")])
    now = dt.datetime.now(dt.timezone.utc)
    other.write_bytes(x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                      .serial_number(2).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
                      .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                      .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(QTSPError, match="cannot fetch"):
        fetch_site(site[0], cafile=str(other))
