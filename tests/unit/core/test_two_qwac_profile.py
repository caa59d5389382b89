"""The 2-QWAC profile (ETSI TS 119 411-5 V2.1.1 4.2) as data that refuses what a 2-QWAC must not be, and our own
checks (qtsp/core/checks.py ``qtsp.two_qwac.*``) on certificates built from it and changed in one way. pkilint's
view of it: tests/system/relying_party/test_binding_site.py."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qtsp.core import builder, checks, oids, profiles, rules
from qtsp.core.errors import QTSPError
from qtsp.core.names import parse_org_id
from qtsp.core.psd2 import PSD2Attributes, PspRole
from qtsp.core.qcstatements import QcSpec

NOW = dt.datetime(2027, 1, 10, tzinfo=dt.timezone.utc)


@pytest.mark.parametrize(("change", "fragment"), [
    ({"ext_key_usage": (oids.KP_TLS_BINDING, ExtendedKeyUsageOID.SERVER_AUTH)}, "id-kp-tls-binding only"),
    ({"policies": (oids.QNCP_W,)}, "QNCP-w-gen"),
    ({"san": False}, "SAN"),
])
def test_the_profile_refuses_what_a_2qwac_is_not(change: dict[str, object], fragment: str) -> None:
    with pytest.raises(QTSPError, match=fragment):
        replace(profiles.TWO_QWAC, **change)  # type: ignore[arg-type]


def test_it_is_a_website_certificate_but_not_a_tls_one() -> None:
    p = profiles.TWO_QWAC
    assert p.is_two_qwac and p.hierarchy is None
    assert rules.TWO_QWAC in p.rule_tags and rules.WEBSITE not in p.rule_tags  # no CA/B validity row binds it
    assert rules.validity_rule(p.rule_tags, NOW) is None and p.validity_days == 365
    assert {r.code for r in rules.for_tags(p.rule_tags, NOW)} >= {"qtsp.two_qwac.eku", "qtsp.two_qwac.policy",
                                                                  "qtsp.two_qwac.key", "qtsp.qc.type"}
    assert not profiles.TWO_QWAC_ISSUING_CA.is_two_qwac and profiles.TWO_QWAC_ISSUING_CA.ext_key_usage == (oids.KP_TLS_BINDING,)


def _certificate(key: ec.EllipticCurvePrivateKey, *, eku: list[x509.ObjectIdentifier] | None = None,
                 policies: list[x509.ObjectIdentifier] | None = None) -> x509.Certificate:
    ca_key = ec.generate_private_key(ec.SECP384R1())
    issuer = builder.IssuerInfo(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "CA")]), ca_key.public_key(),
                                NOW + dt.timedelta(days=3650), "http://ca.example/ca.der", "http://ca.example/ocsp",
                                "http://ca.example/ca.crl")
    org = parse_org_id("PSDBE-NBB-0123456789")
    data = builder.SubjectData("Example Fintech SA", "BE", org, "Brussels", registration_number="0123.456.789",
                               common_name="www.example.eu")
    qc = QcSpec(qc_type=oids.QCT_WEB, pds=(("https://pds.example/en.pdf", "en"),),
                psd2=PSD2Attributes((PspRole.PSP_AI,), "National Bank of Belgium", "BE-NBB"))
    tbs = builder.build(profiles.TWO_QWAC, subject=builder.subject_name(profiles.TWO_QWAC.shape, data),
                        public_key=key.public_key(), serial=12345678901234567, now=NOW, issuer=issuer,
                        dns_names=("www.example.eu",), org_id=org, qc=qc)
    cert = tbs.sign(ca_key, hashes.SHA384())
    if eku is None and policies is None:
        return cert
    b = (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.issuer).public_key(cert.public_key())
         .serial_number(cert.serial_number).not_valid_before(cert.not_valid_before_utc)
         .not_valid_after(cert.not_valid_after_utc))
    for ext in cert.extensions:
        value = ext.value
        if eku is not None and isinstance(value, x509.ExtendedKeyUsage):
            value = x509.ExtendedKeyUsage(eku)
        if policies is not None and isinstance(value, x509.CertificatePolicies):
            value = x509.CertificatePolicies([x509.PolicyInformation(o, None) for o in policies])
        b = b.add_extension(value, ext.critical)
    return b.sign(ca_key, hashes.SHA384())


def _codes(cert: x509.Certificate) -> set[str]:
    return {code for code, _ in checks.check_certificate(cert, profiles.TWO_QWAC)}


def test_our_checks_pass_the_profile_and_catch_each_change() -> None:
    p256 = ec.generate_private_key(ec.SECP256R1())
    assert _codes(_certificate(p256)) == set()
    assert "qtsp.two_qwac.eku" in _codes(_certificate(p256, eku=[oids.KP_TLS_BINDING, ExtendedKeyUsageOID.SERVER_AUTH]))
    assert "qtsp.two_qwac.policy" in _codes(_certificate(p256, policies=[oids.CABF_OV, oids.QNCP_W_GEN]))
    assert "qtsp.two_qwac.key" in _codes(_certificate(ec.generate_private_key(ec.SECP384R1())))
