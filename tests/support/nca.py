"""NCA API helpers (tests/unit/web/test_nca.py, tests/system/web/test_nca.py): requests signed with the
``ncas`` fixture's credentials (tests/conftest.py), certificates to revoke, the store's counts, OCSP
through the test client, the QTSP root the receipts chain to."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from qtsp.relying_party import nca_client
from qtsp.services import issuance
from qtsp.services.context import Sandbox


BE_PSP = "PSDBE-NBB-0123456789"
NL_PSP = "PSDNL-DNB-R161162"


BASE = "http://127.0.0.1:8080"  # the sandbox fixture's base_url: the URL an NCA request names in aud


def path_for(body: dict[str, Any]) -> str:
    """The endpoint a body goes to: a status query's URL, the register feed, or revocation requests."""
    if set(body) == {"get"}:
        return f"/nca/v1/revocation-requests/{body['get']}"
    return "/nca/v1/authorisations" if "action" in body else "/nca/v1/revocation-requests"


def sign(creds: dict[str, dict[str, bytes]], nca_id: str, body: dict[str, Any], *, as_nca: str | None = None,
         base: str = BASE, aud: str | None = None, **kw: Any) -> str:
    """A request signed by ``nca_id``'s credential, ``aud`` the URL its body goes to under ``base``."""
    return nca_client.sign_request(as_nca or nca_id, creds[nca_id]["key"], creds[nca_id]["cert"], body,
                                   aud=aud or base + path_for(body), **kw)


def serve_here(data_dir: Path) -> int:
    """A free port, written into the sandbox's base_url, for ``running_server(data_dir, port=...)``: the
    URL NCA requests name in aud is the base URL's."""
    from support.server import free_port

    port = free_port()
    config = data_dir / "qtsp.toml"
    config.write_text(config.read_text().replace(f'base_url = "{BASE}"', f'base_url = "http://127.0.0.1:{port}"'))
    return port


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


# --- an NCA's own PKI, for credentials registered with --cert (tests/unit/services/test_nca_credentials.py) ---

DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(x509.NameOID.COMMON_NAME, cn)])


def nca_anchor(now: dt.datetime, cn: str = "ACPR Root") -> tuple[Any, x509.Certificate]:
    """A CA key and its self-signed certificate (basicConstraints CA), valid a year around ``now``."""
    key = ec.generate_private_key(ec.SECP384R1())
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn)).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA384()))
    return key, cert


def nca_leaf(issuer_key: Any, issuer: x509.Certificate | None, now: dt.datetime, *,
             eku: tuple[x509.ObjectIdentifier, ...] | None = (DOCUMENT_SIGNING,), not_before: dt.datetime | None = None,
             days: int = 30, key: Any = None) -> tuple[bytes, x509.Certificate]:
    """(key PEM, certificate) of a request-signing certificate: issued by ``issuer`` (None: self-signed), with
    ``eku`` (None: no EKU extension), from ``not_before`` (default: an hour ago) for ``days``."""
    key = key or ec.generate_private_key(ec.SECP384R1())
    start = not_before or now - dt.timedelta(hours=1)
    builder = (x509.CertificateBuilder().subject_name(_name("ACPR PSD2 request signing"))
               .issuer_name(issuer.subject if issuer is not None else _name("ACPR PSD2 request signing"))
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(start).not_valid_after(start + dt.timedelta(days=days)))
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(eku)), critical=False)
    cert = builder.sign(issuer_key if issuer is not None else key, hashes.SHA384())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()), cert


def pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
