"""NCA requests: the register feed, revocation requests, receipts, and every attack the issue names."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
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
from qtsp.services import issuance, nca_identity, register
from qtsp.services.context import Sandbox

from support.server import running_server

BE_PSP = "PSDBE-NBB-0123456789"
NL_PSP = "PSDNL-DNB-R161162"


@pytest.fixture
def ncas(sandbox: Sandbox, tmp_path: Path) -> dict[str, dict[str, bytes]]:
    creds = {}
    for nca_id, name in (("BE-NBB", "National Bank of Belgium"), ("NL-DNB", "The Netherlands Bank")):
        nca_identity.add_nca(sandbox, nca_id, name, generate=True, out=tmp_path / nca_id)
        creds[nca_id] = {"key": (tmp_path / nca_id / "key.pem").read_bytes(), "cert": (tmp_path / nca_id / "cert.pem").read_bytes()}
    register.add_psp(sandbox, org_id=NL_PSP, name="Example Payments BV", roles="PSP_AI", locality="Amsterdam",
                     registration_number="12345678")
    return creds


def _sign(creds: dict[str, dict[str, bytes]], nca_id: str, body: dict[str, Any], *, as_nca: str | None = None, **kw: Any) -> str:
    return nca_client.sign_request(as_nca or nca_id, creds[nca_id]["key"], creds[nca_id]["cert"], body, **kw)


def _post(client, path: str, compact: str | bytes, ctype: str = "application/jose"):  # type: ignore[no-untyped-def]
    return client.post(path, data=compact, content_type=ctype)


def _issue(sb: Sandbox, org: str, roles: str | None = None, kind: str = "qwac") -> x509.Certificate:
    domains = (f"{uuid.uuid4().hex[:8]}.example.com",) if kind == "qwac" else ()
    return issuance.issue(sb, issuance.IssueRequest(kind, org, domains=domains, generate_key="ecdsa-p256", roles=roles)).certificate


def _counts(data_dir: Path) -> dict[str, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("revocations", "nca_requests", "psp_authorisations", "certificates")}
    finally:
        con.close()


def _ocsp(client, sb: Sandbox, cert: x509.Certificate) -> ocsp.OCSPResponse:  # type: ignore[no-untyped-def]
    issuer_id = "qseal-ca" if cert.extensions.get_extension_for_class(x509.KeyUsage).value.content_commitment else "qwac-ca"
    issuer = x509.load_pem_x509_certificate((sb.data_dir / "ca" / f"{issuer_id}.pem").read_bytes())
    der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    return ocsp.load_der_ocsp_response(client.post("/ocsp", data=der, content_type="application/ocsp-request").data)


@pytest.fixture
def client(data_dir: Path, ncas):  # type: ignore[no-untyped-def]
    from qtsp.web import create_app

    return create_app({"data_dir": data_dir}).test_client()


def _root(sb: Sandbox) -> x509.Certificate:
    return x509.load_pem_x509_certificate((sb.data_dir / "ca" / "root.pem").read_bytes())


def test_register_feed_grant_change_roles_withdraw(sandbox: Sandbox, client, ncas) -> None:  # type: ignore[no-untyped-def]
    org = "PSDBE-NBB-777"
    grant = {"action": "grant", "org_id": org, "name": "Seven SA", "roles": ["PSP_AI", "PSP_PI"], "locality": "Brussels",
             "registration_number": "0777"}
    response = _post(client, "/nca/v1/authorisations", _sign(ncas, "BE-NBB", grant))
    assert response.status_code == 200, response.json
    assert response.json["result"]["psp"]["status"] == "active"
    both = _issue(sandbox, org)  # the register issuance checks is the one the NCA fed
    ai_only = _issue(sandbox, org, roles="PSP_AI", kind="qsealc")
    assert _post(client, "/nca/v1/authorisations", _sign(ncas, "BE-NBB", grant)).status_code == 409
    # adding a role revokes nothing
    added = _post(client, "/nca/v1/authorisations", _sign(ncas, "BE-NBB", {"action": "change-roles", "org_id": org,
                                                                           "roles": ["PSP_AI", "PSP_PI", "PSP_IC"]}))
    assert added.status_code == 200 and added.json["result"]["revoked"] == []
    # withdrawing PSP_PI revokes exactly the certificates that carry it
    changed = _post(client, "/nca/v1/authorisations", _sign(ncas, "BE-NBB", {"action": "change-roles", "org_id": org,
                                                                             "roles": ["PSP_AI", "PSP_IC"]}))
    assert [int(r["serial"], 16) for r in changed.json["result"]["revoked"]] == [both.serial_number]
    single = _ocsp(client, sandbox, both)
    assert single.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert single.revocation_reason == x509.ReasonFlags.privilege_withdrawn
    assert _ocsp(client, sandbox, ai_only).certificate_status == ocsp.OCSPCertStatus.GOOD
    # withdrawal revokes every valid certificate of the PSP under this NCA, and stops issuance
    withdrawn = _post(client, "/nca/v1/authorisations", _sign(ncas, "BE-NBB", {"action": "withdraw", "org_id": org}))
    assert withdrawn.status_code == 200 and len(withdrawn.json["result"]["revoked"]) == 1
    assert _ocsp(client, sandbox, ai_only).certificate_status == ocsp.OCSPCertStatus.REVOKED
    with pytest.raises(Exception) as err:
        _issue(sandbox, org)
    assert "withdrawn" in str(err.value)
    receipt = nca_client.verify_receipt(withdrawn.json["receipt"], _root(sandbox), request_id=withdrawn.json["result"]["request_id"],
                                        body={"action": "withdraw", "org_id": org})
    assert receipt["revoked"] == withdrawn.json["result"]["revoked"]


def test_revocation_request_receipt_evidence_get_and_crl(sandbox: Sandbox, client, ncas, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    certs = [_issue(sandbox, BE_PSP) for _ in range(3)]
    other = _issue(sandbox, NL_PSP)
    body = {"authorisation_number": "0123456789", "serials": [format(certs[0].serial_number, "x")], "reason": "privilege-withdrawn"}
    compact = _sign(ncas, "BE-NBB", body, jti="req-1")
    response = _post(client, "/nca/v1/revocation-requests", compact)
    assert response.status_code == 200, response.json
    result = response.json["result"]
    assert [int(r["serial"], 16) for r in result["revoked"]] == [certs[0].serial_number]
    nca_client.verify_receipt(response.json["receipt"], _root(sandbox), request_id="req-1", body=body)
    assert _ocsp(client, sandbox, certs[0]).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert _ocsp(client, sandbox, certs[1]).certificate_status == ocsp.OCSPCertStatus.GOOD
    # the signed request is kept verbatim, and the audit log links it
    con = sqlite3.connect(data_dir / "qtsp.db")
    assert con.execute("select jws from nca_requests where request_id = 'req-1'").fetchone()[0] == compact
    details = json.loads(con.execute("select details from audit_events where action = 'nca.revocation'").fetchone()[0])
    assert details["evidence"] == "nca_requests/BE-NBB/req-1"
    con.close()
    # GET: status and receipt again, only for the NCA that asked
    get = client.get("/nca/v1/revocation-requests/req-1",
                     headers={"Authorization": "JWS " + _sign(ncas, "BE-NBB", {"get": "req-1"})})
    assert get.status_code == 200 and get.json["receipt"] == response.json["receipt"]
    assert client.get("/nca/v1/revocation-requests/req-1",
                      headers={"Authorization": "JWS " + _sign(ncas, "NL-DNB", {"get": "req-1"})}).status_code == 404
    # the whole PSP by organizationIdentifier: the two others, not the NL PSP's certificate
    rest = _post(client, "/nca/v1/revocation-requests", _sign(ncas, "BE-NBB", {"org_id": BE_PSP, "reason": "cessation-of-operation"}))
    assert sorted(int(r["serial"], 16) for r in rest.json["result"]["revoked"]) == sorted(c.serial_number for c in certs[1:])
    assert _ocsp(client, sandbox, other).certificate_status == ocsp.OCSPCertStatus.GOOD
    crl_svc.regenerate_dirty(sandbox, utcnow() + dt.timedelta(seconds=5))
    crl = x509.load_der_x509_crl(client.get("/crl/qwac-ca.crl").data)
    assert {c.serial_number for c in certs} <= {r.serial_number for r in crl}


def test_idempotency_and_replay(sandbox: Sandbox, client, ncas, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    cert = _issue(sandbox, BE_PSP)
    body = {"org_id": BE_PSP, "reason": "privilege-withdrawn"}
    compact = _sign(ncas, "BE-NBB", body, jti="same-id")
    first = _post(client, "/nca/v1/revocation-requests", compact)
    before = _counts(data_dir)
    again = _post(client, "/nca/v1/revocation-requests", compact)  # the very same request, replayed
    assert again.status_code == 200 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json == first.json
    resent = _post(client, "/nca/v1/revocation-requests", _sign(ncas, "BE-NBB", body, jti="same-id"))  # re-signed, same body
    assert resent.status_code == 200 and resent.json["result"] == first.json["result"]
    other_body = _post(client, "/nca/v1/revocation-requests", _sign(ncas, "BE-NBB", {**body, "reason": "superseded"}, jti="same-id"))
    assert other_body.status_code == 409
    assert _counts(data_dir) == before
    assert _ocsp(client, sandbox, cert).certificate_status == ocsp.OCSPCertStatus.REVOKED


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _forge(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


def _claims(body: dict[str, Any], nca_id: str = "BE-NBB", iat: int | None = None) -> dict[str, Any]:
    return {"iss": nca_id, "jti": str(uuid.uuid4()), "iat": int(time.time()) if iat is None else iat, "body": body}


def test_attacks_get_the_right_4xx_and_change_nothing(sandbox: Sandbox, client, ncas, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    cert = _issue(sandbox, BE_PSP)
    body = {"org_id": BE_PSP, "reason": "privilege-withdrawn"}
    be_cert = x509.load_pem_x509_certificate(ncas["BE-NBB"]["cert"])
    x5c = [base64.b64encode(be_cert.public_bytes(serialization.Encoding.DER)).decode()]
    pub_pem = be_cert.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    header_hs = {"alg": "HS256", "x5c": x5c}
    claims = _claims(body)
    signing_input = f"{_b64(json.dumps(header_hs).encode())}.{_b64(json.dumps(claims).encode())}"
    hs256 = signing_input + "." + _b64(hmac.new(pub_pem, signing_input.encode(), hashlib.sha256).digest())
    valid = _sign(ncas, "BE-NBB", body)
    parts = valid.split(".")
    bad_signature = ".".join(parts[:2] + [parts[2][:-4] + ("AAAA" if parts[2][-4:] != "AAAA" else "BBBB")])
    rogue_key = ec.generate_private_key(ec.SECP256R1())
    rogue = x509.CertificateBuilder().subject_name(be_cert.subject).issuer_name(be_cert.subject) \
        .public_key(rogue_key.public_key()).serial_number(1).not_valid_before(dt.datetime(2026, 1, 1)) \
        .not_valid_after(dt.datetime(2030, 1, 1)).sign(rogue_key, hashes.SHA256())
    rogue_pem = {"key": rogue_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()),
                 "cert": rogue.public_bytes(serialization.Encoding.PEM)}
    unregistered = nca_client.sign_request("BE-NBB", rogue_pem["key"], rogue_pem["cert"], body)
    signed_garbage_json = _sign(ncas, "BE-NBB", {"a": 1})
    cases = [
        ("unsigned body", _forge({"alg": "ES256", "x5c": x5c}, _claims(body)), 401),
        ("plain JSON, not a JWS", json.dumps(body), 400),
        ("bad signature", bad_signature, 401),
        ("alg none", _forge({"alg": "none", "x5c": x5c}, _claims(body)) + "x", 401),
        ("HS256 keyed with the public key", hs256, 401),
        ("x5c not registered", unregistered, 401),
        ("NCA A claiming to be NCA B", _sign(ncas, "NL-DNB", {"org_id": NL_PSP, "reason": "superseded"}, as_nca="BE-NBB"), 403),
        ("issued-at too old", _sign(ncas, "BE-NBB", body, iat=int(time.time()) - 3600), 401),
        ("issued-at in the future", _sign(ncas, "BE-NBB", body, iat=int(time.time()) + 3600), 401),
        ("unknown body fields", signed_garbage_json, 400),
        ("unknown authorisation number", _sign(ncas, "BE-NBB", {"authorisation_number": "999", "reason": "superseded"}), 404),
        ("another NCA's PSP", _sign(ncas, "BE-NBB", {"org_id": NL_PSP, "reason": "superseded"}), 403),
        ("another NCA's certificate by serial", _sign(ncas, "NL-DNB", {"org_id": NL_PSP, "reason": "superseded",
                                                                       "serials": [format(cert.serial_number, "X")]}), 403),
        ("feed for another NCA's PSP", _sign(ncas, "NL-DNB", {"action": "withdraw", "org_id": BE_PSP}), 403),
    ]
    before = _counts(data_dir)
    for name, compact, status in cases:
        path = "/nca/v1/authorisations" if "feed" in name else "/nca/v1/revocation-requests"
        response = _post(client, path, compact)
        assert response.status_code == status, (name, response.status_code, response.data)
        assert response.content_type == "application/problem+json" and response.json["detail"], name
        assert _counts(data_dir) == before, name
    assert _post(client, "/nca/v1/revocation-requests", valid, ctype="application/json").status_code == 415
    assert _post(client, "/nca/v1/revocation-requests", "A" * 70_000).status_code == 413
    assert _post(client, "/nca/v1/revocation-requests", b"\xff\xfe garbage").status_code == 400
    assert _counts(data_dir) == before
    assert _ocsp(client, sandbox, cert).certificate_status == ocsp.OCSPCertStatus.GOOD


def test_nca_client_commands_against_the_running_service(sandbox: Sandbox, data_dir: Path, ncas, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert = _issue(sandbox, BE_PSP)
    with running_server(data_dir, workers=2) as url:
        base = [sys.executable, "-m", "cli.main", "nca"]
        common = ["--url", url, "--as", "BE-NBB", "--key", str(tmp_path / "BE-NBB" / "key.pem"),
                  "--qtsp-root", str(data_dir / "ca" / "root.pem"), "--data-dir", str(data_dir)]
        grant = subprocess.run(base + ["publish-authorisation", *common, "--action", "grant", "--org-id", "PSDBE-NBB-42",
                                       "--name", "Forty Two SA", "--roles", "PSP_PI", "--locality", "Gent",
                                       "--registration-number", "42"], capture_output=True, text=True, timeout=60)
        assert grant.returncode == 0 and "receipt verified" in grant.stdout, grant.stdout + grant.stderr
        revoke = subprocess.run(base + ["request-revocation", *common, "--authorisation", "0123456789",
                                        "--reason", "privilege-withdrawn"], capture_output=True, text=True, timeout=60)
        assert revoke.returncode == 0 and format(cert.serial_number, "X") in revoke.stdout, revoke.stdout + revoke.stderr
        listed = subprocess.run(base + ["requests", "--json", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
        rows = json.loads(listed.stdout)
        assert len(rows) == 2 and all(r["within_24h"] for r in rows)


def test_500_concurrent_revocation_requests_from_three_ncas_while_ocsp_is_queried(sandbox: Sandbox, data_dir: Path,
                                                                                   ncas, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from qtsp.services import bulk

    nca_identity.add_nca(sandbox, "DE-BAFIN", "Federal Financial Supervisory Authority", generate=True, out=tmp_path / "DE-BAFIN")
    ncas["DE-BAFIN"] = {"key": (tmp_path / "DE-BAFIN" / "key.pem").read_bytes(),
                        "cert": (tmp_path / "DE-BAFIN" / "cert.pem").read_bytes()}
    register.add_psp(sandbox, org_id="PSDDE-BAFIN-149871", name="Beispiel GmbH", roles="PSP_AI", locality="Frankfurt",
                     registration_number="HRB 1")
    psps = {"BE-NBB": BE_PSP, "NL-DNB": NL_PSP, "DE-BAFIN": "PSDDE-BAFIN-149871"}
    lines = [json.dumps({"kind": "qwac", "org_id": org, "domains": [f"n{i}-{nca.lower()}.example.com"]})
             for nca, org in psps.items() for i in range(167)]
    (tmp_path / "bulk.jsonl").write_text("\n".join(lines[:500]) + "\n")
    bulk.issue_file(sandbox, tmp_path / "bulk.jsonl", tmp_path / "bulk-out", workers=2)
    certs = [x509.load_pem_x509_certificate(p.read_bytes()) for p in (tmp_path / "bulk-out").glob("*/cert.pem")]
    assert len(certs) == 500
    by_serial = {}
    con = sqlite3.connect(data_dir / "qtsp.db")
    for serial, nca_id in con.execute("select serial, nca_id from certificates"):
        by_serial[int(serial, 16)] = nca_id
    con.close()
    issuer = x509.load_pem_x509_certificate((data_dir / "ca" / "qwac-ca.pem").read_bytes())
    requests_ = []
    for cert in certs:
        nca_id = by_serial[cert.serial_number]
        org = psps[nca_id]
        requests_.append((nca_id, cert, _sign(ncas, nca_id, {"org_id": org, "serials": [format(cert.serial_number, "X")],
                                                             "reason": "privilege-withdrawn"})))
    with running_server(data_dir, workers=2) as url:
        stop = time.monotonic() + 120
        ocsp_answers = {"n": 0}

        def poll_ocsp() -> None:
            der = ocsp.OCSPRequestBuilder().add_certificate(certs[0], issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
            while ocsp_answers["n"] < 300 and time.monotonic() < stop:
                status, _ = _http_post(url + "/ocsp", der, "application/ocsp-request")
                assert status == 200
                ocsp_answers["n"] += 1

        def send(item):  # type: ignore[no-untyped-def]
            nca_id, cert, compact = item
            status, answer = nca_client.send(url, "/nca/v1/revocation-requests", compact)
            return nca_id, cert, status, answer

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=17) as pool:
            poller = pool.submit(poll_ocsp)
            results = list(pool.map(send, requests_))
            poller.result(timeout=120)
        elapsed = time.monotonic() - started
        acknowledged = [(n, c, a) for n, c, s, a in results if s == 200]
        assert len(acknowledged) == 500, {s for _, _, s, _ in results}
        for nca_id, cert, answer in acknowledged:
            assert [int(r["serial"], 16) for r in answer["result"]["revoked"]] == [cert.serial_number]
            assert answer["result"]["nca_id"] == nca_id == by_serial[cert.serial_number]
        # every acknowledged revocation is visible in OCSP now, and in the next CRL
        for _, cert, _ in acknowledged[::10]:
            der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
            assert ocsp.load_der_ocsp_response(_http_post(url + "/ocsp", der, "application/ocsp-request")[1]).certificate_status \
                == ocsp.OCSPCertStatus.REVOKED
        crl_svc.regenerate_dirty(sandbox, utcnow() + dt.timedelta(seconds=5))
        crl = x509.load_der_x509_crl(_http_get(url + "/crl/qwac-ca.crl"))
        assert {c.serial_number for _, c, _ in acknowledged} <= {r.serial_number for r in crl}
        assert ocsp_answers["n"] > 0
    con = sqlite3.connect(data_dir / "qtsp.db")
    assert con.execute("select count(*) from revocations").fetchone()[0] == 500  # none lost, none twice
    assert con.execute("select count(*) from nca_requests").fetchone()[0] == 500
    latencies = sorted(r[0] for r in con.execute(
        "select (julianday(published_at) - julianday(received_at)) * 86400 from nca_requests"))
    print(f"\n500 NCA revocation requests from 3 NCAs, 16 client threads + OCSP polling, 2 workers: {elapsed:.1f} s "
          f"({500 / elapsed:.0f}/s); receipt-to-publication median {1000 * latencies[250]:.0f} ms, "
          f"max {1000 * latencies[-1]:.0f} ms; {ocsp_answers['n']} OCSP answers meanwhile")
    # no request of one NCA touched another's PSPs
    rows = con.execute("select r.requested_by, c.nca_id from revocations r join certificates c on c.id = r.certificate_id").fetchall()
    assert all(actor == f"nca:{nca_id}" for actor, nca_id in rows)
    con.close()


def _http_post(url: str, data: bytes, ctype: str) -> tuple[int, bytes]:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, data=data, headers={"Content-Type": ctype}), timeout=30) as response:
        return response.status, response.read()


def _http_get(url: str) -> bytes:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.read()


def test_openapi_documents_the_nca_api(client) -> None:  # type: ignore[no-untyped-def]
    doc = client.get("/api/v1/openapi.json").json
    nca_paths = {(item["servers"][0]["url"] + path, method)
                 for path, item in doc["paths"].items() if "servers" in item for method in item if method != "servers"}
    routes = {(rule.rule.replace("<request_id>", "{request_id}"), method.lower())
              for rule in client.application.url_map.iter_rules() if rule.endpoint.startswith("nca.")
              for method in rule.methods - {"HEAD", "OPTIONS"}}
    assert nca_paths == routes


def test_register_an_nca_by_its_own_certificate(sandbox: Sandbox, tmp_path: Path) -> None:
    from qtsp.core.errors import QTSPError

    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "FR"), x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "ACPR")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7) \
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30)).sign(key, hashes.SHA384())
    pem = cert.public_bytes(serialization.Encoding.PEM)
    view, _ = nca_identity.add_nca(sandbox, "FR-ACPR", "Autorite de Controle Prudentiel et de Resolution", cert_pem=pem)
    assert view.credentials == [hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()]
    with pytest.raises(QTSPError):
        nca_identity.add_nca(sandbox, "FR-ACPR", "Autorite de Controle Prudentiel et de Resolution", cert_pem=pem)  # twice
    with pytest.raises(QTSPError):
        nca_identity.add_nca(sandbox, "FR_ACPR", "x", cert_pem=pem)  # malformed id
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    compact = nca_client.sign_request("FR-ACPR", key_pem, pem, {"org_id": "PSDFR-ACPR-1", "reason": "superseded"})
    from qtsp.core.errors import Kind
    from qtsp.services import nca as nca_svc

    with pytest.raises(QTSPError) as err:  # authenticated with ES384, then: no such PSP
        nca_svc.handle(sandbox, "revocation", compact)
    assert err.value.kind is Kind.NOT_FOUND
