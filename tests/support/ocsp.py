"""OCSP helpers the OCSP tests share (tests/unit/web/test_ocsp.py, tests/system/web/test_ocsp.py): a
request for one of the ``ocsp_files`` certificates (tests/conftest.py), and the store's row counts."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp


SHA1 = hashes.SHA1()  # the default CertID hash of OCSP clients


def request_der(files: dict[str, Path], cert: str, algorithm: hashes.HashAlgorithm = SHA1, issuer: str = "issuer") -> bytes:
    leaf = x509.load_pem_x509_certificate(files[cert].read_bytes())
    ca = x509.load_pem_x509_certificate(files[issuer].read_bytes())
    return ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, algorithm).build().public_bytes(serialization.Encoding.DER)


def store_counts(data_dir: Path) -> tuple[int, ...]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return tuple(con.execute(f"select count(*) from {t}").fetchone()[0]
                     for t in ("certificates", "revocations", "ocsp_responses", "audit_events"))
    finally:
        con.close()
