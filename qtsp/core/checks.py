"""Our own certificate checks, for what pkilint does not cover or lags behind.

Each check returns (code, message) pairs; codes are stable, start with ``qtsp.`` and are rules of
``qtsp/core/rules.py``, whose clause and edition every message cites.
Run on the lint certificate before the CA key signs anything, and in tests on every
issued certificate.
"""

from __future__ import annotations

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import oids, two_qwac
from .errors import QTSPError
from .names import parse_org_id
from .profiles import Hierarchy, Profile
from .psd2 import NOT_APPLICABLE, PSD2Attributes, decode_statement
from .qcstatements import pds_locations, qc_types, read_statements, semantics_identifier
from .rules import problem
from .validity import NON_BROWSER_MAX_DAYS, ONE_SECOND

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
            problems.append(problem("qtsp.seal.qcp_w_psd2"))
        if ExtendedKeyUsageOID.SERVER_AUTH in _ekus(cert):
            problems.append(problem("qtsp.seal.server_auth"))
    if profile.ocsp_nocheck:
        problems += _check_ocsp_signer(cert)
    if profile.hierarchy is not None:
        problems += _check_hierarchy(cert, profile)
    if profile.is_two_qwac:
        problems += _check_two_qwac(cert)
    if list(policies) != list(profile.policies):
        problems.append(problem("qtsp.policies", f"certificate policies {[p.dotted_string for p in policies]} differ from the {profile.name} profile"))
    return problems


def _check_hierarchy(cert: x509.Certificate, profile: Profile) -> list[Problem]:
    """A QWAC carries its hierarchy's EKUs and no other; a non-browser one stays within its own validity
    limit. These stand in for pkilint's findings that qtsp/lint.py waives on non-browser QWACs."""
    problems: list[Problem] = []
    ekus = _ekus(cert)
    if profile.hierarchy is Hierarchy.BROWSER:
        if ekus != [ExtendedKeyUsageOID.SERVER_AUTH]:
            problems.append(problem("qtsp.browser.eku", f"EKU {[o.dotted_string for o in ekus]}: serverAuth only"))
        return problems
    if sorted(ekus, key=str) != sorted(profile.ext_key_usage, key=str) or ExtendedKeyUsageOID.CLIENT_AUTH not in ekus:
        wanted = [o.dotted_string for o in profile.ext_key_usage]
        problems.append(problem("qtsp.non_browser.eku", f"EKU {[o.dotted_string for o in ekus]}, the {profile.name} "
                                                        f"profile has {wanted}"))
    days = (cert.not_valid_after_utc - cert.not_valid_before_utc + ONE_SECOND).total_seconds() / 86400
    if days > NON_BROWSER_MAX_DAYS:
        problems.append(problem("qtsp.non_browser.validity", f"valid {days:g} days, more than {NON_BROWSER_MAX_DAYS}"))
    return problems


def _check_two_qwac(cert: x509.Certificate) -> list[Problem]:
    """TS 119 411-5 V2.1.1 4.2: id-kp-tls-binding alone, QNCP-w-gen without a CA/B TLS policy, a binding key."""
    problems: list[Problem] = []
    ekus = _ekus(cert)
    if ekus != [oids.KP_TLS_BINDING]:
        problems.append(problem("qtsp.two_qwac.eku", f"EKU {[o.dotted_string for o in ekus]}: id-kp-tls-binding only"))
    policies = _policies(cert)
    if oids.QNCP_W_GEN not in policies or two_qwac.CABF_TLS_POLICIES & set(policies):
        problems.append(problem("qtsp.two_qwac.policy", f"policies {[p.dotted_string for p in policies]}"))
    if not two_qwac.binding_key_ok(cert.public_key()):
        problems.append(problem("qtsp.two_qwac.key"))
    return problems


def _check_qc(cert: x509.Certificate, profile: Profile) -> list[Problem]:
    problems: list[Problem] = []
    ext = cert.extensions.get_extension_for_oid(oids.QC_STATEMENTS)
    if ext.critical:
        problems.append(problem("qtsp.qc.critical"))
    try:
        statements = read_statements(cert)
        attrs = psd2_attributes(cert)
    except QTSPError as exc:
        return problems + [problem("qtsp.qc.malformed", exc.detail)]
    if oids.QCS_COMPLIANCE not in statements:
        problems.append(problem("qtsp.qc.compliance_missing"))
    if oids.QCS_CC_LEGISLATION in statements:
        problems.append(problem("qtsp.qc.cc_legislation"))
    if (oids.QCS_SSCD in statements) != profile.qc_sscd:
        problems.append(problem("qtsp.qc.sscd", f"QcSSCD {'missing' if profile.qc_sscd else 'not allowed'} for {profile.name}"))
    if oids.QCS_TYPE not in statements or qc_types(statements[oids.QCS_TYPE]) != [profile.qc_type]:
        problems.append(problem("qtsp.qc.type", f"QcType must be exactly {profile.qc_type} for {profile.name}"))
    locations = pds_locations(statements[oids.QCS_PDS]) if oids.QCS_PDS in statements else []
    if not any(lang == "en" for _, lang in locations):
        problems.append(problem("qtsp.qc.pds", "QcPDS with an English entry is required"))
    elif not all(url.startswith("https://") for url, _ in locations):
        problems.append(problem("qtsp.qc.pds", "every QcPDS location is an https URL"))
    syntax = statements.get(oids.QCS_PKIX_SYNTAX_V2)
    if syntax is None or semantics_identifier(syntax) != oids.SEMANTICS_LEGAL:
        problems.append(problem("qtsp.qc.semantics"))
    if "psd2" in profile.tags:
        if attrs is None:
            problems.append(problem("qtsp.psd2.missing"))
        else:
            problems += _check_psd2_subject(cert, attrs)
    return problems


def _check_psd2_subject(cert: x509.Certificate, attrs: PSD2Attributes) -> list[Problem]:
    values = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    if len(values) != 1:
        return [problem("qtsp.psd2.org_id")]
    try:
        org_id = parse_org_id(str(values[0].value))
    except QTSPError as exc:
        return [problem("qtsp.psd2.org_id", exc.detail)]
    if attrs.nca_id == NOT_APPLICABLE:
        return []
    if org_id.nca_id is not None and org_id.nca_id != attrs.nca_id:
        return [problem("qtsp.psd2.nca_id_mismatch",
                        f"NCAId {attrs.nca_id} disagrees with organizationIdentifier {org_id.value}")]
    return []


def _check_ocsp_signer(cert: x509.Certificate) -> list[Problem]:
    problems: list[Problem] = []
    if _ekus(cert) != [ExtendedKeyUsageOID.OCSP_SIGNING]:
        problems.append(problem("qtsp.ocsp.eku"))
    try:
        ext = cert.extensions.get_extension_for_oid(oids.OCSP_NOCHECK)
    except x509.ExtensionNotFound:
        problems.append(problem("qtsp.ocsp.nocheck"))
    else:
        if ext.value.public_bytes() != b"\x05\x00":
            problems.append(problem("qtsp.ocsp.nocheck", "id-pkix-ocsp-nocheck value must be exactly 05 00"))
    return problems
