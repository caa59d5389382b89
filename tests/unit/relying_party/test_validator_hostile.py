"""The reference validator on hostile input, with no sandbox: a Trusted List made in memory, revocation
answers from a throwaway loopback HTTP stub. A verdict every time, never a crash."""

from __future__ import annotations

import datetime as dt
import http.server
import threading

from cryptography import x509
from hypothesis import given, settings, strategies as st

from qtsp import relying_party
from qtsp.core.trusted_list import CA_QC, FOR_WEB, GRANTED


def _mini_pki(ocsp_url: str, crl_url: str, qc_raw: bytes | None = None):  # type: ignore[no-untyped-def]
    """A CA (as a granted Trusted List service) and a leaf naming ``ocsp_url`` and ``crl_url``."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import AuthorityInformationAccessOID, NameOID

    from qtsp.core import oids

    now = dt.datetime.now(dt.timezone.utc)
    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hostile-test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(ca_key, hashes.SHA256()))
    builder = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "leaf")]))
               .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(2)
               .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=10))
               .add_extension(x509.AuthorityInformationAccess([x509.AccessDescription(
                   AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(ocsp_url))]), critical=False)
               .add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
                   [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False))
    if qc_raw is not None:
        builder = builder.add_extension(x509.UnrecognizedExtension(oids.QC_STATEMENTS, qc_raw), critical=False)
    leaf = builder.sign(ca_key, hashes.SHA256())
    service = relying_party.ListedService("hostile-test CA", CA_QC, GRANTED, now, ca, frozenset({FOR_WEB}))
    return leaf, relying_party.ParsedList(1, "BE", "test", now, now + dt.timedelta(days=1), ca, (service,))


@given(raw=st.one_of(st.binary(max_size=64),
                     st.builds(lambda body: b"\x30" + bytes([len(body)]) + body, st.binary(max_size=60))))
@settings(max_examples=150, deadline=None, database=None)
def test_hostile_qc_statements_give_a_verdict_not_a_crash(raw: bytes) -> None:
    leaf, tl = _mini_pki("http://127.0.0.1:9/ocsp", "http://127.0.0.1:9/crl", qc_raw=raw)
    verdict = relying_party.validate(leaf, trusted_list=tl, at=tl.issued_at, fetcher=relying_party.Fetcher(timeout=0.2))
    assert not verdict.accepted and verdict.reasons


def test_hostile_revocation_servers_give_revocation_unknown() -> None:
    """OCSP and CRL answers that are garbage, truncated, oversized or slow: no status, a reject, no crash."""
    answers = [b"", b"\x30\x03\x0a\x01\x00", b"\x30\x82\xff\xff" + b"\x00" * 64, b"not der at all",
               b"\x30" * (relying_party.MAX_CRL_BYTES // 1024) ]
    current = {"body": b""}

    class Handler(http.server.BaseHTTPRequestHandler):
        def _send(self) -> None:
            body = current["body"]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _send  # noqa: N815

        def log_message(self, *args) -> None:  # type: ignore[no-untyped-def]
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        leaf, tl = _mini_pki(f"http://127.0.0.1:{port}/ocsp", f"http://127.0.0.1:{port}/crl.crl")
        for body in answers:
            current["body"] = body
            verdict = relying_party.validate(leaf, trusted_list=tl, at=tl.issued_at, fetcher=relying_party.Fetcher(timeout=5))
            assert "revocation-unknown" in verdict.codes, (body[:16], verdict.reasons)
            assert not verdict.accepted
        # A CRL bigger than the bound is refused without being read whole.
        current["body"] = b"\x30" * (relying_party.MAX_CRL_BYTES + 10)
        verdict = relying_party.validate(leaf, trusted_list=tl, at=tl.issued_at, fetcher=relying_party.Fetcher(timeout=10))
        assert any("larger than" in p for p in verdict.revocation[0]["problems"]), verdict.revocation
    finally:
        server.shutdown()
        server.server_close()
