"""Lint before sign: pkilint findings stop issuance; waivers are exactly the documented ones."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from qtsp.core import builder, oids, profiles
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import generate_private_key, signature_hash
from qtsp.core.names import parse_org_id
from qtsp.core.psd2 import PSD2Attributes
from qtsp.core.qcstatements import QcSpec
from qtsp.core.types import Serial
from qtsp.lint import WAIVERS, Linter
from qtsp.services import issuance, register
from qtsp.services.context import Sandbox

NOW = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)
PDS = (("https://qtsp.localtest.me/pds/pds-en.pdf", "en"),)

LINTER = Linter()  # one for the module: its pkilint validators are slow to build


def _qwac(org: str, attrs: PSD2Attributes, *, base: str = "http://qtsp.localtest.me:8080",
          dns_names: tuple[str, ...] = ("api.example.com",)) -> x509.Certificate:
    ca_key = generate_private_key("ecdsa-p256")
    ca_name = x509.Name([x509.NameAttribute(x509.NameOID.COUNTRY_NAME, "BE"), x509.NameAttribute(x509.NameOID.ORGANIZATION_NAME, "T"),
                         x509.NameAttribute(x509.NameOID.COMMON_NAME, "T CA")])
    issuer = builder.IssuerInfo(ca_name, ca_key.public_key(), NOW + dt.timedelta(days=3650), f"{base}/ca/x.der", f"{base}/ocsp", f"{base}/crl/x.crl")
    org_id = parse_org_id(org)
    subject = builder.subject_name(profiles.SubjectShape.QWAC_EV, builder.SubjectData(
        "Example Fintech SA", "BE", org_id=org_id, locality="Brussels", registration_number="0123"))
    tbs = builder.build(profiles.QWAC, subject=subject, public_key=generate_private_key("ecdsa-p256").public_key(),
                        serial=Serial((1 << 64) + 1), now=NOW, issuer=issuer, dns_names=dns_names, org_id=org_id,
                        qc=QcSpec(oids.QCT_WEB, PDS, attrs))
    return tbs.sign(ca_key, signature_hash(ca_key))


def test_clean_qwac_has_no_blocking_findings() -> None:
    cert = _qwac("PSDBE-NBB-1", PSD2Attributes(("PSP_AI",), "National Bank of Belgium", "BE-NBB"))
    assert LINTER.blocking_findings(cert, profiles.QWAC) == []


def test_our_check_catches_nca_id_disagreeing_with_org_id() -> None:
    cert = _qwac("PSDBE-NBB-1", PSD2Attributes(("PSP_AI",), "The Netherlands Bank", "NL-DNB"))
    codes = [f.code for f in LINTER.blocking_findings(cert, profiles.QWAC)]
    assert "qtsp.psd2.nca_id_mismatch" in codes


@pytest.mark.parametrize("base", ["http://10.0.0.1:8080", "http://192.168.1.5", "http://qtsp.internal:8080"])
def test_pkilint_error_blocks_internal_urls(base: str) -> None:
    cert = _qwac("PSDBE-NBB-1", PSD2Attributes(("PSP_AI",), "National Bank of Belgium", "BE-NBB"), base=base)
    with pytest.raises(QTSPError) as err:
        LINTER.require_clean(cert, profiles.QWAC)
    assert err.value.kind is Kind.LINT and "internal_domain_name" in err.value.detail


@pytest.mark.parametrize("base", ["http://127.0.0.1:8080", "http://127.0.0.2:9090", "http://[::1]:8080"])
def test_loopback_service_urls_are_the_one_internal_name_waived(base: str) -> None:
    """A sandbox on loopback (the default) names http://127.0.0.1:<port>/ in AIA and CRLDP: waived there only."""
    cert = _qwac("PSDBE-NBB-1", PSD2Attributes(("PSP_AI",), "National Bank of Belgium", "BE-NBB"), base=base)
    assert LINTER.blocking_findings(cert, profiles.QWAC) == []


def test_loopback_waiver_never_covers_a_subject_alt_name() -> None:
    cert = _qwac("PSDBE-NBB-1", PSD2Attributes(("PSP_AI",), "National Bank of Belgium", "BE-NBB"),
                 base="http://127.0.0.1:8080", dns_names=("api.example.com", "gateway.internal"))
    codes = [f.code for f in LINTER.blocking_findings(cert, profiles.QWAC)]
    assert "cabf.internal_domain_name" in codes


@pytest.mark.parametrize("role", ["VOP_RS", "VOP_VS"])
def test_v181_roles_waive_only_the_documented_pkilint_code(role: str) -> None:
    cert = _qwac("PSDBE-NBB-1", PSD2Attributes((role,), "National Bank of Belgium", "BE-NBB"))
    linter = Linter()
    raw = {f.code for f in linter.pkilint_findings(cert.public_bytes(Encoding.DER), profiles.QWAC.lint)
           if f.severity in ("ERROR", "FATAL")}
    assert raw == {WAIVERS[0].code}, "pkilint 0.13.3 rejects the V1.8.1 role; if this changes, drop the waiver"
    assert linter.blocking_findings(cert, profiles.QWAC) == []


def test_waivers_do_not_apply_without_a_v181_role() -> None:
    # An invalid role OID is refused by our own decoder, waiver or not.
    with pytest.raises(QTSPError):
        PSD2Attributes(("PSP_XX",), "National Bank of Belgium", "BE-NBB")


def test_central_bank_seal_with_na_is_issued(sandbox: Sandbox) -> None:
    register.add_psp(sandbox, org_id="VATBE-0203201340", name="Central Bank Example", roles="PSP_CB", locality="Brussels")
    issued = issuance.issue(sandbox, issuance.IssueRequest("qsealc", "VATBE-0203201340", generate_key="ecdsa-p256"))
    from qtsp.core.checks import psd2_attributes

    assert psd2_attributes(issued.certificate) == PSD2Attributes(("PSP_CB",), "NA", "NA")


def test_profiles_refuse_inconsistent_definitions() -> None:
    from dataclasses import replace

    with pytest.raises(QTSPError):
        replace(profiles.QSEALC, policies=(oids.QCP_L, oids.QCP_W_PSD2))
    with pytest.raises(QTSPError):
        replace(profiles.QWAC, qc_sscd=True)
    with pytest.raises(QTSPError):
        replace(profiles.OCSP_RESPONDER, ext_key_usage=(x509.ExtendedKeyUsageOID.OCSP_SIGNING, x509.ExtendedKeyUsageOID.SERVER_AUTH))
