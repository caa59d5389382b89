"""Helpers for the REST API tests (tests/unit/web/test_api*.py, tests/system/web/test_api.py): the
``Api`` the ``api`` fixture (tests/conftest.py) returns, keys and CSRs, problem+json checks, the
store's state before and after, and JWS for revocation by the certificate's own key."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey

from qtsp.services.context import Sandbox
from support import SAMPLE_ORG

DOMAIN = "api.example-fintech.eu"
PREFIX = "/api/v1"
PROBLEM = "application/problem+json"
TABLES = ("certificates", "revocations", "audit_events", "api_tokens", "ocsp_responses", "issuance_intents")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def store_state(data_dir: Path) -> tuple[Any, ...]:
    """Row counts of the tables the API could touch, the revoked serials and the audit head."""
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        counts = tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in TABLES)
        revoked = tuple(r[0] for r in db.execute("SELECT serial FROM certificates WHERE status = 'revoked' ORDER BY serial"))
        reasons = tuple(db.execute("SELECT certificate_id, reason FROM revocations ORDER BY certificate_id").fetchall())
        head = db.execute("SELECT seq, hash FROM audit_head").fetchall()
    return counts, revoked, reasons, tuple(head)


def new_key(key_type: str = "ecdsa-p256") -> Any:
    if key_type == "ecdsa-p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "ecdsa-p384":
        return ec.generate_private_key(ec.SECP384R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def csr_pem(key: Any) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored by the CA")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()) \
        .public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_pem(key: Any) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def assert_problem(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == PROBLEM, response.mimetype
    body = json.loads(response.get_data())
    assert body["status"] == response.status_code and body["title"] and body["detail"]
    return body  # type: ignore[no-any-return]


@dataclass
class Api:
    app: Flask
    client: FlaskClient
    data_dir: Path
    sandbox: Sandbox
    operator: str
    auditor: str

    def headers(self, who: str | None) -> dict[str, str]:
        secret = {"operator": self.operator, "auditor": self.auditor}.get(who or "", who)
        return {} if secret is None else {"Authorization": f"Bearer {secret}"}

    def issue(self, key: Any | None = None, *, kind: str = "qwac", **extra: Any) -> tuple[dict[str, Any], Any]:
        key = key or new_key()
        body = {"kind": kind, "org_id": SAMPLE_ORG, "csr": csr_pem(key)}
        if kind == "qwac":
            body["domains"] = [DOMAIN]
        body.update(extra)
        response = self.client.post(f"{PREFIX}/certificates", json=body, headers=self.headers("operator"))
        assert response.status_code == 201, response.get_data(as_text=True)
        return response.get_json(), key

    def ocsp_status(self, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
        der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build() \
            .public_bytes(serialization.Encoding.DER)
        response = self.client.post("/ocsp", data=der, content_type="application/ocsp-request")
        assert response.status_code == 200
        return ocsp.load_der_ocsp_response(response.get_data())

    def revoke_by_key(self, compact: str | bytes, content_type: str = "application/jose") -> Any:
        data = compact.encode("ascii") if isinstance(compact, str) else compact
        return self.client.post(f"{PREFIX}/revoke-by-key", data=data, content_type=content_type)


def signed(key: Any, alg: str, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    jose_key = (ECKey if isinstance(key, ec.EllipticCurvePrivateKey) else RSAKey).import_key(private_pem(key))
    return jws.serialize_compact({"alg": alg, **(header or {})}, json.dumps(payload).encode(), jose_key, algorithms=[alg])


KEY_REVOKE_URL = "http://127.0.0.1:8080" + PREFIX + "/revoke-by-key"  # the sandbox fixture's base_url + the path


def key_payload(serial: str, reason: str = "key-compromise", *, iat: int | None = None, jti: str | None = None,
                aud: str = KEY_REVOKE_URL) -> dict[str, Any]:
    return {"serial": serial, "reason": reason, "iat": int(time.time()) if iat is None else iat,
            "jti": jti or secrets.token_urlsafe(16), "aud": aud}

