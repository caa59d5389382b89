"""pkilint over whatever ``qtsp lint`` is given: a certificate (the linter set chosen from the certificate),
a CRL (RFC 5280 and the CA/B BR profile, as ``lint_crl -p BR`` runs it) or an OCSP response (RFC 6960, as
``lint_ocsp_response`` runs it). Our own rules for CRLs and OCSP responses are in
``qtsp.relying_party.lint_crl`` / ``lint_ocsp``; the CLI reports both, pkilint's under its own codes.

Findings come back as ``(code, severity, message)`` with pkilint's severity names (FATAL, ERROR, WARNING,
NOTICE, INFO); pkilint cannot be imported by the relying-party package (it stays light), so this module,
beside ``qtsp.lint``, is where it runs.
"""

from __future__ import annotations

import threading
from importlib.metadata import version
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from .core.profiles import LintTarget
from .core import oids
from .lint import NON_BROWSER_CLIENT_EKU_CODE, NON_BROWSER_VALIDITY_CODES, V181_ROLES, WAIVERS, Linter

__all__ = ["PKILINT", "certificate_findings", "crl_findings", "ocsp_findings"]

PKILINT = f"pkilint {version('pkilint')}"
_lock = threading.Lock()
_linter: Linter | None = None
_validators: dict[str, Any] = {}


def _extension(cert: x509.Certificate, kind: Any) -> Any:
    try:
        return cert.extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None


def _certificate_target(cert: x509.Certificate) -> LintTarget:
    """A CA: the CA/B root linter for a root, RFC 5280 for the rest; an OCSP responder: its CA/B type;
    everything else: pkilint's ETSI type detection (QWAC, QSealC as a legal-person certificate, ...)."""
    bc = _extension(cert, x509.BasicConstraints)
    eku = _extension(cert, x509.ExtendedKeyUsage)
    if bc is not None and bc.ca:
        return LintTarget.CABF_ROOT if cert.subject == cert.issuer else LintTarget.PKIX
    if eku is not None and list(eku) == [ExtendedKeyUsageOID.OCSP_SIGNING]:
        return LintTarget.CABF_OCSP
    if eku is not None and ExtendedKeyUsageOID.CLIENT_AUTH in eku and oids.QCP_W_PSD2 in _policies(cert):
        return LintTarget.ETSI_QWAC_NON_BROWSER  # a mutual-TLS QWAC: browser TLS leaves are serverAuth only
    return LintTarget.ETSI_DETECT


def _policies(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    policies = _extension(cert, x509.CertificatePolicies)
    return [p.policy_identifier for p in policies] if policies is not None else []


def _waivers(cert: x509.Certificate, target: LintTarget) -> dict[str, str]:
    """The waivers of qtsp.lint, where this certificate meets their condition: code -> why. pkilint 0.13.3
    lags TS 119 495 V1.8.1 (WAIVERS), and applies the browser TLS schedule and EKU to non-browser
    (mutual-TLS) QWACs. Reported as info, not as errors."""
    from .core import checks

    out: dict[str, str] = {}
    if target is LintTarget.ETSI_QWAC_NON_BROWSER:
        why = ("a non-browser QWAC (QCP-w-psd2, clientAuth): the ballot SC-081 schedule binds browser hierarchies "
               "only (TS 119 495 OVR-6.1-3)")
        out.update(dict.fromkeys(NON_BROWSER_VALIDITY_CODES, why))
        eku = _extension(cert, x509.ExtendedKeyUsage)
        if eku is not None and ExtendedKeyUsageOID.SERVER_AUTH not in eku:
            out[NON_BROWSER_CLIENT_EKU_CODE] = "a client-only mutual-TLS QWAC is no TLS server certificate (BR 7.1.2.7.10)"
    try:
        attrs = checks.psd2_attributes(cert)
    except Exception:  # an unreadable statement: no waiver, pkilint's finding stands  # noqa: BLE001
        return out
    if attrs is None:
        return out
    if V181_ROLES & set(attrs.roles):
        out[WAIVERS[0].code] = WAIVERS[0].reason
    if attrs.nca_id == "NA":
        out[WAIVERS[1].code] = WAIVERS[1].reason
    return out


def certificate_findings(der: bytes) -> tuple[str, list[tuple[str, str, str]]]:
    """(the linter set used, findings)."""
    global _linter
    cert = x509.load_der_x509_certificate(der)
    target = _certificate_target(cert)
    with _lock:
        if _linter is None:
            _linter = Linter()
        linter = _linter
    waived = _waivers(cert, target)
    out = []
    for f in linter.pkilint_findings(der, target):
        if f.code in waived:
            out.append((f.code, "INFO", f"waived: {waived[f.code]} ({f.severity} in pkilint: {f.message or ''})"))
        else:
            out.append((f.code, f.severity, f.message or ""))
    return target.value, out


def _crl_validator(arl: bool) -> Any:
    from pkilint import pkix
    from pkilint.cabf import cabf_crl
    from pkilint.pkix import crl as pkix_crl
    from pkilint.pkix import extension as pkix_extension
    from pkilint.pkix import name as pkix_name

    key = "arl" if arl else "crl"
    with _lock:
        if key not in _validators:
            kind = pkix_crl.CertificateRevocationListType.ARL if arl else pkix_crl.CertificateRevocationListType.CRL
            _validators[key] = pkix_crl.create_pkix_crl_validator_container(
                [pkix.create_attribute_decoder(pkix_name.ATTRIBUTE_TYPE_MAPPINGS),
                 pkix.create_extension_decoder(pkix_extension.EXTENSION_MAPPINGS)],
                [pkix_crl.create_issuer_validator_container([]),
                 pkix_crl.create_validity_validator_container([cabf_crl.create_validity_period_validator(kind)]),
                 pkix_crl.create_extensions_validator_container([]), cabf_crl.CabfCrlReasonCodeAllowlistValidator(kind)])
        return _validators[key]


def _ocsp_validator() -> Any:
    from pkilint import pkix
    from pkilint.pkix import extension as pkix_extension
    from pkilint.pkix import name as pkix_name
    from pkilint.pkix import ocsp as pkix_ocsp

    with _lock:
        if "ocsp" not in _validators:
            _validators["ocsp"] = pkix_ocsp.create_pkix_ocsp_response_validator_container(
                [pkix_ocsp.create_response_decoder(), pkix.create_attribute_decoder(pkix_name.ATTRIBUTE_TYPE_MAPPINGS),
                 pkix.create_extension_decoder(pkix_extension.EXTENSION_MAPPINGS)], [])
        return _validators["ocsp"]


def _run(validator: Any, doc: Any) -> list[tuple[str, str, str]]:
    return [(fd.finding.code, fd.finding.severity.name, fd.message or "")
            for result in validator.validate(doc.root) for fd in result.finding_descriptions]


def crl_findings(der: bytes, *, arl: bool) -> list[tuple[str, str, str]]:
    """pkilint's CRL linter, BR profile, type CRL (subscriber) or ARL (CA certificates)."""
    from pkilint import loader

    doc = loader.RFC5280CertificateListDocumentLoader().load_der_document(der, "arl" if arl else "crl")
    return _run(_crl_validator(arl), doc)


def ocsp_findings(der: bytes) -> list[tuple[str, str, str]]:
    from pkilint import loader

    doc = loader.RFC6960OCSPResponseDocumentLoader().load_der_document(der, "ocsp-response")
    return _run(_ocsp_validator(), doc)
