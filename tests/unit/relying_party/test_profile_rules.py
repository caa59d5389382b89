"""Every profile rule, judged on certificates this project does not issue (tests/support/foreign_pki.py): the
correct QWAC, QSealC and 2-QWAC and the other allowed forms are accepted with no error finding, and each
broken variant is rejected with its rule id and the clause (document, edition, clause) in the finding's
source. The correct certificate of the same kind is the positive test of each rule: it must not carry it.

Outside judges: pkilint, run through its own API (not our bridge), reports the same defect for the variants
it has a rule for; ``openssl verify`` agrees with our path on the foreign chain and refuses a 2-QWAC as a TLS
server certificate."""

from __future__ import annotations

import subprocess
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from qtsp.relying_party import trusted_list_from_anchors, validate
from qtsp.relying_party.validator import Verdict
from support.external import find_openssl
from support.foreign_pki import NOW, VALID, VARIANT, VARIANTS, ForeignPKI, Spec, Variant

EXPECTED_TYPE = {"qwac": "qwac", "browser-qwac": "qwac", "qsealc": "qsealc", "qsealc-qscd": "qsealc", "two-qwac": "2-qwac",
                 "qwac-v181-roles": "qwac", "qsealc-central-bank": "qsealc", "qsealc-unspecified": "qsealc",
                 "qwac-rsa-key-encipherment": "qwac", "qsealc-non-repudiation-and-signature": "qsealc",
                 "qwac-client-only": "qwac-client", "qwac-pds-two-languages": "qwac"}


@pytest.fixture(scope="module")
def pki() -> ForeignPKI:
    return ForeignPKI()


def judge(pki: ForeignPKI, cert: x509.Certificate, purpose: str | None = None, **kw: object) -> Verdict:
    anchors = trusted_list_from_anchors([pki.root], NOW)
    return validate(cert, trusted_list=anchors, at=NOW, intermediates=[pki.ca], purpose=purpose, revocation="off", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(VALID))
def test_a_correct_foreign_certificate_is_accepted(pki: ForeignPKI, name: str) -> None:
    verdict = judge(pki, pki.issue(VALID[name]))
    assert verdict.accepted, [f.as_dict() for f in verdict.findings if f.is_error]
    assert [f for f in verdict.findings if f.is_error] == [] and verdict.reasons == []
    assert verdict.certificate_type == EXPECTED_TYPE[name]


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_each_broken_variant_is_rejected_with_its_rule_and_clause(pki: ForeignPKI, variant: Variant) -> None:
    verdict = judge(pki, pki.issue(variant.spec), variant.purpose)
    assert not verdict.accepted
    matching = [f for f in verdict.findings if f.rule == variant.rule]
    assert matching, (variant.rule, [f.as_dict() for f in verdict.findings])
    assert any(variant.clause in f.source and f.is_error for f in matching), [f.source for f in matching]
    assert variant.rule in verdict.codes
    # the positive half: the correct certificate of the same kind does not break this rule
    correct = {"qwac": Spec.qwac(), "qsealc": Spec.qsealc(), "2-qwac": Spec.two_qwac()}[variant.spec.kind]
    assert variant.rule not in [f.rule for f in judge(pki, pki.issue(correct), variant.purpose).findings]


def test_what_the_issue_found_missed_is_caught_and_a_2qwac_accepted(pki: ForeignPKI) -> None:
    """Issue 17: a QSealC with the PSD2 website policy, a QWAC without cabfOrganizationIdentifier, empty
    RolesOfPSP, QcPDS on http and QcSSCD on a QWAC were accepted, a valid 2-QWAC rejected."""
    for name, rule in (("qsealc-with-psd2-website-policy", "qcp-w-psd2-on-seal"),
                       ("qwac-without-cabf-org-id", "cabf-org-id-missing"), ("empty-roles-of-psp", "psd2-roles-empty"),
                       ("qcpds-on-http", "qc-pds-not-https"), ("qcsscd-on-qwac", "qc-sscd-on-website")):
        assert judge(pki, pki.issue(VARIANT[name].spec)).codes == [rule], name
    two_qwac = judge(pki, pki.issue(Spec.two_qwac()))
    assert two_qwac.accepted and two_qwac.certificate_type == two_qwac.purpose == "2-qwac"
    assert judge(pki, pki.issue(Spec.two_qwac()), "2-qwac").accepted


def test_a_given_purpose_overrides_what_the_certificate_says(pki: ForeignPKI) -> None:
    seal = pki.issue(Spec.qsealc())
    verdict = judge(pki, seal, "qwac")
    assert verdict.certificate_type == "qsealc" and verdict.purpose == "qwac" and not verdict.accepted
    assert {"qctype-mismatch", "eku-server-auth-missing", "policy-missing"} <= set(verdict.codes)


def test_a_certificate_that_says_nothing_is_of_unknown_type_and_rejected(pki: ForeignPKI) -> None:
    blank = pki.issue(replace(Spec.qsealc(), policies=(), qc=None))
    verdict = judge(pki, blank)
    assert verdict.certificate_type == "unknown" and not verdict.accepted
    assert "certificate-type-unknown" in verdict.codes and "not-qualified" in verdict.codes


def test_a_finding_never_repeats(pki: ForeignPKI) -> None:
    verdict = judge(pki, pki.issue(VARIANT["qwac-ec-key-encipherment"].spec))
    assert len(verdict.findings) == len(set(verdict.findings))


# --- pkilint as the outside judge -----------------------------------------------------------------

# The variants pkilint 0.13.3 has a rule for, and its finding code (from pkilint's own validators).
PKILINT_AGREES = {
    "qsealc-with-psd2-website-policy": "etsi.ts_119_495.ovr-6.1-3.prohibited_psd2_policy_oid_present",
    "qwac-without-cabf-org-id": "cabf.serverauth.organization_identifier_extension_absent",
    "qwac-cabf-org-id-repeats-psd": "cabf.serverauth.organization_identifier_mismatched_value",
    "empty-roles-of-psp": "etsi.ts_119_495.gen-5.2.2-1.roles_of_psp_empty",
    "role-name-lower-case": "etsi.ts_119_495.gen-5.2-2.invalid_psp_role",
    "ncaid-with-underscore": "etsi.ts_119_495.gen-5.2.3-2.invalid_structure",
    "qcpds-on-http": "etsi.en_319_412_5.gen-4.3.4.url_scheme_not_https",
    "qcsscd-on-qwac": "etsi.en_319_412_5.qcs-5.01.qc_sscd_qualified_statement_present",
    "qc-statements-critical": "etsi.en_319_412_5.qcs-4.1-02.qcstatements_extension_is_critical",
    "qctype-eseal-on-qwac": "etsi.en_319_412_5.gen-4.2.3.qc_type_mismatch",
    "ev-without-business-category": "cabf.ev_guidelines.business_category_attribute_absent",
    "qsealc-without-cn": "etsi.en_319_412_3.leg-4.2.1-2.common_name_attribute_absent",
    "browser-qwac-365-days": "cabf.serverauth.certificate_validity_period_exceeds_200_days",
    "ocsp-url-on-https": "cabf.serverauth.aia_location_uri_not_http",
}


def _pkilint_codes(cert: x509.Certificate) -> set[str]:
    """pkilint's ERROR/FATAL codes, as `lint_etsi_cert lint -d` would print them (detected type)."""
    from pkilint import etsi, finding_filter, loader
    from pkilint.pkix import certificate as pkix_certificate

    doc = loader.RFC5280CertificateDocumentLoader().load_der_document(cert.public_bytes(Encoding.DER), "c")
    cert_type = etsi.determine_certificate_type(doc)
    validator = pkix_certificate.create_pkix_certificate_validator_container(
        etsi.create_decoding_validators(cert_type), etsi.create_validators(cert_type))
    results, _ = finding_filter.filter_results(etsi.create_etsi_finding_filters(cert_type), validator.validate(doc.root))
    return {fd.finding.code for r in results for fd in r.finding_descriptions if fd.finding.severity.name in ("ERROR", "FATAL")}


@pytest.mark.parametrize("name", sorted(PKILINT_AGREES))
def test_pkilint_reports_the_same_defect(pki: ForeignPKI, name: str) -> None:
    cert = pki.issue(VARIANT[name].spec)
    assert PKILINT_AGREES[name] in _pkilint_codes(cert)
    verdict = judge(pki, cert, VARIANT[name].purpose, pkilint=True)
    assert PKILINT_AGREES[name] in {f.rule for f in verdict.findings}  # through the bridge, beside ours
    assert verdict.codes == [f.rule for f in verdict.findings if f.is_error and not f.source.startswith("pkilint")]


def test_pkilint_one_edition_behind_is_overridden_and_says_why(pki: ForeignPKI) -> None:
    """pkilint 0.13.3 refuses the V1.8.1 roles and the 'NA' NCA of a central bank; our rule decides."""
    for name in ("qwac-v181-roles", "qsealc-central-bank"):
        cert = pki.issue(VALID[name])
        assert "etsi.ts_119_495.gen-5.2-2.invalid_psp_oid" in _pkilint_codes(cert)
        verdict = judge(pki, cert, pkilint=True)
        assert verdict.accepted, [f.as_dict() for f in verdict.findings if f.is_error]
        why = [f for f in verdict.findings if f.rule == "pkilint-superseded"]
        assert why and all(f.severity == "info" for f in why)
        assert any("ETSI TS 119 495 V1.8.1 5.1" in f.source and "invalid_psp_oid" in f.message for f in why)


def test_a_pkilint_error_our_rules_miss_decides(pki: ForeignPKI) -> None:
    """An EV subject in the wrong RDN order: no rule of ours, a CA/B rule pkilint holds. It rejects, and the
    reason is pkilint's (its source says so)."""
    spec = Spec.qwac()
    cert = pki.issue(replace(spec, subject=tuple(reversed(spec.subject))))
    assert judge(pki, cert).accepted  # our rules alone
    verdict = judge(pki, cert, pkilint=True)
    assert not verdict.accepted and verdict.codes
    decided = [f for f in verdict.findings if f.is_error]
    assert all(f.source.startswith("pkilint 0.13.3 lint_etsi_cert") for f in decided)


# --- openssl as the outside judge of the path -----------------------------------------------------


def test_openssl_agrees_on_the_foreign_chain(pki: ForeignPKI, tmp_path) -> None:  # type: ignore[no-untyped-def]
    root, ca = pki.write_cas(tmp_path)
    qwac, two_qwac = pki.write(tmp_path, "qwac", pki.issue(Spec.qwac())), pki.write(tmp_path, "2qwac", pki.issue(Spec.two_qwac()))
    base = [find_openssl(), "verify", "-x509_strict", "-attime", str(int(NOW.timestamp())), "-CAfile", str(root),
            "-untrusted", str(ca)]
    ok = subprocess.run([*base, "-purpose", "sslserver", str(qwac)], capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert judge(pki, pki.issue(Spec.qwac())).path[-1] == pki.root.subject.rfc4514_string()
    refused = subprocess.run([*base, "-purpose", "sslserver", str(two_qwac)], capture_output=True, text=True, timeout=60)
    assert refused.returncode != 0  # a 2-QWAC is no TLS server certificate, and ours says the same:
    assert "eku-tls-binding-missing" not in judge(pki, pki.issue(Spec.two_qwac())).codes
    assert "eku-server-auth-missing" in judge(pki, pki.issue(Spec.two_qwac()), "qwac").codes
    anywhere = subprocess.run([*base, str(two_qwac)], capture_output=True, text=True, timeout=60)
    assert anywhere.returncode == 0, anywhere.stdout + anywhere.stderr  # its chain itself is sound
