"""Our own certificate checks, for what pkilint does not cover or lags behind.

Each check returns (code, message) pairs; codes are stable and start with ``qtsp.``.
Run on the lint certificate before the CA key signs anything, and in tests on every
issued certificate.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import oids
from .errors import QTSPError
from .names import parse_org_id
from .profiles import Profile
from .psd2 import NOT_APPLICABLE, PSD2Attributes, decode_statement
from .qcstatements import pds_locations, qc_types, read_statements, semantics_identifier

Problem = tuple[str, str]


def psd2_attributes(cert: x509.Certificate) -> PSD2Attributes | None:
    try:
        statements = read_statements(cert)
    except QTSPError:
        return None
    statement = statements.get(oids.PSD2_STATEMENT)
    return None if statement is None else decode_statement(statement)


def _policies(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return []
    return [p.policy_identifier for p in ext.value]


def _ekus(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return []


def check_certificate(cert: x509.Certificate, profile: Profile) -> list[Problem]:
    problems: list[Problem] = []
    if profile.qc_type is not None:
        problems += _check_qc(cert, profile)
    policies = _policies(cert)
    if profile.qc_type == oids.QCT_ESEAL:
        if oids.QCP_W_PSD2 in policies:
            problems.append(("qtsp.seal.qcp_w_psd2", "QCP-w-psd2 is for website certificates, never on a seal (TS 119 495 5.3)"))
        if ExtendedKeyUsageOID.SERVER_AUTH in _ekus(cert):
            problems.append(("qtsp.seal.server_auth", "a QSealC must not carry serverAuth (EN 319 412-3)"))
    if profile.ocsp_nocheck:
        problems += _check_ocsp_signer(cert)
    if list(policies) != list(profile.policies):
        problems.append(("qtsp.policies", f"certificate policies {policies} differ from the {profile.name} profile"))
    return problems


def _check_qc(cert: x509.Certificate, profile: Profile) -> list[Problem]:
    problems: list[Problem] = []
    ext = cert.extensions.get_extension_for_oid(oids.QC_STATEMENTS)
    if ext.critical:
        problems.append(("qtsp.qc.critical", "qcStatements must be non-critical (EN 319 412-5 4.1)"))
    try:
        statements = read_statements(cert)
        attrs = psd2_attributes(cert)
    except QTSPError as exc:
        return problems + [("qtsp.qc.malformed", exc.detail)]
    if oids.QCS_COMPLIANCE not in statements:
        problems.append(("qtsp.qc.compliance_missing", "QcCompliance is required (EN 319 412-5 QCS-4.1-01)"))
    if oids.QCS_CC_LEGISLATION in statements:
        problems.append(("qtsp.qc.cc_legislation", "QcCClegislation must not appear on an EU qualified certificate"))
    if (oids.QCS_SSCD in statements) != profile.qc_sscd:
        problems.append(("qtsp.qc.sscd", f"QcSSCD {'missing' if profile.qc_sscd else 'not allowed'} for {profile.name}"))
    if oids.QCS_TYPE not in statements or qc_types(statements[oids.QCS_TYPE]) != [profile.qc_type]:
        problems.append(("qtsp.qc.type", f"QcType must be exactly {profile.qc_type} for {profile.name}"))
    if oids.QCS_PDS not in statements or not any(lang == "en" for _, lang in pds_locations(statements[oids.QCS_PDS])):
        problems.append(("qtsp.qc.pds", "QcPDS with an English entry is required (EN 319 412-5 QCS-5-02)"))
    syntax = statements.get(oids.QCS_PKIX_SYNTAX_V2)
    if syntax is None or semantics_identifier(syntax) != oids.SEMANTICS_LEGAL:
        problems.append(("qtsp.qc.semantics", "semantics identifier Legal is required (EN 319 412-1 5.1.3)"))
    if "psd2" in profile.tags:
        if attrs is None:
            problems.append(("qtsp.psd2.missing", "the PSD2 QCStatement is required (TS 119 495 5.1)"))
        else:
            problems += _check_psd2_subject(cert, attrs)
    return problems


def _check_psd2_subject(cert: x509.Certificate, attrs: PSD2Attributes) -> list[Problem]:
    values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    if len(values) != 1:
        return [("qtsp.psd2.org_id", "exactly one organizationIdentifier is required")]
    try:
        org_id = parse_org_id(str(values[0].value))
    except QTSPError as exc:
        return [("qtsp.psd2.org_id", exc.detail)]
    if attrs.nca_id == NOT_APPLICABLE:
        return []
    if org_id.nca_id is not None and org_id.nca_id != attrs.nca_id:
        return [
            (
                "qtsp.psd2.nca_id_mismatch",
                f"NCAId {attrs.nca_id} disagrees with organizationIdentifier {org_id.value} (TS 119 495 5.2.1)",
            )
        ]
    return []


def _check_ocsp_signer(cert: x509.Certificate) -> list[Problem]:
    problems: list[Problem] = []
    if _ekus(cert) != [ExtendedKeyUsageOID.OCSP_SIGNING]:
        problems.append(("qtsp.ocsp.eku", "an OCSP responder has id-kp-OCSPSigning as its only EKU"))
    try:
        ext = cert.extensions.get_extension_for_oid(oids.OCSP_NOCHECK)
    except x509.ExtensionNotFound:
        problems.append(("qtsp.ocsp.nocheck", "id-pkix-ocsp-nocheck is required (RFC 6960 4.2.2.2.1)"))
    else:
        if ext.value.public_bytes() != b"\x05\x00":
            problems.append(("qtsp.ocsp.nocheck", "id-pkix-ocsp-nocheck value must be exactly 05 00"))
    return problems
