"""Two QWAC hierarchies (issue 16 item 4): a browser root whose only issuing CA and leaves assert serverAuth
alone (Chrome Root Program Policy v1.6 3.2.2), and the non-browser root of the mutual-TLS QWACs; the
purpose of a request picks the hierarchy; a data dir from before gets the browser hierarchy on first need.
(pkilint's command-line linters and openssl judge the same certificates in
tests/system/core/test_two_hierarchies.py.)"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID

from ca_store import repositories as repo
from qtsp import config as config_mod
from qtsp.clock import as_of, utcnow
from qtsp.core import checks, profiles
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import KeyType, generate_private_key
from qtsp.core.profiles import Hierarchy, LintTarget, Purpose
from qtsp.core.serials import new_serial
from qtsp.services import audit, issuance, register, signing
from qtsp.services.authorities import lifecycle
from qtsp.services.context import Sandbox, open_sandbox
from qtsp.services.hierarchy import init_sandbox
from qtsp.services.issue_request import parse_issue_request

from support import SAMPLE_ORG

UTC = dt.timezone.utc
SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH


def _issue(sb: Sandbox, **kw: Any) -> issuance.Issued:
    return issuance.issue(sb, issuance.IssueRequest("qwac", SAMPLE_ORG, domains=("api.example.com",),
                                                    generate_key="ecdsa-p256", **kw))


def _ekus(cert: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def _spki(cert: x509.Certificate) -> bytes:
    return cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


# --- the request ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["cli", "api", "bulk"])
@pytest.mark.parametrize(("fields", "profile"), [
    ({"purpose": "server"}, "qwac-browser"), ({"purpose": "client"}, "qwac-client"), ({"purpose": "both"}, "qwac"),
    ({}, "qwac"), ({"browser": True}, "qwac-browser"), ({"browser": True, "purpose": "server"}, "qwac-browser"),
])
def test_purpose_picks_the_profile_from_every_source(source: str, fields: dict[str, Any], profile: str) -> None:
    data = {"kind": "qwac", "org_id": SAMPLE_ORG, **fields}
    if source == "api":
        data["csr"] = "-----BEGIN CERTIFICATE REQUEST-----"
    assert parse_issue_request(data, source=source).profile().name == profile


@pytest.mark.parametrize(("fields", "fragment"), [
    ({"purpose": "browser"}, "purpose must be one of server, client, both"),
    ({"purpose": 1}, "purpose must be one of server, client, both"),
    ({"purpose": "client", "browser": True}, "browser means purpose server"),
    ({"purpose": "both", "browser": True}, "browser means purpose server"),
])
def test_a_bad_or_contradictory_purpose_is_refused_naming_it(fields: dict[str, Any], fragment: str) -> None:
    with pytest.raises(QTSPError) as err:
        parse_issue_request({"kind": "qwac", "org_id": SAMPLE_ORG, **fields}, source="bulk")
    assert err.value.kind is Kind.MALFORMED and fragment in err.value.detail


@pytest.mark.parametrize("fields", [{"purpose": "client"}, {"browser": True}])
def test_a_qsealc_has_no_purpose(fields: dict[str, Any]) -> None:
    request = parse_issue_request({"kind": "qsealc", "org_id": SAMPLE_ORG, **fields}, source="bulk")
    with pytest.raises(QTSPError) as err:
        request.profile()
    assert err.value.kind is Kind.MALFORMED and "QWACs only" in err.value.detail


# --- the profiles refuse a QWAC in the wrong hierarchy ------------------------------------------------------


def test_a_browser_profile_with_client_auth_cannot_even_be_made() -> None:
    with pytest.raises(QTSPError, match="serverAuth only"):
        replace(profiles.QWAC_BROWSER, ext_key_usage=(SERVER, CLIENT))
    with pytest.raises(QTSPError, match="asserts clientAuth"):
        replace(profiles.QWAC, ext_key_usage=(SERVER,))


# --- issuance: each purpose from its hierarchy ----------------------------------------------------------


@pytest.mark.parametrize(("purpose", "issuer", "root", "ekus"), [
    ("server", "qwac-browser-ca", "browser-root", {SERVER}),
    ("client", "qwac-ca", "root", {CLIENT}),
    ("both", "qwac-ca", "root", {SERVER, CLIENT}),
])
def test_each_purpose_comes_from_its_hierarchy(sandbox: Sandbox, purpose: str, issuer: str, root: str,
                                               ekus: set[x509.ObjectIdentifier]) -> None:
    issued = _issue(sandbox, purpose=purpose)
    assert issued.issuer_id == issuer and _ekus(issued.certificate) == ekus
    with sandbox.transaction() as session:
        assert repo.get_ca(session, issuer).parent_id == root
        root_cert = x509.load_der_x509_certificate(repo.get_ca(session, root).cert_der)
    assert issued.chain[1] == root_cert and issued.chain[0].issuer == root_cert.subject
    issued.certificate.verify_directly_issued_by(issued.chain[0])
    issued.chain[0].verify_directly_issued_by(root_cert)


def test_the_browser_root_is_dedicated_to_server_auth(sandbox: Sandbox) -> None:
    """Chrome Root Program Policy v1.6 3.2.1: every CA under the browser root asserts serverAuth alone, on a
    key that no certificate with other EKUs holds; the non-browser root signs no CA of the browser one."""
    with sandbox.transaction() as session:
        cas = {ca.id: (ca, x509.load_der_x509_certificate(ca.cert_der)) for ca in repo.list_cas(session)}
    under_browser = [cert for ca, cert in cas.values() if ca.parent_id == "browser-root"]
    assert [cert.subject for cert in under_browser] == [cas["qwac-browser-ca"][1].subject]
    assert all(_ekus(cert) == {SERVER} for cert in under_browser)
    others = {_spki(cert) for ca_id, (_, cert) in cas.items() if ca_id not in ("browser-root", "qwac-browser-ca")}
    assert _spki(cas["browser-root"][1]) not in others and _spki(cas["qwac-browser-ca"][1]) not in others
    assert cas["browser-root"][1].subject != cas["root"][1].subject
    # The browser issuing CA names an ARL of its own root, and carries no OCSP URL (the ARL covers it).
    crldp = cas["qwac-browser-ca"][1].extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crldp[0].full_name[0].value == sandbox.config.crl_url("browser-root")


def test_the_browser_issuing_ca_refuses_to_sign_a_client_auth_leaf(sandbox: Sandbox) -> None:
    """The attack: a mutual-TLS QWAC (serverAuth + clientAuth) under the browser root. Its template, linted as
    the browser profile it would be issued under, is refused before the CA key signs anything."""
    request = issuance.IssueRequest("qwac", SAMPLE_ORG, domains=("api.example.com",), generate_key="ecdsa-p256",
                                    purpose="server")
    prepared = issuance.prepare(sandbox, request)
    batch = issuance.Batch(sandbox, utcnow(), "test")
    ca = batch.ca(prepared.issuer_id)
    both = replace(prepared, profile=profiles.QWAC)  # the template of a serverAuth + clientAuth QWAC ...
    key = generate_private_key(KeyType.ECDSA_P256)
    tbs = issuance.template(sandbox.config, ca.info, both, key.public_key(), new_serial(), batch.now)
    with pytest.raises(QTSPError) as err:  # ... judged as what the browser CA issues
        signing.lint(tbs, ca.signer, profiles.QWAC_BROWSER, sandbox.linter)
    assert err.value.kind is Kind.LINT and "qtsp.browser.eku" in err.value.detail


def test_the_non_browser_waivers_never_hide_an_over_long_certificate(sandbox: Sandbox) -> None:
    """pkilint's SC-081 validity findings are waived on non-browser QWACs only; our own check still holds them
    to 398 days, and a browser QWAC past the CA/B schedule is refused by pkilint itself."""
    request = issuance.IssueRequest("qwac", SAMPLE_ORG, domains=("api.example.com",), generate_key="ecdsa-p256")
    prepared = issuance.prepare(sandbox, request)
    batch = issuance.Batch(sandbox, utcnow(), "test")
    ca = batch.ca(prepared.issuer_id)
    key = generate_private_key(KeyType.ECDSA_P256)
    for profile, days, code in ((profiles.QWAC, 399, "qtsp.non_browser.validity"),
                                (profiles.QWAC_CLIENT, 399, "qtsp.non_browser.validity"),
                                (profiles.QWAC_BROWSER, 201, "cabf.serverauth.certificate_validity_period_exceeds_200_days")):
        # A configuration past what qtsp.toml may say (1-398), as a bug or a hand-edited store might give.
        cfg = SimpleNamespace(pds=sandbox.config.pds, qwac_mtls_validity_days=days, qsealc_validity_days=days)
        long = replace(prepared, profile=profile if profile.hierarchy is Hierarchy.NON_BROWSER else profile.with_validity(days))
        tbs = issuance.template(cfg, ca.info, long, key.public_key(), new_serial(), batch.now)
        with pytest.raises(QTSPError) as err:
            signing.lint(tbs, ca.signer, profile, sandbox.linter)
        assert code in err.value.detail, (profile.name, err.value.detail)


def test_own_checks_name_the_hierarchy_rule(sandbox: Sandbox) -> None:
    both = _issue(sandbox, purpose="both").certificate
    codes = [code for code, _ in checks.check_certificate(both, profiles.QWAC_BROWSER)]
    assert codes == ["qtsp.browser.eku"]
    codes = [code for code, _ in checks.check_certificate(both, profiles.QWAC_CLIENT)]
    assert codes == ["qtsp.non_browser.eku"]
    assert checks.check_certificate(both, profiles.QWAC) == []


# --- validity: the CA/B schedule for the browser hierarchy, the sandbox's limit for the other -----------------


@pytest.mark.parametrize(("at", "browser_days"), [
    ("2026-12-06T12:00:00Z", 200), ("2027-04-01T00:00:00Z", 100), ("2029-04-01T00:00:00Z", 47),
])
def test_validity_by_hierarchy_under_time_travel(sandbox: Sandbox, at: str, browser_days: int) -> None:
    moment = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    with as_of(moment):
        server = _issue(sandbox, purpose="server").certificate
        both = _issue(sandbox, purpose="both").certificate
    for cert, days in ((server, browser_days), (both, 398)):
        assert moment <= cert.not_valid_before_utc < moment + dt.timedelta(minutes=1)  # the travelled clock runs on
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=days, seconds=-1)


def test_the_non_browser_limit_is_configurable_and_bounded(tmp_path: Path) -> None:
    assert config_mod.from_mapping({"qwac_mtls_validity_days": 90}).qwac_mtls_validity_days == 90
    for bad in (0, 399):
        with pytest.raises(QTSPError) as err:
            config_mod.from_mapping({"qwac_mtls_validity_days": bad})
        assert err.value.kind is Kind.POLICY and "qwac_mtls_validity_days must be 1-398" in err.value.detail
    cfg = tmp_path / "qtsp.toml"
    cfg.write_text('qwac_mtls_validity_days = 90\n[browser_root]\ncommon_name = "Example Browser Root"\n')
    sb = init_sandbox(tmp_path / "data", config_file=cfg)
    try:
        register.add_psp(sb, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI", locality="Brussels")
        cert = _issue(sb, purpose="client").certificate
        assert cert.not_valid_after_utc - cert.not_valid_before_utc == dt.timedelta(days=90, seconds=-1)
        assert "Example Browser Root" in _issue(sb, purpose="server").chain[1].subject.rfc4514_string()
    finally:
        sb.engine.dispose()


# --- a data dir from before the two hierarchies --------------------------------------------------------------


@pytest.fixture
def old_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data dir as ``qtsp init`` made it before this change: one root, qwac-ca, qseal-ca."""
    data_dir = tmp_path / "old"
    with monkeypatch.context() as patch:
        patch.setattr(lifecycle, "make_browser_hierarchy", lambda sandbox, now: [])
        sb = init_sandbox(data_dir)
    register.add_psp(sb, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI", locality="Brussels")
    with sb.transaction() as session:
        assert {ca.id for ca in repo.list_cas(session)} == {"root", "qwac-ca", "qseal-ca"}
    sb.engine.dispose()
    return data_dir


def test_an_old_data_dir_keeps_its_mtls_qwacs_and_gets_the_browser_hierarchy_on_first_need(old_data_dir: Path) -> None:
    sb = open_sandbox(old_data_dir)
    try:
        both = _issue(sb, purpose="both")
        with sb.transaction() as session:
            assert {ca.id for ca in repo.list_cas(session)} == {"root", "qwac-ca", "qseal-ca"}  # nothing made for it
        assert both.issuer_id == "qwac-ca"
        ahead = dt.datetime(2027, 4, 1, tzinfo=UTC)
        with as_of(ahead):  # first need while time-travelling: the CAs are made on the real clock all the same
            server = _issue(sb, browser=True)
        with sb.transaction() as session:
            cas = {ca.id: ca for ca in repo.list_cas(session)}
            events = [e for e in repo.audit_events(session) if e.action == "ca.create" and json.loads(e.details).get("first_need")]
        assert set(cas) == {"root", "qwac-ca", "qseal-ca", "browser-root", "qwac-browser-ca"}
        assert {e.subject for e in events} == {"browser-root", "qwac-browser-ca"}
        assert all(abs(ca.created_at.replace(tzinfo=UTC) - dt.datetime.now(UTC)) < dt.timedelta(minutes=5)
                   for ca_id, ca in cas.items() if ca_id in ("browser-root", "qwac-browser-ca"))
        assert server.issuer_id == "qwac-browser-ca" and _ekus(server.certificate) == {SERVER}
        assert server.certificate.not_valid_after_utc - ahead == dt.timedelta(days=100, seconds=-1)
        assert (old_data_dir / "ca" / "browser-root.der").read_bytes() == cas["browser-root"].cert_der
        assert (old_data_dir / "ca" / "qwac-browser-ca.pem").exists()
        # The second browser QWAC uses them; nothing more is made.
        again = _issue(sb, purpose="server")
        with sb.transaction() as session:
            assert len(repo.list_cas(session)) == 5
        assert again.issuer_id == "qwac-browser-ca"
        assert audit.verify(sb)[1] is None
    finally:
        sb.engine.dispose()


def test_the_hierarchy_made_on_first_need_is_refused_nothing_when_the_purpose_is_bad(old_data_dir: Path) -> None:
    sb = open_sandbox(old_data_dir)
    try:
        with pytest.raises(QTSPError):
            issuance.issue(sb, parse_issue_request({"kind": "qwac", "org_id": SAMPLE_ORG, "purpose": "server",
                                                    "browser": False, "domains": ["bad domain"]}, source="bulk"))
        with sb.transaction() as session:
            assert len(repo.list_cas(session)) == 3  # refused before any CA was made for it
    finally:
        sb.engine.dispose()


def test_profiles_by_purpose_cover_every_purpose() -> None:
    assert set(profiles.QWAC_BY_PURPOSE) == set(Purpose)
    assert {p.lint for p in profiles.QWAC_BY_PURPOSE.values()} == {LintTarget.ETSI_QWAC, LintTarget.ETSI_QWAC_NON_BROWSER}


def test_the_browser_issuing_ca_rolls_over_inside_its_own_hierarchy(sandbox: Sandbox) -> None:
    from qtsp.services.authorities import rollover

    new_id = rollover(sandbox, "qwac-browser-ca", utcnow(), actor="test")  # type: ignore[arg-type]
    assert new_id == "qwac-browser-ca-2"
    issued = _issue(sandbox, purpose="server")
    assert issued.issuer_id == new_id and issued.chain[1].subject == _issue(sandbox, purpose="server").chain[1].subject
    with sandbox.transaction() as session:
        row = repo.get_ca(session, new_id)
        assert (row.parent_id, row.role, row.profile) == ("browser-root", "qwac-browser", "qwac-browser-issuing-ca")
    assert _ekus(issued.chain[0]) == {SERVER}
    assert _issue(sandbox, purpose="both").issuer_id == "qwac-ca"  # the other hierarchy is not touched
