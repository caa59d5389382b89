"""NCA API helpers (tests/unit/web/test_nca.py, tests/system/web/test_nca.py): requests signed with the
``ncas`` fixture's credentials (tests/conftest.py), certificates to revoke, the store's counts, OCSP
through the test client, the QTSP root the receipts chain to."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from qtsp.relying_party import nca_client
from qtsp.services import issuance
from qtsp.services.context import Sandbox


BE_PSP = "PSDBE-NBB-0123456789"
NL_PSP = "PSDNL-DNB-R161162"


def sign(creds: dict[str, dict[str, bytes]], nca_id: str, body: dict[str, Any], *, as_nca: str | None = None, **kw: Any) -> str:
    return nca_client.sign_request(as_nca or nca_id, creds[nca_id]["key"], creds[nca_id]["cert"], body, **kw)


def issue_cert(sb: Sandbox, org: str, roles: str | None = None, kind: str = "qwac") -> x509.Certificate:
    domains = (f"{uuid.uuid4().hex[:8]}.example.com",) if kind == "qwac" else ()
    return issuance.issue(sb, issuance.IssueRequest(kind, org, domains=domains, generate_key="ecdsa-p256", roles=roles)).certificate


def nca_counts(data_dir: Path) -> dict[str, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("revocations", "nca_requests", "psp_authorisations", "certificates")}
    finally:
        con.close()


def ocsp_status(client, sb: Sandbox, cert: x509.Certificate) -> ocsp.OCSPResponse:  # type: ignore[no-untyped-def]
    issuer_id = "qseal-ca" if cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment else "qwac-ca"
    issuer = x509.load_pem_x509_certificate((sb.data_dir / "ca" / f"{issuer_id}.pem").read_bytes())
    der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    return ocsp.load_der_ocsp_response(client.post("/ocsp", data=der, content_type="application/ocsp-request").data)


def root_cert(sb: Sandbox) -> x509.Certificate:
    return x509.load_pem_x509_certificate((sb.data_dir / "ca" / "root.pem").read_bytes())
