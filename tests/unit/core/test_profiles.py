"""Per profile: decode what the real issuance path produced and check it field by field. (pkilint's
command-line linters and `openssl verify` judge the same certificates in tests/system/core/test_profiles.py.)"""

from __future__ import annotations


import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qtsp.core import oids
from qtsp.core.psd2 import PSD2Attributes, decode_statement, encode_statement
from qtsp.core.qcstatements import pds_locations, qc_types, read_statements, semantics_identifier
from qtsp.services.context import Sandbox
from support.profiles import extension as _ext, issue_kind as _issue, subject_values as _subject

SAMPLE_ORG = "PSDBE-NBB-0123456789"  # registered by the conftest fixture

# The reference's test vector: a real PSD2 QWAC's statement (PSP_AI, The Netherlands Bank, NL-DNB).
VECTOR = bytes.fromhex(
    "303D0606040081982702303330133011060704008198270103"
    "0C06" + b"PSP_AI".hex() + "0C14" + b"The Netherlands Bank".hex() + "0C06" + b"NL-DNB".hex()
)


def test_psd2_statement_der_equals_reference_vector() -> None:
    statement = encode_statement(PSD2Attributes(("PSP_AI",), "The Netherlands Bank", "NL-DNB"))
    assert statement.dump() == VECTOR
    assert decode_statement(type(statement).load(VECTOR)) == PSD2Attributes(("PSP_AI",), "The Netherlands Bank", "NL-DNB")


@pytest.fixture
def sandbox(public_sandbox: Sandbox) -> Sandbox:
    """This module judges the profiles as a shared sandbox publishes them: under a public base URL
    (tests/conftest.py)."""
    return public_sandbox




SERVER, CLIENT = ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH
# purpose -> (issuing CA, EKUs, days): the browser hierarchy on the CA/B schedule (200 days for certificates
# issued 2026-03-15 .. 2027-03-14), the non-browser one under qwac_mtls_validity_days (398 by default).
PURPOSES = {"server": ("qwac-browser-ca", [SERVER], 200), "client": ("qwac-ca", [CLIENT], 398),
            "both": ("qwac-ca", [SERVER, CLIENT], 398)}


@pytest.mark.parametrize("purpose", list(PURPOSES))
def test_qwac_fields(sandbox: Sandbox, purpose: str) -> None:
    issued = _issue(sandbox, "qwac", domains=("api.example.com", "www.example.com"), purpose=purpose)
    ca_id, expected_ekus, days = PURPOSES[purpose]
    assert issued.issuer_id == ca_id
    cert = issued.certificate
    assert _subject(cert, NameOID.ORGANIZATION_IDENTIFIER) == [SAMPLE_ORG]
    assert _subject(cert, NameOID.ORGANIZATION_NAME) == ["Example Fintech SA"]
    assert _subject(cert, NameOID.COUNTRY_NAME) == ["BE"]
    assert _subject(cert, NameOID.LOCALITY_NAME) == ["Brussels"]
    assert _subject(cert, NameOID.BUSINESS_CATEGORY) == ["Private Organization"]
    assert _subject(cert, NameOID.JURISDICTION_COUNTRY_NAME) == ["BE"]
    assert _subject(cert, NameOID.SERIAL_NUMBER) == ["0123.456.789"]
    assert _subject(cert, NameOID.ORGANIZATIONAL_UNIT_NAME) == []
    assert _ext(cert, x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName) == ["api.example.com", "www.example.com"]
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.digital_signature and not ku.value.content_commitment and not ku.value.key_cert_sign
    ekus = list(_ext(cert, x509.ExtendedKeyUsage).value)
    assert ekus == expected_ekus
    policies = [p.policy_identifier for p in _ext(cert, x509.CertificatePolicies).value]
    assert policies == [oids.CABF_EV, oids.QEVCP_W, oids.QCP_W_PSD2]
    aia = {d.access_method: d.access_location.value for d in _ext(cert, x509.AuthorityInformationAccess).value}
    assert aia[x509.AuthorityInformationAccessOID.OCSP] == sandbox.config.ocsp_url
    assert aia[x509.AuthorityInformationAccessOID.CA_ISSUERS] == sandbox.config.ca_issuers_url(ca_id)
    crldp = _ext(cert, x509.CRLDistributionPoints).value
    assert crldp[0].full_name[0].value == sandbox.config.crl_url(ca_id)
    # cabfOrganizationIdentifier: PSD / BE / NBB-0123456789 (no "PSDBE-" again)
    cabf = cert.extensions.get_extension_for_oid(oids.CABF_ORGANIZATION_IDENTIFIER)
    assert not cabf.critical
    assert cabf.value.value == bytes.fromhex("3019" "1303") + b"PSD" + bytes.fromhex("1302") + b"BE" + bytes.fromhex("0C0E") + b"NBB-0123456789"
    qc_ext = cert.extensions.get_extension_for_oid(oids.QC_STATEMENTS)
    assert not qc_ext.critical
    statements = read_statements(cert)
    assert list(statements) == [oids.QCS_COMPLIANCE, oids.QCS_PDS, oids.QCS_TYPE, oids.QCS_PKIX_SYNTAX_V2, oids.PSD2_STATEMENT]
    assert qc_types(statements[oids.QCS_TYPE]) == [oids.QCT_WEB]
    assert ("https://qtsp.localtest.me/pds/pds-en.pdf", "en") in pds_locations(statements[oids.QCS_PDS])
    assert semantics_identifier(statements[oids.QCS_PKIX_SYNTAX_V2]) == oids.SEMANTICS_LEGAL
    assert decode_statement(statements[oids.PSD2_STATEMENT]) == PSD2Attributes(("PSP_AI", "PSP_PI"), "National Bank of Belgium", "BE-NBB")
    # Validity counted inclusively (RFC 5280 4.1.2.5).
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert span.total_seconds() + 1 == days * 86400
    assert cert.serial_number >= 1 << 64 and cert.serial_number.bit_length() <= 127
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.SubjectKeyIdentifier)  # BR 7.1.2.7.6: not recommended on subscribers
    assert _ext(cert, x509.AuthorityKeyIdentifier).value.key_identifier == _ext(issued.chain[0], x509.SubjectKeyIdentifier).value.digest


@pytest.mark.parametrize("qscd", [False, True], ids=["qcp-l", "qcp-l-qscd"])
def test_qsealc_fields(sandbox: Sandbox, qscd: bool) -> None:
    issued = _issue(sandbox, "qsealc", qscd=qscd, roles="PSP_AI")
    cert = issued.certificate
    assert issued.issuer_id == "qseal-ca"
    assert [a.oid for a in cert.subject] == [NameOID.COUNTRY_NAME, NameOID.ORGANIZATION_NAME, NameOID.ORGANIZATION_IDENTIFIER, NameOID.COMMON_NAME]
    ku = _ext(cert, x509.KeyUsage)
    assert ku.critical and ku.value.content_commitment and not ku.value.digital_signature
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.ExtendedKeyUsage)
    with pytest.raises(x509.ExtensionNotFound):
        _ext(cert, x509.SubjectAlternativeName)
    policies = [p.policy_identifier for p in _ext(cert, x509.CertificatePolicies).value]
    assert policies == [oids.QCP_L_QSCD if qscd else oids.QCP_L]
    assert oids.QCP_W_PSD2 not in policies
    statements = read_statements(cert)
    assert qc_types(statements[oids.QCS_TYPE]) == [oids.QCT_ESEAL]
    assert (oids.QCS_SSCD in statements) is qscd
    assert decode_statement(statements[oids.PSD2_STATEMENT]).roles == ("PSP_AI",)
    # The seal CA is kept out of the TLS hierarchy by its EKU.
    ca_ekus = list(_ext(issued.chain[0], x509.ExtendedKeyUsage).value)
    assert ExtendedKeyUsageOID.SERVER_AUTH not in ca_ekus


def test_ca_and_ocsp_responder_fields(sandbox: Sandbox) -> None:
    from ca_store import repositories as repo

    with sandbox.transaction() as session:
        cas = {ca.id: ca for ca in repo.list_cas(session)}
    root = x509.load_der_x509_certificate(cas["root"].cert_der)
    assert root.issuer == root.subject
    for ca_id in ("qwac-ca", "qseal-ca"):
        cert = x509.load_der_x509_certificate(cas[ca_id].cert_der)
        bc = _ext(cert, x509.BasicConstraints)
        assert bc.critical and bc.value.ca and bc.value.path_length == 0
        ku = _ext(cert, x509.KeyUsage).value
        assert ku.key_cert_sign and ku.crl_sign
        assert cert.issuer == root.subject
        assert _ext(cert, x509.CRLDistributionPoints).value[0].full_name[0].value == sandbox.config.crl_url("root")
        ocsp = x509.load_der_x509_certificate(cas[ca_id].ocsp_responder_der)
        assert ocsp.issuer == cert.subject
        assert list(_ext(ocsp, x509.ExtendedKeyUsage).value) == [ExtendedKeyUsageOID.OCSP_SIGNING]
        nocheck = ocsp.extensions.get_extension_for_oid(oids.OCSP_NOCHECK)
        assert nocheck.value.public_bytes() == b"\x05\x00"
        oku = _ext(ocsp, x509.KeyUsage)
        assert oku.critical and oku.value.digital_signature and not oku.value.key_cert_sign
        for absent in (x509.SubjectAlternativeName, x509.CRLDistributionPoints, x509.AuthorityInformationAccess):
            with pytest.raises(x509.ExtensionNotFound):
                _ext(ocsp, absent)
