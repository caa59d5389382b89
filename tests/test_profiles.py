"""Per profile: decode what the real issuance path produced and check it field by field,
then let parties we did not write judge it: pkilint (CLI) and `openssl verify`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from qtsp.core import oids
from qtsp.core.psd2 import PSD2Attributes, decode_statement, encode_statement
from qtsp.core.qcstatements import pds_locations, qc_types, read_statements, semantics_identifier
from qtsp.services import issuance
from qtsp.services.context import Sandbox

SAMPLE_ORG = "PSDBE-NBB-0123456789"  # registered by the conftest fixture

BIN = Path(sys.executable).parent
# The reference's test vector: a real PSD2 QWAC's statement (PSP_AI, The Netherlands Bank, NL-DNB).
VECTOR = bytes.fromhex(
    "303D0606040081982702303330133011060704008198270103"
    "0C06" + b"PSP_AI".hex() + "0C14" + b"The Netherlands Bank".hex() + "0C06" + b"NL-DNB".hex()
)


def test_psd2_statement_der_equals_reference_vector() -> None:
    statement = encode_statement(PSD2Attributes(("PSP_AI",), "The Netherlands Bank", "NL-DNB"))
    assert statement.dump() == VECTOR
    assert decode_statement(type(statement).load(VECTOR)) == PSD2Attributes(("PSP_AI",), "The Netherlands Bank", "NL-DNB")


PUBLIC_BASE = "http://qtsp.example.eu:8080"  # a shared sandbox: a public host name, so every pkilint rule applies


@pytest.fixture(scope="module")
def _public_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from qtsp.services import register
    from qtsp.services.hierarchy import init_sandbox

    data_dir = tmp_path_factory.mktemp("public") / "qtsp-data"
    sb = init_sandbox(data_dir, base_url=PUBLIC_BASE)
    register.add_psp(sb, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")
    sb.engine.dispose()
    return data_dir


@pytest.fixture
def sandbox(_public_template: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """This module judges the profiles as a shared sandbox publishes them: under a public base URL."""
    from qtsp.services.context import open_sandbox

    target = tmp_path / "qtsp-data"
    shutil.copytree(_public_template, target)
    sb = open_sandbox(target)
    assert sb.config.base == PUBLIC_BASE
    yield sb
    sb.engine.dispose()


def _issue(sb: Sandbox, kind: str, **kw: object) -> issuance.Issued:
    return issuance.issue(sb, issuance.IssueRequest(kind, SAMPLE_ORG, generate_key="ecdsa-p256", **kw))  # type: ignore[arg-type]


def _ext(cert: x509.Certificate, cls: type) -> x509.Extension:  # type: ignore[type-arg]
    return cert.extensions.get_extension_for_class(cls)


def _subject(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]


@pytest.mark.parametrize("browser", [False, True], ids=["non-browser", "browser"])
def test_qwac_fields(sandbox: Sandbox, browser: bool) -> None:
    issued = _issue(sandbox, "qwac", domains=("api.example.com", "www.example.com"), browser=browser)
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
    assert ekus == ([ExtendedKeyUsageOID.SERVER_AUTH] if browser else [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
    policies = [p.policy_identifier for p in _ext(cert, x509.CertificatePolicies).value]
    assert policies == [oids.CABF_EV, oids.QEVCP_W, oids.QCP_W_PSD2]
    aia = {d.access_method: d.access_location.value for d in _ext(cert, x509.AuthorityInformationAccess).value}
    assert aia[x509.AuthorityInformationAccessOID.OCSP] == sandbox.config.ocsp_url
    assert aia[x509.AuthorityInformationAccessOID.CA_ISSUERS] == sandbox.config.ca_issuers_url("qwac-ca")
    crldp = _ext(cert, x509.CRLDistributionPoints).value
    assert crldp[0].full_name[0].value == sandbox.config.crl_url("qwac-ca")
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
    # BR validity, counted inclusively: 200 days for certificates issued 2026-03-15 .. 2027-03-14.
    span = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert span.total_seconds() + 1 == 200 * 86400
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


# --- parties we did not write -------------------------------------------------------------


def _pkilint(tool: str, args: list[str], cert: x509.Certificate, tmp_path: Path) -> str:
    path = tmp_path / "cert.der"
    path.write_bytes(cert.public_bytes(Encoding.DER))
    exe = BIN / tool
    assert exe.exists(), f"{tool} missing: pip install pkilint"
    result = subprocess.run([str(exe), "lint", *args, "-s", "ERROR", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{tool} {args}: {result.stdout}{result.stderr}"
    return result.stdout


@pytest.mark.parametrize(
    ("browser", "lint_type"),
    [(False, "QEVCP-W-PSD2-EIDAS-NON-BROWSER-FINAL-CERTIFICATE"), (True, "QEVCP-W-PSD2-EIDAS-FINAL-CERTIFICATE")],
)
def test_pkilint_qwac_clean(sandbox: Sandbox, tmp_path: Path, browser: bool, lint_type: str) -> None:
    cert = _issue(sandbox, "qwac", domains=("api.example.com",), browser=browser).certificate
    _pkilint("lint_etsi_cert", ["-t", lint_type], cert, tmp_path)


def test_loopback_default_differs_from_pkilint_only_in_its_own_service_urls(data_dir: Path, tmp_path: Path) -> None:
    """The default sandbox serves on 127.0.0.1: pkilint's only ERRORs are the internal-name findings on
    the AIA and CRL distribution point URLs we write (qtsp/lint.py waives exactly those)."""
    from qtsp.services.context import open_sandbox

    sb = open_sandbox(data_dir)
    assert sb.config.base.startswith("http://127.0.0.1:")
    for kind, kw, args in (("qwac", {"domains": ("api.example.com",)}, ["-t", "QEVCP-W-PSD2-EIDAS-NON-BROWSER-FINAL-CERTIFICATE"]),
                           ("qsealc", {}, ["-d"])):
        cert = _issue(sb, kind, **kw).certificate
        path = tmp_path / f"{kind}.der"
        path.write_bytes(cert.public_bytes(Encoding.DER))
        result = subprocess.run([str(BIN / "lint_etsi_cert"), "lint", *args, "-s", "ERROR", str(path)],
                                capture_output=True, text=True, timeout=120)
        located = [line for line in result.stdout.splitlines() if " @ " in line]
        codes = [line.strip() for line in result.stdout.splitlines() if "(ERROR)" in line or "(FATAL)" in line]
        assert result.returncode == len(codes) == len(located) == 3, result.stdout
        assert all(c.startswith(("cabf.internal_domain_name", "etsi.internal_domain_name")) and '"127.0.0.1"' in c
                   for c in codes), codes
        assert all(("authorityInfoAccessSyntax" in loc or "cRLDistributionPoints" in loc)
                   and loc.endswith("uniformResourceIdentifier") for loc in located), located
    sb.engine.dispose()


@pytest.mark.parametrize("qscd", [False, True])
def test_pkilint_qsealc_clean(sandbox: Sandbox, tmp_path: Path, qscd: bool) -> None:
    cert = _issue(sandbox, "qsealc", qscd=qscd).certificate
    _pkilint("lint_etsi_cert", ["-d"], cert, tmp_path)


def test_pkilint_ca_and_ocsp_certificates_clean(sandbox: Sandbox, tmp_path: Path) -> None:
    from ca_store import repositories as repo

    with sandbox.transaction() as session:
        cas = {ca.id: ca for ca in repo.list_cas(session)}
    load = x509.load_der_x509_certificate
    _pkilint("lint_cabf_serverauth_cert", ["-t", "ROOT-CA"], load(cas["root"].cert_der), tmp_path)
    _pkilint("lint_cabf_serverauth_cert", ["-t", "INTERNAL-UNCONSTRAINED-TLS-CA"], load(cas["qwac-ca"].cert_der), tmp_path)
    _pkilint("lint_cabf_serverauth_cert", ["-t", "NON-TLS-CA"], load(cas["qseal-ca"].cert_der), tmp_path)
    for ca_id in ("qwac-ca", "qseal-ca"):
        _pkilint("lint_cabf_serverauth_cert", ["-t", "OCSP-RESPONDER"], load(cas[ca_id].ocsp_responder_der), tmp_path)
        _pkilint("lint_pkix_cert", [], load(cas[ca_id].ocsp_responder_der), tmp_path) if (BIN / "lint_pkix_cert").exists() else None


def _openssl_verify(tmp_path: Path, root: x509.Certificate, chain: list[x509.Certificate], leaf: x509.Certificate, *extra: str) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing: apt-get install openssl"
    (tmp_path / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    (tmp_path / "untrusted.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    result = subprocess.run(
        [openssl, "verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "untrusted.pem"),
         *extra, str(tmp_path / "leaf.pem")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr


def test_openssl_verifies_every_issued_certificate(sandbox: Sandbox, tmp_path: Path) -> None:
    from ca_store import repositories as repo

    mtls = _issue(sandbox, "qwac", domains=("api.example.com",))
    browser = _issue(sandbox, "qwac", domains=("www.example.com",), browser=True)
    seal = _issue(sandbox, "qsealc")
    root = mtls.chain[1]
    _openssl_verify(tmp_path, root, mtls.chain[:1], mtls.certificate, "-purpose", "sslserver")
    _openssl_verify(tmp_path, root, mtls.chain[:1], mtls.certificate, "-purpose", "sslclient")
    _openssl_verify(tmp_path, root, browser.chain[:1], browser.certificate, "-purpose", "sslserver")
    _openssl_verify(tmp_path, root, seal.chain[:1], seal.certificate)
    with sandbox.transaction() as session:
        for ca in repo.list_cas(session):
            if ca.ocsp_responder_der:
                issuer = x509.load_der_x509_certificate(ca.cert_der)
                _openssl_verify(tmp_path, root, [issuer], x509.load_der_x509_certificate(ca.ocsp_responder_der))
    # and a certificate that does not chain is refused (the check can fail)
    bad = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "leaf.pem"), str(tmp_path / "root.pem")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
