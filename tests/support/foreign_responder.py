"""The foreign demo QTSP's revocation services on loopback (tests/support/foreign_pki.py): an OCSP responder
and CRLs made with cryptography's builders, not with qtsp's responder, for the validator's revocation modes."""

from __future__ import annotations

import datetime as dt
import http.server
import threading
from typing import Any

from asn1crypto import keys as akeys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from support.foreign_pki import NOW, ForeignPKI


class ForeignResponder:
    """The foreign QTSP's revocation services on 127.0.0.1: OCSP (POST, signed by the issuer itself, nonce
    echoed) at /ocsp for the leaves and the issuing CA, CRLs at /crl/issuing.crl and /crl/root.crl. Made with
    cryptography's builders here, not with qtsp's responder. ``revoked``: serials to answer revoked;
    ``ocsp_down``: OCSP answers HTTP 503 (to see the CRL fallback). A relying party reaches it with
    ``Fetcher(connect_to=responder.address)``; the certificates keep their public-looking URLs."""

    def __init__(self, pki: ForeignPKI) -> None:
        self.pki = pki
        self.revoked: set[int] = set()
        self.ocsp_down = False
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = min(int(self.headers.get("Content-Length") or 0), 65536)
                outer.requests.append(f"POST {self.path}")
                body = self.rfile.read(length)
                if self.path != "/ocsp" or outer.ocsp_down:
                    self.send_error(503)
                    return
                self._send(outer._ocsp(body), "application/ocsp-response")

            def do_GET(self) -> None:  # noqa: N802
                outer.requests.append(f"GET {self.path}")
                if self.path == "/crl/issuing.crl":
                    self._send(outer._crl(outer.pki.ca, outer.pki.ca_key), "application/pkix-crl")
                elif self.path == "/crl/root.crl":
                    self._send(outer._crl(outer.pki.root, outer.pki.root_key), "application/pkix-crl")
                else:
                    self.send_error(404)

            def _send(self, body: bytes, content_type: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> ForeignResponder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _issuer_of(self, key_hash: bytes, algorithm: hashes.HashAlgorithm) -> tuple[x509.Certificate, Any] | None:
        for cert, key in ((self.pki.ca, self.pki.ca_key), (self.pki.root, self.pki.root_key)):
            spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
            digest = hashes.Hash(algorithm)
            digest.update(bytes(akeys.PublicKeyInfo.load(spki)["public_key"].contents[1:]))
            if digest.finalize() == key_hash:
                return cert, key
        return None

    def _ocsp(self, body: bytes) -> bytes:
        request = ocsp.load_der_ocsp_request(body)
        found = self._issuer_of(request.issuer_key_hash, request.hash_algorithm)
        if found is None:
            return ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED).public_bytes(
                serialization.Encoding.DER)
        issuer, key = found
        subject = self.pki.ca if issuer is self.pki.root else None
        now = NOW  # the answers are fresh at the time the tests judge at
        status = ocsp.OCSPCertStatus.REVOKED if request.serial_number in self.revoked else ocsp.OCSPCertStatus.GOOD
        # cryptography's builder wants the certificate itself; a stand-in with the right serial and issuer will do
        cert = subject if subject is not None else self._stand_in(request.serial_number)
        builder = ocsp.OCSPResponseBuilder().add_response(
            cert=cert, issuer=issuer, algorithm=request.hash_algorithm, cert_status=status, this_update=now - dt.timedelta(hours=1),
            next_update=now + dt.timedelta(days=4), revocation_time=now - dt.timedelta(hours=2) if status == ocsp.OCSPCertStatus.REVOKED else None,
            revocation_reason=x509.ReasonFlags.key_compromise if status == ocsp.OCSPCertStatus.REVOKED else None,
        ).responder_id(ocsp.OCSPResponderEncoding.HASH, issuer)
        for extension in request.extensions:
            if isinstance(extension.value, x509.OCSPNonce):
                builder = builder.add_extension(extension.value, critical=False)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _stand_in(self, serial: int) -> x509.Certificate:
        key = ec.generate_private_key(ec.SECP256R1())
        return (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "stand-in")]))
                .issuer_name(self.pki.ca.subject).public_key(key.public_key()).serial_number(serial)
                .not_valid_before(NOW - dt.timedelta(days=1)).not_valid_after(NOW + dt.timedelta(days=1))
                .sign(key, hashes.SHA256()))

    def _crl(self, issuer: x509.Certificate, key: Any) -> bytes:
        now = NOW
        revoked = [x509.RevokedCertificateBuilder().serial_number(s).revocation_date(now - dt.timedelta(hours=2)).build()
                   for s in sorted(self.revoked)]
        builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.subject).last_update(now - dt.timedelta(hours=1))
                   .next_update(now + dt.timedelta(days=7)).add_extension(x509.CRLNumber(1), critical=False))
        for entry in revoked:
            builder = builder.add_revoked_certificate(entry)
        return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
