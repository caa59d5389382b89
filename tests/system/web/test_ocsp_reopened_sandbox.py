"""A revocation made through a sandbox opened a second time in the same process reaches a running OCSP
responder: the sequence of benchmarks/ocsp_load.py, where it once did not. Opening the sandbox checked the
database files' modes by opening and closing them, which dropped this process's POSIX locks on them (SQLite's);
the next server took itself for the database's only user and never saw the later writes (qtsp/files.py
``_tighten_in_place``; tests/unit/test_files.py holds the lock-level test)."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from qtsp.services import revocation
from qtsp.services.context import Sandbox, open_sandbox

from support.server import running_server


def _status(url: str, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPCertStatus:
    der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    request = urllib.request.Request(url + "/ocsp", data=der, headers={"Content-Type": "application/ocsp-request"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return ocsp.load_der_ocsp_response(response.read()).certificate_status


def test_revocation_through_a_reopened_sandbox_is_answered_revoked(sandbox: Sandbox, data_dir: Path,
                                                                   ocsp_files: dict[str, Path]) -> None:
    issuer = x509.load_pem_x509_certificate(ocsp_files["issuer"].read_bytes())
    first, second = (x509.load_pem_x509_certificate(ocsp_files[name].read_bytes()) for name in ("revoked", "good"))
    with running_server(data_dir, workers=2) as url:  # a server runs while this process writes
        assert _status(url, first, issuer) == ocsp.OCSPCertStatus.GOOD
        revocation.revoke(sandbox, format(first.serial_number, "X"), "key-compromise")
        assert _status(url, first, issuer) == ocsp.OCSPCertStatus.REVOKED
    reopened = open_sandbox(data_dir)  # `sandbox` stays open, as in a benchmark or a long-lived tool
    try:
        with running_server(data_dir, workers=2) as url:
            assert _status(url, second, issuer) == ocsp.OCSPCertStatus.GOOD
            revocation.revoke(reopened, format(second.serial_number, "X"), "key-compromise")
            assert _status(url, second, issuer) == ocsp.OCSPCertStatus.REVOKED, "a stale 'good' after revoke() returned"
    finally:
        reopened.engine.dispose()
