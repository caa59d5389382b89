"""The rules table (qtsp/core/rules.py): every check of ours is a rule naming its document, edition and
clause; a finding's message cites it; the CA/B validity rows cover time without a gap and agree with
the schedule the builder applies."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path

import pytest
from cryptography import x509

from qtsp.core import builder, checks, oids, profiles, rules, validity
from qtsp.core.keys import generate_private_key, signature_hash
from qtsp.core.names import parse_org_id
from qtsp.core.psd2 import PSD2Attributes
from qtsp.core.qcstatements import QcSpec
from qtsp.core.types import Serial

UTC = dt.timezone.utc
CHECKS = Path(checks.__file__).read_text()


def test_every_code_our_checks_emit_is_a_rule_and_every_rule_is_checked() -> None:
    emitted = set(re.findall(r'problem\("(qtsp\.[a-z0-9_.]+)"', CHECKS))
    assert emitted, "the scan found no problem(...) calls: it no longer reads checks.py"
    assert emitted <= set(rules.BY_CODE), emitted - set(rules.BY_CODE)
    assert {r.code for r in rules.RULES} <= emitted, {r.code for r in rules.RULES} - emitted
    # No finding built by hand any more (a bare ("qtsp.x", "...") tuple would cite nothing).
    assert not re.search(r'(?<!problem)\(\s*"qtsp\.[a-z_.]+",\s*f?"', CHECKS)


def test_every_rule_names_document_edition_and_clause() -> None:
    for rule in rules.ALL_RULES:
        assert rule.source.document and rule.source.edition and rule.clause and rule.text and rule.applies_to, rule
        assert re.search(r"\d", rule.source.edition), f"{rule.code}: the edition names no version"
        assert rule.cite.startswith(f"{rule.source.document} {rule.source.edition} clause ")
    assert len(rules.BY_CODE) == len(rules.ALL_RULES), "two rules share a code"


def test_validity_rows_cover_time_without_gap_and_agree_with_the_builder_schedule() -> None:
    rows = rules.VALIDITY_RULES
    assert rows[0].effective is None and rows[-1].until is None
    for before, after in itertools.pairwise(rows):
        assert before.until == after.effective
    second = dt.timedelta(seconds=1)
    for start, days in validity.BR_TLS_SCHEDULE[:-1]:
        assert rules.tls_validity_rule(start).max_days == days == validity.br_tls_max_days(start)
        assert rules.tls_validity_rule(start - second).max_days == validity.br_tls_max_days(start - second) != days
    # The edition dates of SC-081: 200 days from 2026-03-15, 100 from 2027-03-15, 47 from 2029-03-15.
    assert [(r.effective.date().isoformat() if r.effective else None, r.max_days) for r in rows] == [
        (None, 398), ("2026-03-15", 200), ("2027-03-15", 100), ("2029-03-15", 47)]


PDS = "https://qtsp.localtest.me/pds/pds-en.pdf"


def _qwac(nca_id: str) -> x509.Certificate:
    now = dt.datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    ca_key = generate_private_key("ecdsa-p256")
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "BE"),
                         x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "T"),
                         x509.NameAttribute(x509.NameOID.COMMON_NAME, "T CA")])
    base = "http://qtsp.localtest.me:8080"
    issuer = builder.IssuerInfo(ca_name, ca_key.public_key(), now + dt.timedelta(days=3650), f"{base}/ca/x.der",
                                f"{base}/ocsp", f"{base}/crl/x.crl")
    org_id = parse_org_id("PSDBE-NBB-1")
    subject = builder.subject_name(profiles.SubjectShape.QWAC_EV, builder.SubjectData(
        "Example Fintech SA", "BE", org_id=org_id, locality="Brussels", registration_number="0123"))
    tbs = builder.build(profiles.QWAC, subject=subject, public_key=generate_private_key("ecdsa-p256").public_key(),
                        serial=Serial((1 << 64) + 1), now=now, issuer=issuer, dns_names=("api.example.com",),
                        org_id=org_id, qc=QcSpec(oids.QCT_WEB, ((PDS, "en"),), PSD2Attributes(("PSP_AI",), "N", nca_id)))
    return tbs.sign(ca_key, signature_hash(ca_key))


def _with_http_pds(cert: x509.Certificate) -> x509.Certificate:
    """The same certificate with its QcPDS URL on plain http (same length, so the DER stays valid), re-signed
    by a throwaway key: our builder refuses to make one (config and QcSpec check https)."""
    key = generate_private_key("ecdsa-p256")
    rebuilt = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer).public_key(cert.public_key())
               .serial_number(cert.serial_number).not_valid_before(cert.not_valid_before_utc)
               .not_valid_after(cert.not_valid_after_utc))
    for ext in cert.extensions:
        if ext.oid == oids.QC_STATEMENTS:
            der = ext.value.public_bytes()
            assert PDS.encode() in der
            value = der.replace(b"https://qtsp.localtest.me/pds/", b"http://qtsp.localtest.me//pds/")
            rebuilt = rebuilt.add_extension(x509.UnrecognizedExtension(ext.oid, value), ext.critical)
        else:
            rebuilt = rebuilt.add_extension(ext.value, ext.critical)
    return rebuilt.sign(key, signature_hash(key))


def test_a_finding_cites_its_clause_and_edition() -> None:
    assert checks.check_certificate(_qwac("BE-NBB"), profiles.QWAC) == []
    [(code, message)] = checks.check_certificate(_qwac("NL-DNB"), profiles.QWAC)
    assert code == "qtsp.psd2.nca_id_mismatch"
    assert message.endswith("(ETSI TS 119 495 V1.8.1 clause 5.2.1 and 5.2.3)") and "NL-DNB" in message


def test_a_pds_on_plain_http_is_a_finding() -> None:
    [(code, message)] = checks.check_certificate(_with_http_pds(_qwac("BE-NBB")), profiles.QWAC)
    assert code == "qtsp.qc.pds" and "https" in message and "EN 319 412-5" in message


@pytest.mark.parametrize(("profile", "expected"), [
    (profiles.QWAC_BROWSER, {"qualified", "website", "psd2", "browser-qwac"}),
    (profiles.QWAC, {"qualified", "website", "psd2", "non-browser-qwac"}),
    (profiles.QWAC_CLIENT, {"qualified", "website", "psd2", "non-browser-qwac"}),
    (profiles.QSEALC, {"qualified", "seal", "psd2"}),
    (profiles.OCSP_RESPONDER, {"ocsp-responder"}), (profiles.ROOT_CA, set()),
])
def test_profiles_map_to_the_rules_about_them(profile: profiles.Profile, expected: set[str]) -> None:
    assert profile.rule_tags == expected
    at = dt.datetime(2027, 6, 1, tzinfo=UTC)
    codes = {r.code for r in rules.for_tags(profile.rule_tags, at)}
    # The CA/B schedule binds the browser hierarchy; the non-browser one has its own limit.
    assert ("qtsp.validity.tls_100_days" in codes) == ("browser-qwac" in expected)
    assert ("qtsp.non_browser.validity" in codes) == ("non-browser-qwac" in expected)
    assert ("qtsp.seal.server_auth" in codes) == ("seal" in expected)
