"""The portal's security rules through Flask's test client (fast; the browser tests are in
tests/system/web/test_portal_browser.py): CSRF, cookies, CSP, escaping, sign-in limits, who sees and
revokes what, operator-only pages, the PKCS#12 password kept nowhere."""

from __future__ import annotations

import re
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import pkcs12
from flask import Flask

from qtsp.services import portal, search, tokens
from qtsp.services.context import Sandbox
from qtsp.web import create_app
from qtsp.web.portal import security
from support import SAMPLE_ORG
from support.portal import PASSWORD, User, csrf_tokens, inline_code

XSS = "<script>alert(1)</script>"


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """New passwords hashed with scrypt N=2^14 here (the hash names its N, so they verify as any other):
    the production cost, 2^17, is half a second a hash and these tests make dozens."""
    monkeypatch.setattr(portal, "_SCRYPT_N", 2**14)


@pytest.fixture
def app(sandbox: Sandbox, data_dir: Path) -> Flask:
    for name, role in (("alice", "psp"), ("bob", "psp"), ("ops", "operator")):
        portal.create_account(sandbox, name, PASSWORD, role, actor="test")
    security.per_account._failures.clear()
    security.per_address._failures.clear()
    return create_app({"data_dir": data_dir})


def _org(user: User, name: str = "Alice Payments") -> str:
    response = user.register(name)
    assert response.status_code == 303, response.get_data(as_text=True)
    return re.search(r"org=([^&]+)", response.headers["Location"]).group(1)  # type: ignore[union-attr]


def _serial(response_headers: dict[str, str] | object) -> str:
    disposition = response_headers["Content-Disposition"]  # type: ignore[index]
    return re.search(r'filename="([0-9A-F]+)\.p12"', disposition).group(1)  # type: ignore[union-attr]


def test_every_page_has_the_csp_and_no_inline_code(app: Flask) -> None:
    user = User.of(app)
    pages = ["/portal/sign-in"]
    response = user.get("/portal/sign-in")
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    user.sign_in("ops")
    pages += ["/portal/", "/portal/downloads", "/portal/operator/", "/portal/operator/psps", "/portal/operator/service",
              "/portal/operator/nca-requests", "/portal/operator/audit"]
    alice = User.of(app)
    alice.sign_in("alice")
    org = _org(alice)
    alice_pages = ["/portal/", "/portal/organisations/new", f"/portal/request?org={org}"]
    for who, paths in ((user, pages), (alice, alice_pages)):
        for path in paths:
            page = who.get(path)
            assert page.status_code == 200, path
            assert page.headers["Content-Security-Policy"].startswith("default-src 'none'"), path
            assert page.headers["X-Frame-Options"] == "DENY" and page.headers["Cache-Control"] == "no-store", path
            assert inline_code(page.get_data(as_text=True)) == [], path


def test_the_session_cookie_is_httponly_and_samesite(app: Flask) -> None:
    cookie = User.of(app).sign_in("alice").headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # http://127.0.0.1: a browser would drop a Secure cookie
    assert "Strict-Transport-Security" not in User.of(app).get("/portal/sign-in").headers


def test_the_session_cookie_is_secure_off_loopback(public_sandbox: Sandbox) -> None:
    portal.create_account(public_sandbox, "carol", PASSWORD, "psp", actor="test")
    public = create_app({"data_dir": public_sandbox.data_dir})  # base_url http://qtsp.example.eu:8080: not loopback
    answer = User.of(public).sign_in("carol")
    cookie = answer.headers["Set-Cookie"]
    assert cookie.startswith("__Host-qtsp-portal=") and "Secure" in cookie and "Path=/;" in cookie
    assert answer.headers["Strict-Transport-Security"].startswith("max-age=")


def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(app: Flask, sandbox: Sandbox) -> None:
    alice = User.of(app)
    alice.sign_in("alice")
    response = alice.client.post("/portal/organisations/new", data={
        "legal_name": "No Token Ltd", "nca": "BE-NBB", "roles": ["PSP_AI"], "locality": "Brussels"})
    assert response.status_code == 400 and "CSRF" in response.get_data(as_text=True)
    wrong = alice.client.post("/portal/organisations/new", data={
        "csrf_token": "x" * 40, "legal_name": "No Token Ltd", "nca": "BE-NBB", "roles": ["PSP_AI"], "locality": "Brussels"})
    assert wrong.status_code == 400
    assert all(p.legal_name != "No Token Ltd" for p in portal.organisations(sandbox, portal.Principal(
        "account", 0, "x", "operator", portal.Scope())))
    # A sign-in without the token is refused too (login CSRF).
    assert User.of(app).client.post("/portal/sign-in", data={"account-username": "alice",
                                                             "account-password": PASSWORD}).status_code == 400


def test_an_attacker_chosen_organisation_name_is_text(app: Flask) -> None:
    alice = User.of(app)
    alice.sign_in("alice")
    _org(alice, XSS)
    ops = User.of(app)
    ops.sign_in("ops")
    for who, path in ((alice, "/portal/"), (ops, "/portal/operator/psps")):
        html = who.get(path).get_data(as_text=True)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and XSS not in html, path


def test_sign_in_failures_are_limited_per_account_and_address(app: Flask) -> None:
    user = User.of(app)
    for _ in range(security.MAX_FAILURES):
        assert user.sign_in("alice", "wrong password!!").status_code == 401
    refused = user.sign_in("alice")  # the right password, but too late
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Set-Cookie" not in refused.headers or "sid" not in refused.headers["Set-Cookie"]
    assert User.of(app).sign_in("bob").status_code == 303  # another account from the same address still may


def test_the_limiter_is_bounded_and_forgets_after_its_window() -> None:
    limiter = security.SlidingLimiter(limit=2, window=60, max_keys=3)
    for key in "abcde":
        limiter.failed(key, now=0)
    assert len(limiter) == 3
    limiter.failed("e", now=1)
    assert limiter.retry_after("e", now=2) == 59
    assert limiter.retry_after("e", now=61) == 0


def test_a_psp_sees_and_revokes_only_its_own_certificates(app: Flask, sandbox: Sandbox) -> None:
    alice, bob = User.of(app), User.of(app)
    alice.sign_in("alice")
    bob.sign_in("bob")
    org = _org(alice)
    issued = alice.request_generated(org)
    assert issued.status_code == 200, issued.get_data(as_text=True)[-2000:]
    serial = _serial(issued.headers)
    key, cert, chain = pkcs12.load_key_and_certificates(issued.data, b"p12-password")
    assert cert is not None and f"{cert.serial_number:X}".rjust(len(serial), "0") == serial and key is not None
    assert serial in alice.get("/portal/").get_data(as_text=True)
    # Bob: no organisation, so a scope that allows nothing (not everything), then one of his own.
    assert serial not in bob.get("/portal/").get_data(as_text=True)
    assert SAMPLE_ORG not in bob.get("/portal/").get_data(as_text=True)
    _org(bob, "Bob Pay")
    for path in (f"/portal/certificates/{serial}", f"/portal/certificates/{serial}/cert.pem"):
        assert bob.get(path).status_code == 404, path
    page = alice.get(f"/portal/certificates/{serial}").get_data(as_text=True)
    token = csrf_tokens(page)["csrf_token"]
    refused = bob.client.post(f"/portal/certificates/{serial}/revoke",
                              data={"csrf_token": csrf_tokens(bob.get("/portal/").get_data(as_text=True))["csrf_token"],
                                    "reason": "key-compromise"})
    assert refused.status_code == 404
    assert search.certificate(sandbox, serial).status == "good"
    # Bob's CSRF token is no good in Alice's session either (nor Alice's in Bob's).
    assert bob.client.post(f"/portal/certificates/{serial}/revoke", data={"csrf_token": token,
                                                                          "reason": "superseded"}).status_code == 400
    done = alice.client.post(f"/portal/certificates/{serial}/revoke", data={"csrf_token": token, "reason": "superseded"})
    assert done.status_code == 303
    assert search.certificate(sandbox, serial).status == "revoked"
    # A PSP may not request for another PSP's organisation (not offered, and refused if posted).
    forged = bob.post_form("/portal/request", None, {"org_id": org, "kind": "qsealc", "key_source": "generate",
                                                      "key_type": "ecdsa-p256", "p12_password": "p12-password"})
    assert forged.status_code == 400 and "Not a valid choice" in forged.get_data(as_text=True)


def test_operator_pages_need_the_operator_role(app: Flask, sandbox: Sandbox) -> None:
    alice = User.of(app)
    alice.sign_in("alice")
    for path in ("/portal/operator/", "/portal/operator/psps", "/portal/operator/audit"):
        assert alice.get(path).status_code == 403, path
    assert User.of(app).get("/portal/operator/").status_code == 302  # not signed in: to the sign-in page
    accounts = {a.username: a.id for a in portal.list_accounts(sandbox)}
    suspend = alice.post_form("/portal/", f"/portal/operator/accounts/{accounts['bob']}/suspend", {})
    assert suspend.status_code == 403
    _, auditor = tokens.create(sandbox, "audit", "auditor", actor="test")
    reader = User.of(app)
    assert reader.sign_in_token(auditor).status_code == 303
    assert reader.get("/portal/operator/audit").status_code == 200
    assert reader.post_form("/portal/", f"/portal/operator/accounts/{accounts['bob']}/suspend", {}).status_code == 403
    ops = User.of(app)
    ops.sign_in("ops")
    audit = ops.get("/portal/operator/audit").get_data(as_text=True)
    assert 'id="audit-verdict">verified' in audit
    bob = User.of(app)
    bob.sign_in("bob")
    assert ops.post_form("/portal/operator/psps", f"/portal/operator/accounts/{accounts['bob']}/suspend", {}).status_code == 303
    assert bob.get("/portal/").status_code == 302  # the suspended account's session is gone
    assert bob.sign_in("bob").status_code == 401


def test_a_token_scoped_to_one_psp_sees_that_psp_only(app: Flask, sandbox: Sandbox) -> None:
    from qtsp.services.access import make_scope
    from qtsp.services.issuance import IssueRequest, issue

    mine = issue(sandbox, IssueRequest("qsealc", SAMPLE_ORG, generate_key="ecdsa-p256")).serial
    _, scoped = tokens.create(sandbox, "psp", "operator", actor="test", scope=make_scope([SAMPLE_ORG]))
    _, other = tokens.create(sandbox, "other", "operator", actor="test", scope=make_scope(["PSDFR-ACPR-12345"]))
    user, outsider = User.of(app), User.of(app)
    assert user.sign_in_token(scoped).status_code == 303 and outsider.sign_in_token(other).status_code == 303
    assert mine in user.get("/portal/").get_data(as_text=True)
    assert outsider.get(f"/portal/certificates/{mine}").status_code == 404
    assert user.get("/portal/operator/").status_code == 403  # an operator token restricted to a PSP is not the operator
    assert User.of(app).sign_in_token("qtsp_" + "A" * 43).status_code == 401


def test_the_pkcs12_password_and_account_passwords_are_kept_nowhere(app: Flask, data_dir: Path) -> None:
    alice = User.of(app)
    alice.sign_in("alice")
    secret = "Unique-P12-Passw0rd-4711"
    assert alice.request_generated(_org(alice), password=secret).status_code == 200
    dumped = b""
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        for line in db.iterdump():
            dumped += line.encode()
    for path in data_dir.rglob("*"):
        if path.is_file() and path.suffix != ".db":
            dumped += path.read_bytes()
    assert secret.encode() not in dumped and PASSWORD.encode() not in dumped
    assert b"scrypt$" in dumped


def test_after_sign_in_only_portal_paths_are_followed(app: Flask) -> None:
    user = User.of(app)
    response = user.post_form("/portal/sign-in?next=//evil.example/x", None,
                              {"account-username": "alice", "account-password": PASSWORD}, field="account-csrf_token")
    assert response.headers["Location"] == "/portal/"


def test_time_travel_shows_a_banner(sandbox: Sandbox, data_dir: Path) -> None:
    config = data_dir / "qtsp.toml"
    text = config.read_text()
    assert "time_travel = false" in text
    config.write_text(text.replace("time_travel = false", "time_travel = true"))
    portal.create_account(sandbox, "alice", PASSWORD, "psp", actor="test")
    app = create_app({"data_dir": data_dir})
    user = User.of(app)
    user.sign_in("alice")
    plain = user.get("/portal/").get_data(as_text=True)
    assert "time-travel-banner" not in plain and "time travel is enabled" in plain
    travelled = user.get("/portal/", headers={"X-QTSP-Time": "2030-01-02T03:04:00Z"}).get_data(as_text=True)
    assert 'id="time-travel-banner"' in travelled and "2030-01-02 03:04 UTC" in travelled


def test_refusals_are_shown_next_to_their_field(app: Flask) -> None:
    alice = User.of(app)
    alice.sign_in("alice")
    org = _org(alice)
    base = {"org_id": org, "kind": "qwac", "purpose": "client", "key_type": "ecdsa-p256"}
    cases = [
        ({"key_source": "csr", "csr_text": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"},
         "csr_text"),
        ({"key_source": "csr"}, "csr_text"),
        ({"key_source": "generate", "domains": "api.example.com"}, "p12_password"),
        ({"key_source": "generate", "p12_password": "p12-password"}, "domains"),
        ({"key_source": "generate", "p12_password": "p12-password", "domains": "not a domain!"}, "domains"),
        ({"key_source": "generate", "p12_password": "p12-password", "domains": "api.example.com", "roles": ["PSP_AS"]},
         "roles"),
    ]
    for extra, field in cases:
        response = alice.post_form("/portal/request", None, {**base, **extra})
        html = response.get_data(as_text=True)
        assert response.status_code == 400, (extra, field)
        assert f'id="{field}-error"' in html and f'id="field-{field}"' in html, (extra, field, re.findall(
            r'class="error[^"]*"[^>]*>([^<]+)<', html))


def test_an_uploaded_csr_is_issued_and_its_pems_download(app: Flask) -> None:
    import io

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    alice = User.of(app)
    alice.sign_in("alice")
    org = _org(alice)
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER))
    response = alice.post_form("/portal/request", None, {
        "org_id": org, "kind": "qsealc", "key_source": "csr", "key_type": "ecdsa-p256",
        "csr_file": (io.BytesIO(csr), "request.der")}, content_type="multipart/form-data")
    assert response.status_code == 303, response.get_data(as_text=True)[-1500:]
    serial = response.headers["Location"].rsplit("/", 1)[1]
    cert = x509.load_pem_x509_certificate(alice.get(f"/portal/certificates/{serial}/cert.pem").data)
    assert cert.public_key() == key.public_key()
    chain = x509.load_pem_x509_certificates(alice.get(f"/portal/certificates/{serial}/chain.pem").data)
    assert chain[0].subject == cert.issuer and chain[-1].subject == chain[-1].issuer
    assert len(x509.load_pem_x509_certificates(alice.get(f"/portal/certificates/{serial}/fullchain.pem").data)) == len(chain) + 1
    page = alice.get(f"/portal/certificates/{serial}").get_data(as_text=True)
    assert 'data-copy="cert-pem"' in page and "-----BEGIN CERTIFICATE-----" in page


def test_the_operator_sees_nca_requests_with_their_receipts(app: Flask, sandbox: Sandbox,
                                                            ncas: dict[str, dict[str, bytes]]) -> None:
    from support.nca import BE_PSP, issue_cert, sign

    cert = issue_cert(sandbox, BE_PSP)
    body = {"org_id": BE_PSP, "reason": "privilege-withdrawn"}
    answer = app.test_client().post("/nca/v1/revocation-requests", data=sign(ncas, "BE-NBB", body, jti="portal-req-1"),
                                    content_type="application/jose")
    assert answer.status_code == 200, answer.json
    ops = User.of(app)
    ops.sign_in("ops")
    page = ops.get("/portal/operator/nca-requests").get_data(as_text=True)
    assert "portal-req-1" in page and answer.json["receipt"] in page  # type: ignore[index]
    assert f"{cert.serial_number:X}".rjust(32, "0")[-16:] in page.upper()
    alice = User.of(app)
    alice.sign_in("alice")
    assert alice.get("/portal/operator/nca-requests").status_code == 403


def test_the_scenario_bundle_and_trust_store_download_and_bundles_are_limited(app: Flask) -> None:
    import io
    import json
    import zipfile

    security.bundles._failures.clear()
    alice = User.of(app)
    alice.sign_in("alice")
    store = alice.get("/portal/downloads/trust-store.zip")
    assert store.status_code == 200 and "attachment" in store.headers["Content-Disposition"]
    assert "trust-store.pem" in zipfile.ZipFile(io.BytesIO(store.data)).namelist()
    assert alice.client.post("/portal/downloads/scenarios.zip").status_code == 400  # no CSRF token
    made = alice.post_form("/portal/downloads", "/portal/downloads/scenarios.zip", {})
    assert made.status_code == 200
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(made.data)).read("scenarios/manifest.json"))
    assert manifest["scenarios"]
    for _ in range(2):
        security.bundles.failed("portal:alice")
    refused = alice.post_form("/portal/downloads", "/portal/downloads/scenarios.zip", {})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
