"""NCA requests through the NCA API in process (Flask's test client): the register feed, revocation
requests, receipts, idempotency, and every attack the issue names. (The ``qtsp nca`` client against a
running service and 500 concurrent requests: tests/system/web/test_nca.py.)"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from qtsp.clock import utcnow
from qtsp.relying_party import nca_client
from qtsp.services import crl as crl_svc
from qtsp.services.context import Sandbox


from support.nca import BASE, BE_PSP, NL_PSP, issue_cert, nca_counts, ocsp_status, root_cert, sign


def _post(client, path: str, compact: str | bytes, ctype: str = "application/jose"):  # type: ignore[no-untyped-def]
    return client.post(path, data=compact, content_type=ctype)


@pytest.fixture
def client(data_dir: Path, ncas):  # type: ignore[no-untyped-def]
    from qtsp.web import create_app

    return create_app({"data_dir": data_dir}).test_client()


def test_register_feed_grant_change_roles_withdraw(sandbox: Sandbox, client, ncas) -> None:  # type: ignore[no-untyped-def]
    org = "PSDBE-NBB-777"
    grant = {"action": "grant", "org_id": org, "name": "Seven SA", "roles": ["PSP_AI", "PSP_PI"], "locality": "Brussels",
             "registration_number": "0777"}
    response = _post(client, "/nca/v1/authorisations", sign(ncas, "BE-NBB", grant))
    assert response.status_code == 200, response.json
    assert response.json["result"]["psp"]["status"] == "active"
    both = issue_cert(sandbox, org)  # the register issuance checks is the one the NCA fed
    ai_only = issue_cert(sandbox, org, roles="PSP_AI", kind="qsealc")
    assert _post(client, "/nca/v1/authorisations", sign(ncas, "BE-NBB", grant)).status_code == 409
    # adding a role revokes nothing
    added = _post(client, "/nca/v1/authorisations", sign(ncas, "BE-NBB", {"action": "change-roles", "org_id": org,
                                                                           "roles": ["PSP_AI", "PSP_PI", "PSP_IC"]}))
    assert added.status_code == 200 and added.json["result"]["revoked"] == []
    # withdrawing PSP_PI revokes exactly the certificates that carry it
    changed = _post(client, "/nca/v1/authorisations", sign(ncas, "BE-NBB", {"action": "change-roles", "org_id": org,
                                                                             "roles": ["PSP_AI", "PSP_IC"]}))
    assert [int(r["serial"], 16) for r in changed.json["result"]["revoked"]] == [both.serial_number]
    single = ocsp_status(client, sandbox, both)
    assert single.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert single.revocation_reason == x509.ReasonFlags.privilege_withdrawn
    assert ocsp_status(client, sandbox, ai_only).certificate_status == ocsp.OCSPCertStatus.GOOD
    # withdrawal revokes every valid certificate of the PSP under this NCA, and stops issuance
    withdrawn = _post(client, "/nca/v1/authorisations", sign(ncas, "BE-NBB", {"action": "withdraw", "org_id": org}))
    assert withdrawn.status_code == 200 and len(withdrawn.json["result"]["revoked"]) == 1
    assert ocsp_status(client, sandbox, ai_only).certificate_status == ocsp.OCSPCertStatus.REVOKED
    with pytest.raises(Exception) as err:
        issue_cert(sandbox, org)
    assert "withdrawn" in str(err.value)
    receipt = nca_client.verify_receipt(withdrawn.json["receipt"], root_cert(sandbox), request_id=withdrawn.json["result"]["request_id"],
                                        body={"action": "withdraw", "org_id": org})
    assert receipt["revoked"] == withdrawn.json["result"]["revoked"]


def test_revocation_request_receipt_evidence_get_and_crl(sandbox: Sandbox, client, ncas, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    certs = [issue_cert(sandbox, BE_PSP) for _ in range(3)]
    other = issue_cert(sandbox, NL_PSP)
    body = {"authorisation_number": "0123456789", "serials": [format(certs[0].serial_number, "x")], "reason": "privilege-withdrawn"}
    compact = sign(ncas, "BE-NBB", body, jti="req-1")
    response = _post(client, "/nca/v1/revocation-requests", compact)
    assert response.status_code == 200, response.json
    result = response.json["result"]
    assert [int(r["serial"], 16) for r in result["revoked"]] == [certs[0].serial_number]
    nca_client.verify_receipt(response.json["receipt"], root_cert(sandbox), request_id="req-1", body=body)
    assert ocsp_status(client, sandbox, certs[0]).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert ocsp_status(client, sandbox, certs[1]).certificate_status == ocsp.OCSPCertStatus.GOOD
    # the signed request is kept verbatim, and the audit log links it
    con = sqlite3.connect(data_dir / "qtsp.db")
    assert con.execute("select jws from nca_requests where request_id = 'req-1'").fetchone()[0] == compact
    details = json.loads(con.execute("select details from audit_events where action = 'nca.revocation'").fetchone()[0])
    assert details["evidence"] == "nca_requests/BE-NBB/req-1"
    con.close()
    # GET: status and receipt again, only for the NCA that asked
    get = client.get("/nca/v1/revocation-requests/req-1",
                     headers={"Authorization": "JWS " + sign(ncas, "BE-NBB", {"get": "req-1"})})
    assert get.status_code == 200 and get.json["receipt"] == response.json["receipt"]
    assert client.get("/nca/v1/revocation-requests/req-1",
                      headers={"Authorization": "JWS " + sign(ncas, "NL-DNB", {"get": "req-1"})}).status_code == 404
    # the whole PSP by organizationIdentifier: the two others, not the NL PSP's certificate
    rest = _post(client, "/nca/v1/revocation-requests", sign(ncas, "BE-NBB", {"org_id": BE_PSP, "reason": "cessation-of-operation"}))
    assert sorted(int(r["serial"], 16) for r in rest.json["result"]["revoked"]) == sorted(c.serial_number for c in certs[1:])
    assert ocsp_status(client, sandbox, other).certificate_status == ocsp.OCSPCertStatus.GOOD
    crl_svc.regenerate_dirty(sandbox, utcnow() + dt.timedelta(seconds=5))
    crl = x509.load_der_x509_crl(client.get("/crl/qwac-ca.crl").data)
    assert {c.serial_number for c in certs} <= {r.serial_number for r in crl}


def test_idempotency_and_replay(sandbox: Sandbox, client, ncas, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    cert = issue_cert(sandbox, BE_PSP)
    body = {"org_id": BE_PSP, "reason": "privilege-withdrawn"}
    compact = sign(ncas, "BE-NBB", body, jti="same-id")
    first = _post(client, "/nca/v1/revocation-requests", compact)
    before = nca_counts(data_dir)
    again = _post(client, "/nca/v1/revocation-requests", compact)  # the very same request, replayed
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json
    resent = _post(client, "/nca/v1/revocation-requests", sign(ncas, "BE-NBB", body, jti="same-id"))  # re-signed, same body
    assert resent.status_code == 200 and resent.json["result"] == first.json["result"]
    other_body = _post(client, "/nca/v1/revocation-requests", sign(ncas, "BE-NBB", {**body, "reason": "superseded"}, jti="same-id"))
    assert other_body.status_code == 409
    assert nca_counts(data_dir) == before
    assert ocsp_status(client, sandbox, cert).certificate_status == ocsp.OCSPCertStatus.REVOKED


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


def _claims(body: dict[str, Any], nca_id: str = "BE-NBB", iat: int | None = None) -> dict[str, Any]:
    return {"iss": nca_id, "jti": str(uuid.uuid4()), "iat": int(time.time()) if iat is None else iat,
            "aud": BASE + "/nca/v1/revocation-requests", "body": body}


def test_attacks_get_the_right_4xx_and_change_nothing(sandbox: Sandbox, client, ncas, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    cert = issue_cert(sandbox, BE_PSP)
    body = {"org_id": BE_PSP, "reason": "privilege-withdrawn"}
    be_cert = x509.load_pem_x509_certificate(ncas["BE-NBB"]["cert"])
    x5c = [base64.b64encode(be_cert.public_bytes(serialization.Encoding.DER)).decode()]
    pub_pem = be_cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header_hs = {"alg": "HS256", "x5c": x5c}
    claims = _claims(body)
    signing_input = f"{_b64(json.dumps(header_hs).encode())}.{_b64(json.dumps(claims).encode())}"
    hs256 = signing_input + "." + _b64(hmac.new(pub_pem, signing_input.encode(), hashlib.sha256).digest())
    valid = sign(ncas, "BE-NBB", body)
    parts = valid.split(".")
    bad_signature = ".".join(parts[:2] + [parts[2][:-4] + ("AAAA" if parts[2][-4:] != "AAAA" else "BBBB")])
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = x509.CertificateBuilder().subject_name(be_cert.subject).issuer_name(be_cert.subject) \
        .public_key(rogue_key.public_key()).serial_number(1).not_valid_before(dt.datetime(2026, 1, 1)) \
        .not_valid_after(dt.datetime(2030, 1, 1)).sign(rogue_key, hashes.SHA256())
    rogue_pem = {"key": rogue_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()),
                 "cert": rogue.public_bytes(serialization.Encoding.PEM)}
    unregistered = nca_client.sign_request("BE-NBB", rogue_pem["key"], rogue_pem["cert"], body,
                                           aud=BASE + "/nca/v1/revocation-requests")
    signed_garbage_json = sign(ncas, "BE-NBB", {"a": 1})
    cases = [
        ("unsigned body", _forge({"alg": "ES256", "x5c": x5c}, _claims(body)), 401),
        ("plain JSON, not a JWS", json.dumps(body), 400),
        ("bad signature", bad_signature, 401),
        ("alg none", _forge({"alg": "none", "x5c": x5c}, _claims(body)) + "x", 401),
        ("HS256 keyed with the public key", hs256, 401),
        ("x5c not registered", unregistered, 401),
        ("NCA A claiming to be NCA B", sign(ncas, "NL-DNB", {"org_id": NL_PSP, "reason": "superseded"}, as_nca="BE-NBB"), 403),
        ("issued-at too old", sign(ncas, "BE-NBB", body, iat=int(time.time()) - 3600), 401),
        ("issued-at in the future", sign(ncas, "BE-NBB", body, iat=int(time.time()) + 3600), 401),
        ("unknown body fields", signed_garbage_json, 400),
        ("unknown authorisation number", sign(ncas, "BE-NBB", {"authorisation_number": "999", "reason": "superseded"}), 404),
        ("another NCA's PSP", sign(ncas, "BE-NBB", {"org_id": NL_PSP, "reason": "superseded"}), 403),
        ("another NCA's certificate by serial", sign(ncas, "NL-DNB", {"org_id": NL_PSP, "reason": "superseded",
                                                                       "serials": [format(cert.serial_number, "X")]}), 404),
        ("feed for another NCA's PSP", sign(ncas, "NL-DNB", {"action": "withdraw", "org_id": BE_PSP}), 403),
    ]
    before = nca_counts(data_dir)
    for name, compact, status in cases:
        path = "/nca/v1/authorisations" if "feed" in name else "/nca/v1/revocation-requests"
        response = _post(client, path, compact)
        assert response.status_code == status, (name, response.status_code, response.data)
        assert response.content_type == "application/problem+json" and response.json["detail"], name
        assert nca_counts(data_dir) == before, name
    assert _post(client, "/nca/v1/revocation-requests", valid, ctype="application/json").status_code == 415
    assert _post(client, "/nca/v1/revocation-requests", "A" * 70_000).status_code == 413
    assert _post(client, "/nca/v1/revocation-requests", b"\xff\xfe garbage").status_code == 400
    assert nca_counts(data_dir) == before
    assert ocsp_status(client, sandbox, cert).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_openapi_documents_the_nca_api(client) -> None:  # type: ignore[no-untyped-def]
    doc = client.get("/api/v1/openapi.json").json
    nca_paths = {(item["servers"][0]["url"] + path, method)
                 for path, item in doc["paths"].items() if "servers" in item for method in item if method != "servers"}
    routes = {(rule.rule.replace("<request_id>", "{request_id}"), method.lower())
              for rule in client.application.url_map.iter_rules() if rule.endpoint.startswith("nca.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert nca_paths == routes
