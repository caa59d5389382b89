"""The REST API under /api/v1, through Flask's test client: tokens and roles, issuance from a
CSR, search, revocation (by an operator and by the certificate's own key), the OpenAPI document,
and bad input that is refused with problem+json and changes nothing."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import sqlite3
import string
import subprocess
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from joserfc import jws
from joserfc.jwk import ECKey, RSAKey
from prometheus_client import REGISTRY

from cli.commands_tokens import tokens as tokens_group
from qtsp.core.errors import Kind, QTSPError
from qtsp.services import tokens
from qtsp.services.context import Sandbox
from qtsp.services.revocation import REASON_CHOICES
from qtsp.web import create_app
from qtsp.web.api import ACCESS, PUBLIC

SAMPLE_ORG = "PSDBE-NBB-0123456789"  # registered by conftest with PSP_AI,PSP_PI
DOMAIN = "api.example-fintech.eu"
PREFIX = "/api/v1"
PROBLEM = "application/problem+json"
TABLES = ("certificates", "revocations", "audit_events", "api_tokens", "ocsp_responses", "issuance_intents")


# --- helpers --------------------------------------------------------------------------------


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


@pytest.fixture
def api(sandbox: Sandbox, data_dir: Path) -> Api:
    _, operator = tokens.create(sandbox, "ops", "operator", actor="test")
    _, auditor = tokens.create(sandbox, "audit", "auditor", actor="test")
    app = create_app({"data_dir": data_dir})
    return Api(app, app.test_client(), data_dir, sandbox, operator, auditor)


def signed(key: Any, alg: str, payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    jose_key = (ECKey if isinstance(key, ec.EllipticCurvePrivateKey) else RSAKey).import_key(private_pem(key))
    return jws.serialize_compact({"alg": alg, **(header or {})}, json.dumps(payload).encode(), jose_key, algorithms=[alg])


def key_payload(serial: str, reason: str = "key-compromise", *, iat: int | None = None, jti: str | None = None) -> dict[str, Any]:
    return {"serial": serial, "reason": reason, "iat": int(time.time()) if iat is None else iat,
            "jti": jti or secrets.token_urlsafe(16)}


# --- tokens -----------------------------------------------------------------------------------


def test_token_secret_is_returned_once_and_only_its_hash_is_kept(sandbox: Sandbox, data_dir: Path) -> None:
    token_id, secret = tokens.create(sandbox, "ci pipeline", "auditor")
    assert secret.startswith("qtsp_") and len(base64.urlsafe_b64decode(secret[5:] + "=")) == 32
    assert tokens.authenticate(sandbox, secret) == (token_id, "ci pipeline", "auditor")
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        (stored,) = db.execute("SELECT token_hash FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        everything = "\n".join(str(row) for table in ("api_tokens", "audit_events")
                               for row in db.execute(f"SELECT * FROM {table}"))
        actions = [r[0] for r in db.execute("SELECT action FROM audit_events WHERE subject = ?", (f"token:{token_id}",))]
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in everything and secret[5:] not in everything
    assert actions == ["api_token.create"]
    assert [t.name for t in tokens.list_tokens(sandbox)] == ["ci pipeline"]

    tokens.revoke_token(sandbox, token_id)
    with pytest.raises(QTSPError) as refused:
        tokens.authenticate(sandbox, secret)
    assert refused.value.kind is Kind.UNAUTHORISED
    with pytest.raises(QTSPError) as again:
        tokens.revoke_token(sandbox, token_id)
    assert again.value.kind is Kind.ALREADY_REVOKED
    with pytest.raises(QTSPError) as missing:
        tokens.revoke_token(sandbox, token_id + 100)
    assert missing.value.kind is Kind.NOT_FOUND


@pytest.mark.parametrize("name, role", [("x", "admin"), ("", "operator"), ("a" * 65, "operator"), ("bad\nname", "auditor")])
def test_token_create_refuses_bad_name_or_role(sandbox: Sandbox, data_dir: Path, name: str, role: str) -> None:
    before = store_state(data_dir)
    with pytest.raises(QTSPError) as refused:
        tokens.create(sandbox, name, role)
    assert refused.value.kind is Kind.MALFORMED
    assert store_state(data_dir) == before


@pytest.mark.parametrize("secret", ["", "qtsp_", "qtsp_" + "A" * 42, "qtsp_" + "A" * 44, "Bearer x", "qtsp_" + "é" * 43])
def test_token_authenticate_refuses_malformed_secrets(sandbox: Sandbox, secret: str) -> None:
    with pytest.raises(QTSPError) as refused:
        tokens.authenticate(sandbox, secret)
    assert refused.value.kind is Kind.UNAUTHORISED


def test_tokens_cli_create_list_revoke(data_dir: Path, sandbox: Sandbox) -> None:
    runner = CliRunner()
    created = runner.invoke(tokens_group, ["create", "--name", "ops", "--role", "operator", "--json",
                                           "--data-dir", str(data_dir)], catch_exceptions=False)
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert data["role"] == "operator" and tokens.authenticate(sandbox, data["token"])[0] == data["id"]
    text = runner.invoke(tokens_group, ["create", "--name", "reader", "--role", "auditor", "--data-dir", str(data_dir)])
    assert text.exit_code == 0 and "qtsp_" in text.stdout and "only time" in text.stdout

    listed = runner.invoke(tokens_group, ["list", "--json", "--data-dir", str(data_dir)])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["revoked_at"]) for r in rows] == [("ops", "operator", None), ("reader", "auditor", None)]
    assert "qtsp_" not in listed.stdout and "hash" not in listed.stdout

    revoked = runner.invoke(tokens_group, ["revoke", str(data["id"]), "--data-dir", str(data_dir)])
    assert revoked.exit_code == 0 and f"revoked token {data['id']}" in revoked.stdout
    again = runner.invoke(tokens_group, ["revoke", str(data["id"]), "--data-dir", str(data_dir)])
    assert again.exit_code == 5 and again.stderr.startswith("error: ")
    bad_role = runner.invoke(tokens_group, ["create", "--name", "x", "--role", "root", "--data-dir", str(data_dir)])
    assert bad_role.exit_code == 2


# --- authentication and roles -------------------------------------------------------------------

WRONG = "qtsp_" + "A" * 43  # well formed, never issued
# (operation, caller, expected status); operations are defined in _operation below.
AUTH_MATRIX = [
    (op, caller, expected)
    for op, expected_by_caller in {
        "issue": {"operator": 201, "auditor": 403},
        "list": {"operator": 200, "auditor": 200},
        "get": {"operator": 200, "auditor": 200},
        "revoke": {"operator": 200, "auditor": 403},
    }.items()
    for caller, expected in [(None, 401), (WRONG, 401), ("Basic b3BzOm9wcw==", 401), ("revoked", 401),
                             *expected_by_caller.items()]
]


def _operation(api: Api, op: str, serial: str) -> tuple[str, str, dict[str, Any] | None]:
    return {
        "issue": ("POST", f"{PREFIX}/certificates",
                  {"kind": "qsealc", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key())}),
        "list": ("GET", f"{PREFIX}/certificates?limit=5", None),
        "get": ("GET", f"{PREFIX}/certificates/{serial}", None),
        "revoke": ("POST", f"{PREFIX}/certificates/{serial}/revoke", {"reason": "superseded"}),
    }[op]


@pytest.mark.parametrize("op, caller, expected", AUTH_MATRIX, ids=[f"{o}-{str(c)[:8]}-{e}" for o, c, e in AUTH_MATRIX])
def test_auth_matrix(api: Api, op: str, caller: str | None, expected: int) -> None:
    issued, _ = api.issue()
    if caller == "revoked":
        token_id, secret = tokens.create(api.sandbox, "short-lived", "operator")
        tokens.revoke_token(api.sandbox, token_id)
        headers = {"Authorization": f"Bearer {secret}"}
    elif caller is not None and caller.startswith("Basic"):
        headers = {"Authorization": caller}
    else:
        headers = api.headers(caller)
    method, url, body = _operation(api, op, issued["serial"])
    before = store_state(api.data_dir)
    response = api.client.open(url, method=method, json=body, headers=headers)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert_problem(response, expected)
        assert store_state(api.data_dir) == before
        challenge = response.headers.get("WWW-Authenticate", "")
        assert challenge.startswith('Bearer realm="qtsp-api"')
        if caller not in (None,) and expected == 401 and not str(caller).startswith("Basic"):
            assert 'error="invalid_token"' in challenge
        if expected == 403:
            assert 'error="insufficient_scope"' in challenge


def test_public_endpoints_need_no_token_and_unknown_api_paths_do(api: Api) -> None:
    assert api.client.get(f"{PREFIX}/openapi.json").status_code == 200
    assert_problem(api.client.get(f"{PREFIX}/no-such-thing"), 401)
    assert_problem(api.client.get(f"{PREFIX}/no-such-thing", headers=api.headers("auditor")), 404)
    assert_problem(api.client.delete(f"{PREFIX}/certificates", headers=api.headers("operator")), 405)
    assert_problem(api.client.get(f"{PREFIX}/revoke-by-key"), 401)  # wrong method: not the public endpoint


def test_default_deny_for_endpoints_missing_from_the_access_table(api: Api) -> None:
    app = create_app({"data_dir": api.data_dir})
    app.add_url_rule(f"{PREFIX}/forgotten", endpoint="api.forgotten", view_func=lambda: "secret")
    app.add_url_rule(f"{PREFIX}/elsewhere", endpoint="other.elsewhere", view_func=lambda: "secret")
    client = app.test_client()
    for path in ("/forgotten", "/elsewhere"):
        assert_problem(client.get(PREFIX + path), 401)
        assert_problem(client.get(PREFIX + path, headers=api.headers("operator")), 403)
        assert_problem(client.get(PREFIX + path, headers=api.headers("auditor")), 403)


def test_access_table_covers_every_api_route(api: Api) -> None:
    endpoints = {r.endpoint for r in api.app.url_map.iter_rules() if r.endpoint.startswith("api.")}
    assert endpoints == set(ACCESS)
    assert {e for e, p in ACCESS.items() if p == PUBLIC} == {"api.revoke_by_key", "api.openapi"}


def test_metrics_count_api_responses(api: Api) -> None:
    def sample(endpoint: str, status: str) -> float:
        return REGISTRY.get_sample_value("qtsp_http_requests_total", {"endpoint": endpoint, "outcome": status}) or 0.0

    before = (sample("api.list_certificates", "200"), sample("api.list_certificates", "401"),
              sample("api.list_certificates", "400"))
    api.client.get(f"{PREFIX}/certificates", headers=api.headers("auditor"))
    api.client.get(f"{PREFIX}/certificates")
    api.client.get(f"{PREFIX}/certificates?limit=0", headers=api.headers("auditor"))
    after = (sample("api.list_certificates", "200"), sample("api.list_certificates", "401"),
             sample("api.list_certificates", "400"))
    assert [a - b for a, b in zip(after, before)] == [1, 1, 1]


# --- issuance, lookup, search -----------------------------------------------------------------------


def test_issue_qwac_from_csr_verifies_with_openssl(api: Api, tmp_path: Path) -> None:
    key = new_key()
    issued, _ = api.issue(key, roles="PSP_AI")
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert issued["serial"] == format(cert.serial_number, "X").zfill(len(issued["serial"]))
    assert issued["issuer"] == "qwac-ca" and len(issued["chain"]) == 2
    assert cert.public_key().public_numbers() == key.public_key().public_numbers()
    assert cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == [DOMAIN]
    assert issued["not_before"] == cert.not_valid_before_utc.isoformat()

    leaf = tmp_path / "leaf.pem"
    leaf.write_text(issued["certificate"])
    ca = api.data_dir / "ca"
    verify = subprocess.run(["openssl", "verify", "-CAfile", str(ca / "root.pem"), "-untrusted", str(ca / "qwac-ca.pem"),
                             str(leaf)], capture_output=True, text=True, check=False)
    assert verify.returncode == 0 and verify.stdout.strip().endswith(": OK"), verify.stdout + verify.stderr
    chain = tmp_path / "chain.pem"
    chain.write_text(issued["chain"][0])
    again = subprocess.run(["openssl", "verify", "-CAfile", str(ca / "root.pem"), "-untrusted", str(chain), str(leaf)],
                           capture_output=True, text=True, check=False)
    assert again.returncode == 0, again.stdout + again.stderr

    client = api.client
    location = client.post(f"{PREFIX}/certificates", headers=api.headers("operator"),
                           json={"kind": "qwac", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key()), "domains": [DOMAIN]}
                           ).headers["Location"]
    assert location.startswith(f"{PREFIX}/certificates/")
    shown = client.get(location, headers=api.headers("auditor")).get_json()
    assert shown["status"] == "good" and shown["certificate"].startswith("-----BEGIN CERTIFICATE-----")
    # the serial is found however openssl-style it is written
    lower = client.get(f"{PREFIX}/certificates/0x{issued['serial'].lower()}", headers=api.headers("auditor"))
    assert lower.get_json()["serial"] == issued["serial"] and lower.get_json()["roles"] == ["PSP_AI"]

    with closing(sqlite3.connect(api.data_dir / "qtsp.db")) as db:
        actor = db.execute("SELECT actor FROM audit_events WHERE action = 'certificate.issue' AND subject = ?",
                           (issued["serial"],)).fetchone()[0]
    assert actor.startswith("api-token:") and actor.endswith(":ops")


def test_issue_qsealc_and_search(api: Api) -> None:
    qwac, _ = api.issue()
    seal, _ = api.issue(kind="qsealc", qscd=True)
    client, reader = api.client, api.headers("auditor")

    def serials(query: str) -> list[str]:
        response = client.get(f"{PREFIX}/certificates{query}", headers=reader)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [c["serial"] for c in response.get_json()["certificates"]]

    assert serials("") == [seal["serial"], qwac["serial"]]
    assert serials("?profile=qwac") == [qwac["serial"]]
    assert serials(f"?org_id={SAMPLE_ORG}&limit=1") == [seal["serial"]]
    assert serials("?limit=1&offset=1") == [qwac["serial"]]
    assert serials("?org_id=PSDBE-NBB-9999999999") == []
    assert serials("?status=revoked") == []
    client.post(f"{PREFIX}/certificates/{qwac['serial']}/revoke", json={"reason": "superseded"}, headers=api.headers("operator"))
    assert serials("?status=revoked") == [qwac["serial"]]
    assert serials("?status=good") == [seal["serial"]]
    page = client.get(f"{PREFIX}/certificates?limit=1", headers=reader).get_json()
    assert page["next_offset"] == 1 and page["certificates"][0]["profile"].startswith("qsealc")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-1", "offset=-1", "offset=99999999999",
                                   "status=expiring", "colour=red", "limit=1&limit=2", "profile=" + "p" * 65])
def test_search_refuses_bad_query(api: Api, query: str) -> None:
    assert_problem(api.client.get(f"{PREFIX}/certificates?{query}", headers=api.headers("auditor")), 400)


def test_get_certificate_unknown_and_malformed_serials(api: Api) -> None:
    reader = api.headers("auditor")
    assert_problem(api.client.get(f"{PREFIX}/certificates/0123456789ABCDEF", headers=reader), 404)
    for bad in ("zz", "x" * 41, "12 34", "0x"):
        assert_problem(api.client.get(f"{PREFIX}/certificates/{bad}", headers=reader), 400)


# --- revocation by an operator ---------------------------------------------------------------------


def test_revoke_then_ocsp_says_revoked_and_rerevoke_is_409(api: Api) -> None:
    issued, _ = api.issue()
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(issued["chain"][0].encode())
    assert api.ocsp_status(cert, issuer).certificate_status == ocsp.OCSPCertStatus.GOOD

    operator = api.headers("operator")
    url = f"{PREFIX}/certificates/{issued['serial']}/revoke"
    response = api.client.post(url, json={"reason": "superseded"}, headers=operator)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["serial"], body["reason"]) == (issued["serial"], "superseded") and body["revoked_at"]

    answer = api.ocsp_status(cert, issuer)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.superseded
    assert answer.serial_number == cert.serial_number

    before = store_state(api.data_dir)
    for reason in ("superseded", "unspecified", "cessation-of-operation"):
        assert_problem(api.client.post(url, json={"reason": reason}, headers=operator), 409)
    assert store_state(api.data_dir) == before
    # the one change allowed: to key-compromise, once
    changed = api.client.post(url, json={"reason": "key-compromise"}, headers=operator)
    assert changed.status_code == 200 and changed.get_json()["reason_changed_from"] == "superseded"
    assert api.ocsp_status(cert, issuer).revocation_reason == x509.ReasonFlags.key_compromise
    assert_problem(api.client.post(url, json={"reason": "key-compromise"}, headers=operator), 409)


def test_revoke_unknown_serial_is_404_and_changes_nothing(api: Api) -> None:
    api.issue()
    before = store_state(api.data_dir)
    operator = api.headers("operator")
    assert_problem(api.client.post(f"{PREFIX}/certificates/0123456789ABCDEF/revoke", json={"reason": "superseded"},
                                   headers=operator), 404)
    assert_problem(api.client.post(f"{PREFIX}/certificates/not-hex/revoke", json={"reason": "superseded"},
                                   headers=operator), 400)
    assert store_state(api.data_dir) == before


@pytest.mark.parametrize("body", [{}, {"reason": "because"}, {"reason": None}, {"reason": "superseded", "force": True},
                                  {"reason": "certificate-hold"}, ["superseded"]])
def test_revoke_refuses_bad_bodies(api: Api, body: Any) -> None:
    issued, _ = api.issue()
    before = store_state(api.data_dir)
    assert_problem(api.client.post(f"{PREFIX}/certificates/{issued['serial']}/revoke", json=body,
                                   headers=api.headers("operator")), 400)
    assert store_state(api.data_dir) == before


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


# --- bad input: 4xx problem+json, never 500, nothing changes -------------------------------------------

GOOD_CSR = csr_pem(ec.generate_private_key(ec.SECP256R1()))
BAD_REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("bad JSON", {"data": b'{"kind": "qwac",', "content_type": "application/json"}, 400),
    ("not UTF-8", {"data": b'{"kind": "\xff"}', "content_type": "application/json"}, 400),
    ("empty body", {"data": b"", "content_type": "application/json"}, 400),
    ("JSON array", {"json": [1, 2]}, 400),
    ("NaN", {"data": b'{"kind": "qwac", "qscd": NaN}', "content_type": "application/json"}, 400),
    ("duplicate keys", {"data": b'{"kind": "qwac", "kind": "qsealc"}', "content_type": "application/json"}, 400),
    ("deep nesting", {"data": b"[" * 100_000 + b"]" * 100_000, "content_type": "application/json"}, 400),
    ("lone surrogate", {"data": b'{"kind": "qwac", "org_id": "\\ud800", "csr": "x"}', "content_type": "application/json"}, 400),
    ("unknown field", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN],
                                "generate_key": "ecdsa-p256"}}, 400),
    ("missing csr", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "domains": [DOMAIN]}}, 400),
    ("wrong kind", {"json": {"kind": "tls", "org_id": SAMPLE_ORG, "csr": GOOD_CSR}}, 400),
    ("csr not a string", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": 7, "domains": [DOMAIN]}}, 400),
    ("qscd not a boolean", {"json": {"kind": "qsealc", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "qscd": "yes"}}, 400),
    ("browser as 1", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN], "browser": 1}}, 400),
    ("domains not strings", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [1]}}, 400),
    ("domains a string", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": DOMAIN}}, 400),
    ("bad CSR", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "domains": [DOMAIN],
                          "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}}, 400),
    ("DER CSR as text", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "domains": [DOMAIN], "csr": "MIIB"}}, 400),
    ("bad domain", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": ["not a domain"]}}, 400),
    ("IP as domain", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": ["10.0.0.1"]}}, 422),
    ("unregistered PSP", {"json": {"kind": "qwac", "org_id": "PSDBE-NBB-9999999999", "csr": GOOD_CSR,
                                   "domains": [DOMAIN]}}, 422),
    ("unauthorised role", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN],
                                    "roles": "PSP_AS"}}, 422),
    ("qscd on a QWAC", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN],
                                 "qscd": True}}, 422),
    ("domains on a QSealC", {"json": {"kind": "qsealc", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN]}}, 400),
    ("wrong content type", {"data": json.dumps({"kind": "qwac"}), "content_type": "text/plain"}, 415),
    ("form body", {"data": {"kind": "qwac"}}, 415),
    ("oversized body", {"data": b'{"csr": "' + b"A" * (300 * 1024) + b'"}', "content_type": "application/json"}, 413),
]


@pytest.mark.parametrize("why, kwargs, expected", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_issue_refuses_bad_input(api: Api, why: str, kwargs: dict[str, Any], expected: int) -> None:
    before = store_state(api.data_dir)
    response = api.client.post(f"{PREFIX}/certificates", headers=api.headers("operator"), **kwargs)
    assert_problem(response, expected)
    assert store_state(api.data_dir) == before


def test_oversized_bodies_are_413_everywhere(api: Api) -> None:
    issued, _ = api.issue()
    big = b"A" * (257 * 1024)
    before = store_state(api.data_dir)
    operator = api.headers("operator")
    assert_problem(api.client.post(f"{PREFIX}/certificates/{issued['serial']}/revoke", data=big,
                                   content_type="application/json", headers=operator), 413)
    assert_problem(api.revoke_by_key(big), 413)
    assert store_state(api.data_dir) == before


# --- the OpenAPI document ---------------------------------------------------------------------------


def test_openapi_lists_every_route(api: Api) -> None:
    response = api.client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = json.loads(response.get_data())
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": PREFIX}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {**doc["components"]["securitySchemes"]["bearerAuth"],
                                                                  "type": "http", "scheme": "bearer"}
    routes = set()
    for rule in api.app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = rule.rule[len(PREFIX):]
        for name in rule.arguments:
            path = path.replace(f"<{name}>", f"{{{name}}}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower(), rule.endpoint))
    documented = {(path, method) for path, item in doc["paths"].items() if "servers" not in item  # /nca/v1 paths
                  for method in item}
    assert {(p, m) for p, m, _ in routes} == documented
    for path, method, endpoint in routes:
        operation = doc["paths"][path][method]
        assert operation["responses"] and operation["summary"]
        assert (operation["security"] == []) == (ACCESS[endpoint] == PUBLIC), (path, method)
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "{" + parameter["name"] + "}" in path
    assert doc["components"]["schemas"]["RevokeRequest"]["properties"]["reason"]["enum"] == list(REASON_CHOICES)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref


# --- fuzzing: random bytes and JSON at every endpoint with an operator token ------------------------

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
# Plausible values, but never a complete valid request: the CSR's signature is broken and the
# reasons are near misses, so no example can legitimately issue or revoke anything.
_BROKEN_CSR = (lambda der: x509.load_der_x509_csr(der[:-1] + bytes([der[-1] ^ 1])).public_bytes(serialization.Encoding.PEM)
               .decode())(x509.load_pem_x509_csr(GOOD_CSR.encode()).public_bytes(serialization.Encoding.DER))
_field_values = st.one_of(_json_values, st.sampled_from(["qwac", "qsealc", SAMPLE_ORG, DOMAIN, "PSP_AI", "keyCompromise",
                                                         "certificate-hold", "Superseded", "remove-from-crl"]),
                          st.just(_BROKEN_CSR), st.lists(st.sampled_from([DOMAIN, "x", ""]), max_size=3))
_known_fields = ("kind", "org_id", "csr", "domains", "roles", "qscd", "browser", "reason", "serial", "iat", "jti")


def _jws_like(payloads: Any) -> st.SearchStrategy[bytes]:
    part = st.one_of(_json_values.map(lambda v: b64url(json.dumps(v).encode())), st.text(string.ascii_letters + "-_", max_size=20))
    header = st.fixed_dictionaries({"alg": st.sampled_from(["ES256", "RS256", "none", "HS256", "EdDSA", ""])},
                                   optional={"typ": st.text(max_size=5), "b64": st.booleans(), "crit": st.lists(st.text(max_size=4))}
                                   ).map(lambda h: b64url(json.dumps(h).encode()))
    return st.tuples(header | part, payloads.map(lambda v: b64url(json.dumps(v).encode())) | part, part) \
        .map(lambda t: ".".join(t).encode())


_fields = st.dictionaries(st.sampled_from(_known_fields), _field_values, max_size=6)
_bodies = {  # mostly what the endpoint expects, sometimes anything
    "json": st.one_of(_fields.map(lambda v: json.dumps(v).encode()), _fields.map(lambda v: json.dumps(v).encode()),
                      _json_values.map(lambda v: json.dumps(v).encode()), st.binary(max_size=600)),
    "jose": st.one_of(_jws_like(_fields), _jws_like(_fields), st.binary(max_size=600),
                      _json_values.map(lambda v: json.dumps(v).encode())),
}
_other_types = st.sampled_from([None, "application/json; charset=utf-8", "application/jose", "application/json",
                                "text/plain", "application/x-www-form-urlencoded", "application/octet-stream"])
_query = st.dictionaries(st.sampled_from(["org_id", "profile", "status", "limit", "offset", "kind", "issuer",
                                          "expiring_before", "cursor", "ca", "target", "x"]),
                         st.text(max_size=12) | st.integers(-5, 2000).map(str)
                         | st.sampled_from(["good", "revoked", "valid", "expired", "qwac", "qwac-ca", "ocsp", "2027-06-01",
                                            "YmVmb3JlOjU"]),  # the last: a cursor (before:5)
                         max_size=4)
_path_text = st.text(string.ascii_letters + string.digits + ":-_.~", min_size=1, max_size=50)


def test_fuzz_every_endpoint_never_500_and_never_changes_the_store(api: Api) -> None:
    issued, _ = api.issue()
    serial = issued["serial"]
    targets = []
    for rule in api.app.url_map.iter_rules():
        if rule.endpoint.startswith("api."):
            for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
                targets.append((method, rule.rule))
    assert len(targets) == 9  # the six certificate endpoints and the three of the simulator
    before = store_state(api.data_dir)
    operator = api.headers("operator")
    seen: set[tuple[str, str]] = set()

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], database=None)
    @given(target=st.sampled_from(targets), data=st.data(), query=_query,
           serial_text=st.one_of(st.just(serial), st.just(serial), _path_text),
           method_override=st.sampled_from([None, None, None, None, "GET", "POST"]))
    def run(target: tuple[str, str], data: st.DataObject, query: dict[str, str], serial_text: str,
            method_override: str | None) -> None:
        method, rule = target
        method = method_override or method
        url = rule.replace("<serial>", serial_text)
        seen.add(target)
        kwargs: dict[str, Any] = {"headers": operator, "query_string": query}
        if method == "POST":
            kind = "jose" if rule.endswith("/revoke-by-key") else "json"
            kwargs["data"] = data.draw(_bodies[kind], label="body")
            content_type = data.draw(st.one_of(st.just(f"application/{kind}"), st.just(f"application/{kind}"), _other_types),
                                     label="content_type")
            if content_type:
                kwargs["content_type"] = content_type
        response = api.client.open(url, method=method, **kwargs)
        assert response.status_code < 500, (method, url, response.status_code, response.get_data(as_text=True)[:300])
        if response.status_code >= 400:
            assert response.mimetype == PROBLEM
        assert store_state(api.data_dir) == before

    run()
    assert len(seen) >= 4  # the sampling reached most endpoints
