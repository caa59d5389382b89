"""Revocation through the REST API by the certificate's own key (POST /api/v1/revoke-by-key, a JWS
signed with the subscriber key): accepted for each key type, a replayed jti refused, and every forgery
or malformed request refused with problem+json, changing nothing."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import time
from contextlib import closing
from typing import Any
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from joserfc.jwk import ECKey

from support.api import Api, assert_problem, b64url, key_payload, new_key, private_pem, signed, store_state


# --- revocation by the certificate's own key ---------------------------------------------------------


@pytest.mark.parametrize("key_type, alg", [("ecdsa-p256", "ES256"), ("ecdsa-p384", "ES384"), ("rsa-2048", "PS256"),
                                           ("rsa-2048", "RS256")])
def test_revoke_by_key_with_the_certificates_key(api: Api, key_type: str, alg: str) -> None:
    issued, key = api.issue(new_key(key_type))
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(issued["chain"][0].encode())
    payload = key_payload(issued["serial"])
    response = api.revoke_by_key(signed(key, alg, payload, {"typ": "JWT"}))
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["reason"] == "key-compromise"
    answer = api.ocsp_status(cert, issuer)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.key_compromise
    with closing(sqlite3.connect(api.data_dir / "qtsp.db")) as db:
        requested_by = db.execute("SELECT requested_by FROM revocations").fetchone()[0]
        audited = db.execute("SELECT COUNT(*) FROM audit_events WHERE action = 'certificate.revoke' AND actor = ?",
                             (f"subscriber-key:{payload['jti']}",)).fetchone()[0]
    assert requested_by == f"subscriber-key:{payload['jti']}" and audited == 1


def test_revoke_by_key_replayed_jti_is_409_even_where_the_service_would_allow_it(api: Api) -> None:
    issued, key = api.issue()
    jti = secrets.token_urlsafe(12)
    first = signed(key, "ES256", key_payload(issued["serial"], "superseded", jti=jti))
    assert api.revoke_by_key(first).status_code == 200
    before = store_state(api.data_dir)
    assert_problem(api.revoke_by_key(first), 409)  # the very same JWS
    # same jti, new reason: the service alone would accept a change to key-compromise
    assert_problem(api.revoke_by_key(signed(key, "ES256", key_payload(issued["serial"], jti=jti))), 409)
    assert store_state(api.data_dir) == before
    # a fresh jti goes to the service, which allows the change to key-compromise once
    assert api.revoke_by_key(signed(key, "ES256", key_payload(issued["serial"]))).status_code == 200
    assert_problem(api.revoke_by_key(signed(key, "ES256", key_payload(issued["serial"]))), 409)


def _none_jws(payload: dict[str, Any]) -> str:
    return f"{b64url(json.dumps({'alg': 'none'}).encode())}.{b64url(json.dumps(payload).encode())}."


def _hs256_with_public_pem(cert_pem: str, payload: dict[str, Any]) -> str:
    public = x509.load_pem_x509_certificate(cert_pem.encode()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    signing_input = f"{b64url(json.dumps({'alg': 'HS256'}).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(hmac.new(public, signing_input.encode(), hashlib.sha256).digest())}"


REFUSALS: list[tuple[str, Callable[[dict[str, Any], Any], str], int]] = [
    ("another P-256 key", lambda i, k: signed(new_key(), "ES256", key_payload(i["serial"])), 403),
    ("another P-384 key, ES384", lambda i, k: signed(new_key("ecdsa-p384"), "ES384", key_payload(i["serial"])), 403),
    ("another RSA key", lambda i, k: signed(new_key("rsa"), "RS256", key_payload(i["serial"])), 403),
    ("alg none", lambda i, k: _none_jws(key_payload(i["serial"])), 400),
    ("HS256 with the public key PEM", lambda i, k: _hs256_with_public_pem(i["certificate"], key_payload(i["serial"])), 400),
    ("stale iat", lambda i, k: signed(k, "ES256", key_payload(i["serial"], iat=int(time.time()) - 301)), 403),
    ("future iat", lambda i, k: signed(k, "ES256", key_payload(i["serial"], iat=int(time.time()) + 3600)), 403),
    ("huge iat", lambda i, k: signed(k, "ES256", key_payload(i["serial"], iat=10**400)), 403),
    ("boolean iat", lambda i, k: signed(k, "ES256", {**key_payload(i["serial"]), "iat": True}), 400),
    ("jwk header", lambda i, k: signed(k, "ES256", key_payload(i["serial"]),
                                       {"jwk": ECKey.import_key(private_pem(k)).as_dict(private=False)}), 400),
    ("unknown reason", lambda i, k: signed(k, "ES256", key_payload(i["serial"], "certificate-hold")), 400),
    ("extra payload field", lambda i, k: signed(k, "ES256", {**key_payload(i["serial"]), "admin": True}), 400),
    ("missing jti", lambda i, k: signed(k, "ES256", {kk: v for kk, v in key_payload(i["serial"]).items() if kk != "jti"}), 400),
    ("short jti", lambda i, k: signed(k, "ES256", key_payload(i["serial"], jti="abc")), 400),
    ("unknown serial", lambda i, k: signed(k, "ES256", key_payload("0123456789ABCDEF")), 404),
    ("malformed serial", lambda i, k: signed(k, "ES256", key_payload("not hex")), 400),
    ("tampered payload", lambda i, k: (lambda p: ".".join([p[0], b64url(json.dumps(key_payload(i["serial"])).encode()), p[2]]))(
        signed(k, "ES256", key_payload(i["serial"])).split(".")), 403),
    ("not a JWS", lambda i, k: "hello", 400),
    ("JSON serialisation", lambda i, k: json.dumps({"payload": "e30", "signatures": []}), 400),
]


@pytest.mark.parametrize("why, make, expected", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_revoke_by_key_refusals_change_nothing(api: Api, why: str, make: Callable[[dict[str, Any], Any], str],
                                               expected: int) -> None:
    issued, key = api.issue()
    before = store_state(api.data_dir)
    assert_problem(api.revoke_by_key(make(issued, key)), expected)
    assert store_state(api.data_dir) == before


def test_revoke_by_key_needs_application_jose(api: Api) -> None:
    issued, key = api.issue()
    jws_text = signed(key, "ES256", key_payload(issued["serial"]))
    before = store_state(api.data_dir)
    for content_type in ("application/json", "text/plain", "application/jose+json"):
        assert_problem(api.revoke_by_key(jws_text, content_type), 415)
    assert_problem(api.revoke_by_key(b""), 400)
    assert store_state(api.data_dir) == before
