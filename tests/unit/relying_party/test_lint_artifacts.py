"""The artifact linter (qtsp/relying_party/artifact_lint.py, lint_crl.py, lint_ocsp.py) and ``qtsp lint``:
CRLs and OCSP responses from a foreign PKI made with cryptography's builders (tests/support/artifacts.py),
one good one and one deliberately wrong variant per rule, each finding checked for its rule and clause;
then the sandbox's own CRLs and OCSP responses, which must lint clean. The same against artifacts made by
OpenSSL (``openssl ca -gencrl``, ``openssl ocsp -respout``) is tests/system/relying_party/test_lint_openssl.py."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID

from cli.main import cli
from qtsp.clock import utcnow
from qtsp.core.errors import Kind, QTSPError
from qtsp.relying_party.artifact_lint import detect, lint_artifact
from qtsp.services.context import Sandbox
from support import artifacts as a

NOW = a.NOW
R = x509.ReasonFlags


@pytest.fixture(scope="module")
def pki() -> a.Pki:
    return a.make_pki()


def errors(der: bytes, *, issuer: a.Party | None, at: dt.datetime = NOW, request: bytes | None = None) -> dict[str, str]:
    report = lint_artifact(der, at=at, issuer=issuer.cert if issuer else None, request=request)
    return {f.rule: f.source for f in report.findings if f.is_error}


def rules(der: bytes, *, issuer: a.Party | None, severity: str) -> set[str]:
    report = lint_artifact(der, at=NOW, issuer=issuer.cert if issuer else None)
    return {f.rule for f in report.findings if f.severity == severity}


# --- CRLs ---------------------------------------------------------------------------------------------

def test_a_good_crl_and_a_good_arl_lint_clean(pki: a.Pki) -> None:
    good = a.crl(pki.ca, entries=(a.entry(11, R.key_compromise), a.entry(12), a.entry(13, R.superseded)))
    assert errors(good, issuer=pki.ca) == {}
    arl = a.crl(pki.root, next_update=NOW + dt.timedelta(days=300), entries=(a.entry(21, R.ca_compromise),))
    assert errors(arl, issuer=pki.root) == {}
    assert "crl-kind" in rules(arl, issuer=pki.root, severity="info")


@pytest.mark.parametrize("variant, rule, clause", [
    ({"number": None}, "crl-number-missing", "RFC 5280 (2008-05) 5.2.3"),
    ({"number_critical": True}, "crl-number-critical", "7.2.2"),
    ({"number": 2 ** 160}, "crl-number-range", "5.2.3"),
    ({"aki": False}, "crl-aki-missing", "5.2.1"),
    ({"next_update": None}, "crl-next-update-missing", "5.1.2.5"),
    ({"next_update": NOW + dt.timedelta(days=10)}, "crl-validity-too-long", "Baseline Requirements v2.0.1 4.9.7"),
    ({"next_update": NOW - dt.timedelta(hours=2), "this_update": NOW - dt.timedelta(days=3)}, "crl-expired", "6.3.3"),
    ({"this_update": NOW + dt.timedelta(hours=2)}, "crl-this-update-future", "5.1.2.4"),
    ({"entries": "unspecified"}, "crl-reason-unspecified", "7.2.2"),
    ({"entries": "hold"}, "crl-reason-certificate-hold", "4.9.13"),
    ({"entries": "ca-compromise"}, "crl-reason-not-allowed", "7.2.2"),
    ({"entries": "remove"}, "crl-reason-remove-from-full-crl", "5.3.1"),
    ({"entries": "critical-reason"}, "crl-reason-critical", "5.3.1"),
    ({"extensions": "unknown-critical"}, "crl-unknown-critical-extension", "5.2"),
    ({"signer": "stranger"}, "crl-signature-invalid", "6.3.3 (g)"),
])
def test_each_crl_rule_names_its_clause(pki: a.Pki, variant: dict[str, object], rule: str, clause: str) -> None:
    kwargs = dict(variant)
    entries = {"unspecified": (a.entry(5, R.unspecified),), "hold": (a.entry(5, R.certificate_hold),),
               "ca-compromise": (a.entry(5, R.ca_compromise),), "remove": (a.entry(5, R.remove_from_crl),),
               "critical-reason": (a.entry(5, R.superseded, critical=True),)}
    if "entries" in kwargs:
        kwargs["entries"] = entries[str(kwargs["entries"])]
    if kwargs.get("extensions") == "unknown-critical":
        kwargs["extensions"] = ((x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.99999.1"), b"\x05\x00"), True),)
    if kwargs.get("signer") == "stranger":
        kwargs["signer"] = pki.stranger
    found = errors(a.crl(pki.ca, **kwargs), issuer=pki.ca)  # type: ignore[arg-type]
    assert rule in found, found
    assert clause in found[rule]


def test_the_crl_is_checked_against_the_issuer_given(pki: a.Pki) -> None:
    good = a.crl(pki.ca)
    found = errors(good, issuer=pki.stranger)
    assert {"crl-issuer-name", "crl-signature-invalid"} <= set(found)
    # Without --issuer nothing about the issuer is claimed either way: an info says so.
    assert errors(good, issuer=None) == {}
    assert "crl-issuer-not-checked" in rules(good, issuer=None, severity="info")
    no_crl_sign = a.issue("Foreign Demo Issuing CA", pki.root, ca=True, key_usage="no-crl-sign")
    assert "crl-issuer-no-crlsign" in errors(a.crl(no_crl_sign), issuer=no_crl_sign)


def test_what_br_does_not_recommend_is_a_warning_not_an_error(pki: a.Pki) -> None:
    invalidity = x509.InvalidityDate(NOW - dt.timedelta(days=3))
    der = a.crl(pki.ca, entries=(a.entry(9, R.key_compromise, extra=(invalidity,)),),
                extensions=((x509.FreshestCRL([x509.DistributionPoint([x509.UniformResourceIdentifier(
                    "http://crl.foreign.example/delta.crl")], None, None, None)]), False),))
    assert errors(der, issuer=pki.ca) == {}
    assert {"crl-entry-extension-not-recommended", "crl-extension-not-recommended"} <= rules(der, issuer=pki.ca,
                                                                                             severity="warning")


def test_a_subscriber_crl_window_of_ten_days_is_the_limit(pki: a.Pki) -> None:
    this_update = NOW - dt.timedelta(hours=1)
    assert errors(a.crl(pki.ca, this_update=this_update, next_update=this_update + dt.timedelta(days=10)), issuer=pki.ca) == {}
    over = a.crl(pki.ca, this_update=this_update, next_update=this_update + dt.timedelta(days=10, seconds=1))
    assert "crl-validity-too-long" in errors(over, issuer=pki.ca)
    # The same window on the root's CRL for CA certificates is fine; 13 months is not.
    assert errors(a.crl(pki.root, next_update=this_update + dt.timedelta(days=11)), issuer=pki.root) == {}
    assert "crl-validity-too-long" in errors(a.crl(pki.root, next_update=this_update + dt.timedelta(days=400)),
                                             issuer=pki.root)


# --- OCSP responses -----------------------------------------------------------------------------------

def test_good_responses_lint_clean(pki: a.Pki) -> None:
    request = a.ocsp_request(pki.leaf.cert, pki.ca.cert)
    assert errors(a.ocsp_response(pki), issuer=pki.ca, request=request) == {}  # delegated responder, by name
    assert errors(a.ocsp_response(pki, by_key=True), issuer=pki.ca, request=request) == {}
    assert errors(a.ocsp_response(pki, signer=pki.ca), issuer=pki.ca, request=request) == {}  # the CA itself
    revoked = a.ocsp_response(pki, status=ocsp.OCSPCertStatus.REVOKED, reason=R.key_compromise)
    assert errors(revoked, issuer=pki.ca, request=request) == {}
    report = lint_artifact(a.ocsp_response(pki), at=NOW, issuer=pki.ca.cert)
    assert [f.message for f in report.findings if f.rule == "ocsp-nonce"] == [
        f"nonce {b'nonce-0123456789'.hex()} (16 octets)"]


def _responder(pki: a.Pki, **kwargs: object) -> a.Party:
    return a.issue("Foreign Demo OCSP Responder", kwargs.pop("issuer", pki.ca), ca=False, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("case, rule, clause", [
    ("no-ocsp-signing", "ocsp-responder-not-authorised", "RFC 6960 (2013-06) 4.2.2.2"),
    ("not-issued-by-ca", "ocsp-responder-not-authorised", "4.2.2.2"),
    ("no-nocheck", "ocsp-responder-no-nocheck", "4.2.2.2.1"),
    ("responder-not-included", "ocsp-responder-unknown", "4.2.2.2"),
    ("bad-signature", "ocsp-signature-invalid", "3.2 (2)"),
    ("no-next-update", "ocsp-next-update-missing", "RFC 5019 (2007-09) 2.2.4"),
    ("eleven-days", "ocsp-validity-too-long", "4.9.10"),
    ("four-hours", "ocsp-validity-too-short", "4.9.10"),
    ("expired", "ocsp-expired", "3.2 (6)"),
    ("this-update-future", "ocsp-this-update-future", "3.2 (5)"),
    ("certificate-hold", "ocsp-reason-not-allowed", "7.3"),
    ("unspecified", "ocsp-reason-not-allowed", "7.2.2"),
    ("other-issuer", "ocsp-certid-issuer", "4.1.1"),
    ("nonce-dropped", "ocsp-nonce-not-echoed", "RFC 9654 (2024-08) 2.1"),
    ("nonce-changed", "ocsp-nonce-mismatch", "4.4.1"),
    ("other-certificate", "ocsp-request-unanswered", "4.2.2.3"),
])
def test_each_ocsp_rule_names_its_clause(pki: a.Pki, case: str, rule: str, clause: str) -> None:
    request = a.ocsp_request(pki.leaf.cert, pki.ca.cert)
    at, kwargs = NOW, {}
    if case == "no-ocsp-signing":
        kwargs = {"signer": _responder(pki, eku=[ExtendedKeyUsageOID.CLIENT_AUTH], nocheck=True)}
    elif case == "not-issued-by-ca":
        kwargs = {"signer": _responder(pki, issuer=pki.stranger, eku=[ExtendedKeyUsageOID.OCSP_SIGNING], nocheck=True)}
    elif case == "no-nocheck":
        kwargs = {"signer": _responder(pki, eku=[ExtendedKeyUsageOID.OCSP_SIGNING])}
    elif case == "responder-not-included":
        kwargs = {"include": [pki.leaf.cert]}
    elif case == "bad-signature":
        kwargs = {"tamper": True}
    elif case == "no-next-update":
        kwargs = {"next_update": None}
    elif case == "eleven-days":
        kwargs = {"next_update": NOW + dt.timedelta(days=10)}
    elif case == "four-hours":
        kwargs = {"next_update": NOW + dt.timedelta(hours=3)}
    elif case == "expired":
        at = NOW + dt.timedelta(days=5)
    elif case == "this-update-future":
        at = NOW - dt.timedelta(hours=3)
    elif case in ("certificate-hold", "unspecified"):
        kwargs = {"status": ocsp.OCSPCertStatus.REVOKED,
                  "reason": R.certificate_hold if case == "certificate-hold" else R.unspecified}
    elif case == "other-issuer":
        request = None
        kwargs = {"issuer": pki.stranger, "about": pki.leaf, "signer": pki.ca}
    elif case == "nonce-dropped":
        kwargs = {"nonce": None}
    elif case == "nonce-changed":
        kwargs = {"nonce": b"another-nonce-00"}
    elif case == "other-certificate":
        request = a.ocsp_request(pki.responder.cert, pki.ca.cert)
    der = a.ocsp_response(pki, **kwargs)  # type: ignore[arg-type]
    found = errors(a.tamper_signature(der) if kwargs.get("tamper") else der, issuer=pki.ca, at=at, request=request)
    assert rule in found, found
    assert clause in found[rule]


def test_a_revoked_ca_certificate_needs_a_reason_and_may_say_ca_compromise(pki: a.Pki) -> None:
    about_ca = {"issuer": pki.root, "about": pki.ca, "signer": pki.root}
    no_reason = a.ocsp_response(pki, status=ocsp.OCSPCertStatus.REVOKED, **about_ca)  # type: ignore[arg-type]
    assert "ocsp-reason-missing-for-ca" in errors(no_reason, issuer=pki.root)
    ca_compromise = a.ocsp_response(pki, status=ocsp.OCSPCertStatus.REVOKED, reason=R.ca_compromise, **about_ca)  # type: ignore[arg-type]
    assert errors(ca_compromise, issuer=pki.root) == {}
    # ... but cACompromise about a subscriber certificate is refused.
    leaf = a.ocsp_response(pki, status=ocsp.OCSPCertStatus.REVOKED, reason=R.ca_compromise)
    assert "ocsp-reason-not-allowed" in errors(leaf, issuer=pki.ca)


def test_an_unsuccessful_response_is_reported_not_judged() -> None:
    der = ocsp.OCSPResponseBuilder.build_unsuccessful(ocsp.OCSPResponseStatus.TRY_LATER).public_bytes(
        serialization.Encoding.DER)
    report = lint_artifact(der, at=NOW)
    assert report.type == "ocsp-response"
    assert [(f.rule, f.severity) for f in report.findings] == [("ocsp-unsuccessful", "info")]


# --- detection and the command ------------------------------------------------------------------------

def test_the_type_is_detected_from_pem_and_der(pki: a.Pki) -> None:
    crl_der = a.crl(pki.ca)
    crl_pem = x509.load_der_x509_crl(crl_der).public_bytes(serialization.Encoding.PEM)
    assert detect(crl_der) == ("crl", crl_der) and detect(crl_pem) == ("crl", crl_der)
    assert detect(pki.leaf.pem())[0] == "certificate"
    assert detect(pki.leaf.cert.public_bytes(serialization.Encoding.DER))[0] == "certificate"
    assert detect(a.ocsp_response(pki))[0] == "ocsp-response"
    for bad in (b"", b"not a thing", pki.leaf.pem() + crl_pem, b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
                crl_der[:-10]):
        with pytest.raises(QTSPError) as info:
            detect(bad)
        assert info.value.kind is Kind.MALFORMED


def test_a_certificate_is_checked_against_the_issuer_given(pki: a.Pki) -> None:
    leaf = pki.leaf.cert.public_bytes(serialization.Encoding.DER)
    assert errors(leaf, issuer=pki.ca) == {}
    found = errors(leaf, issuer=pki.stranger)
    assert set(found) == {"certificate-issuer-name", "certificate-signature-invalid"}
    assert "6.1.3 (a)(1)" in found["certificate-signature-invalid"]
    impostor = a.issue("Foreign Demo Issuing CA", pki.root, ca=True)  # the CA's name, another key
    assert set(errors(leaf, issuer=impostor)) == {"certificate-signature-invalid"}


def _cli(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["lint", *[str(x) for x in args]], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_command_exits_0_1_2_and_prints_the_json_shape(pki: a.Pki, tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_bytes(pki.ca.pem())
    (tmp_path / "good.crl").write_bytes(a.crl(pki.ca))
    (tmp_path / "bad.crl").write_bytes(a.crl(pki.ca, number=None, next_update=NOW + dt.timedelta(days=30)))
    (tmp_path / "junk.bin").write_bytes(b"\x30\x03\x02\x01\x01")
    code, out, _ = _cli(tmp_path / "good.crl", "--issuer", tmp_path / "ca.pem", "--json")
    data = json.loads(out)
    assert code == 0 and data["type"] == "crl" and set(data) == {"type", "findings"}
    assert all(set(f) == {"rule", "source", "severity", "message"} for f in data["findings"])
    code, out, _ = _cli(tmp_path / "bad.crl", "--issuer", tmp_path / "ca.pem", "--json")
    found = {f["rule"] for f in json.loads(out)["findings"] if f["severity"] == "error"}
    assert code == 1 and {"crl-number-missing", "crl-validity-too-long"} <= found
    # pkilint runs underneath, under its own codes and name.
    assert any(f["source"].startswith("pkilint ") and f["severity"] == "error" for f in json.loads(out)["findings"])
    code, _, err = _cli(tmp_path / "junk.bin")
    assert code == 2 and "not a certificate, a CRL or an OCSP response" in err
    code, _, err = _cli(tmp_path / "missing.crl")
    assert code == 2 and "cannot read" in err
    code, _, err = _cli(tmp_path / "good.crl", "--issuer", tmp_path / "good.crl")
    assert code == 2 and "--issuer" in err


# --- the sandbox's own artifacts ----------------------------------------------------------------------

def test_the_sandboxs_own_crls_and_ocsp_responses_lint_clean(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    from ca_store import repositories as repo
    from qtsp.services import crl as crl_svc
    from qtsp.services import issuance, revocation
    from qtsp.web.app import create_app
    from support import SAMPLE_ORG

    now = utcnow()
    with sandbox.transaction() as session:
        cas = {ca.id: x509.load_der_x509_certificate(ca.cert_der) for ca in repo.list_cas(session)}
    linted = 0
    for ca_id, ca_cert in cas.items():
        if ca_id.startswith(("tl-", "ocsp")) or not crl_svc.ca_exists(sandbox, ca_id):
            continue
        (tmp_path / f"{ca_id}.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
        for delta in (False, True):
            if delta and ca_cert.subject == ca_cert.issuer:
                continue
            path = tmp_path / f"{ca_id}{'-delta' if delta else ''}.crl"
            path.write_bytes(crl_svc.current(sandbox, ca_id, now, delta=delta).der)
            code, out, _ = _cli(path, "--issuer", tmp_path / f"{ca_id}.pem", "--json")
            assert code == 0, (path.name, out)
            linted += 1
    assert linted >= 5
    client = create_app({"data_dir": str(data_dir)}).test_client()
    for kind, ca_id in (("qwac", "qwac-ca"), ("qsealc", "qseal-ca")):
        cert = issuance.issue(sandbox, issuance.IssueRequest(kind, SAMPLE_ORG, domains=("lint.example.com",) if kind == "qwac" else (),
                                                             generate_key="ecdsa-p256")).certificate
        for nonce in (b"0123456789abcdef", None):
            request = a.ocsp_request(cert, cas[ca_id], nonce)
            answer = client.post("/ocsp", data=request, headers={"Content-Type": "application/ocsp-request"})
            (tmp_path / "r.der").write_bytes(answer.data)
            (tmp_path / "q.der").write_bytes(request)
            code, out, _ = _cli(tmp_path / "r.der", "--issuer", tmp_path / f"{ca_id}.pem", "--request", tmp_path / "q.der",
                                "--json")
            assert code == 0, (kind, nonce, out)
            (tmp_path / "r.der").unlink()
            (tmp_path / "q.der").unlink()
        # Revoked (a reason BR allows), and the issuing CA's own status from the root-delegated responder.
        revocation.revoke(sandbox, format(cert.serial_number, "X"), "key-compromise")
        root_id = next(i for i, c in cas.items() if c.subject == cas[ca_id].issuer)
        for subject, issuer_id in ((cert, ca_id), (cas[ca_id], root_id)):
            request = a.ocsp_request(subject, cas[issuer_id], None)
            answer = client.post("/ocsp", data=request, headers={"Content-Type": "application/ocsp-request"})
            parsed = ocsp.load_der_ocsp_response(answer.data)
            assert parsed.certificate_status == (ocsp.OCSPCertStatus.REVOKED if subject is cert else ocsp.OCSPCertStatus.GOOD)
            (tmp_path / f"{issuer_id}.pem").write_bytes(cas[issuer_id].public_bytes(serialization.Encoding.PEM))
            (tmp_path / "r.der").write_bytes(answer.data)
            code, out, _ = _cli(tmp_path / "r.der", "--issuer", tmp_path / f"{issuer_id}.pem", "--json")
            assert code == 0, (kind, subject.subject, out)
            (tmp_path / "r.der").unlink()


def test_damaged_input_is_refused_as_unusable_never_a_crash(pki: a.Pki) -> None:
    """Every truncation and a spread of single-byte changes of a CRL, an OCSP response and a certificate: a
    report, or QTSPError(MALFORMED) (exit 2), nothing else."""
    import random

    rng = random.Random(17)
    samples = [a.crl(pki.ca, entries=(a.entry(5, R.key_compromise),)), a.ocsp_response(pki),
               pki.leaf.cert.public_bytes(serialization.Encoding.DER)]
    outcomes = {"report": 0, "refused": 0}
    for der in samples:
        variants = [der[:n] for n in range(0, len(der), 7)]
        for _ in range(150):
            changed = bytearray(der)
            changed[rng.randrange(len(der))] ^= 1 << rng.randrange(8)
            variants.append(bytes(changed))
        for variant in variants:
            try:
                lint_artifact(variant, at=NOW, issuer=pki.ca.cert, request=None)
                outcomes["report"] += 1
            except QTSPError as exc:
                assert exc.kind is Kind.MALFORMED, exc.detail
                outcomes["refused"] += 1
    assert outcomes["report"] > 50 and outcomes["refused"] > 50, outcomes
