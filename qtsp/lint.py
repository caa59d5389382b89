"""Lint before sign: pkilint in process (validators built once) plus our own PSD2 checks.

pkilint 0.13.3 lags TS 119 495 V1.8.1 in a few places. ``WAIVERS`` lists, for each such
place, the exact pkilint finding code that our own stricter check in ``core/checks.py``
replaces, and the clause that justifies it. Nothing else is ever waived: any other
ERROR or FATAL finding stops issuance.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from pkilint import etsi, finding_filter, loader, pkix
from pkilint.cabf import cabf_crl, serverauth
from pkilint.cabf.serverauth import serverauth_constants
from pkilint.etsi import etsi_constants
from pkilint.pkix import certificate as pkix_certificate
from pkilint.pkix import crl as pkix_crl
from pkilint.pkix import extension as pkix_extension
from pkilint.pkix import name as pkix_name
from pkilint.validation import ValidationFindingSeverity

from .core import checks
from .core.errors import Kind, QTSPError
from .core.keys import PrivateKey, PublicKey, generate_private_key, key_type_of
from .core import oids
from .core.profiles import Hierarchy, LintTarget, Profile
from .core.psd2 import PspRole


@dataclass(frozen=True)
class Waiver:
    code: str
    applies_when: str  # a role name or "NA" whose presence in the PSD2 statement triggers it
    reason: str


# Each entry: pkilint 0.13.3 rejects something TS 119 495 V1.8.1 allows; core/checks.py
# checks the same field against V1.8.1 and is never waived.
WAIVERS: tuple[Waiver, ...] = (
    Waiver(
        "etsi.ts_119_495.gen-5.2-2.invalid_psp_oid",
        "V1.8.1 role",
        "TS 119 495 V1.8.1 5.1 adds PSP_CB, PSP_PA, VOP_RS, VOP_VS; pkilint knows only PSP_AS/PI/AI/IC",
    ),
    Waiver(
        "etsi.ts_119_495.gen-5.2.3-2.invalid_structure",
        "NA",
        "TS 119 495 V1.8.1 5.2.2: holders of PSP_CB / PSP_PA carry NCAId 'NA'",
    ),
)

# The non-browser QWACs (two hierarchies, issue 16): pkilint's QEVCP-W-PSD2-EIDAS-NON-BROWSER type checks
# them as CA/B EV TLS certificates with two differences it means to make and, in 0.13.3, makes only in part:
# - validity: it drops the BR 6.3.2 397/398-day findings when QCP-w-psd2 is present (TS 119 495 OVR-6.1-3),
#   but not the findings of the schedule that ballot SC-081 added (200, 100, 47 days), which bind browser
#   hierarchies only. Waived under the same condition (QCP-w-psd2); core/checks.py holds the certificate to
#   validity.NON_BROWSER_MAX_DAYS instead (qtsp.non_browser.validity);
# - EKU: BR 7.1.2.7.10 wants serverAuth on every TLS subscriber certificate; a client-only mutual-TLS QWAC
#   (the qwac-client profile, clientAuth only) is no TLS server certificate. Waived for profiles without
#   serverAuth only; core/checks.py requires exactly the profile's EKUs, clientAuth among them
#   (qtsp.non_browser.eku).
NON_BROWSER_VALIDITY_CODES = frozenset(
    f"cabf.serverauth.certificate_validity_period_exceeds_{days}_days" for days in (200, 100, 47))
NON_BROWSER_CLIENT_EKU_CODE = "cabf.serverauth.subscriber.serverauth_eku_absent"
# The 2-QWAC (issue 18): pkilint 0.13.3 has no 2-QWAC type. Its QNCP-W-GEN legal-person type, the closest (EN 319
# 411-2 QNCP-w-gen, EN 319 412-3/-4 content), runs the CA/B TLS subscriber checks too, and BR 7.1.2.7.10 wants
# serverAuth; a 2-QWAC must not have it (TS 119 411-5 V2.1.1 4.2.2: id-kp-tls-binding only). That one finding is
# waived on 2-QWAC profiles only; core/two_qwac.py requires exactly id-kp-tls-binding instead (qtsp.two_qwac.eku).
TWO_QWAC_EKU_CODE = "cabf.serverauth.subscriber.serverauth_eku_absent"
V181_ROLES = frozenset({PspRole.PSP_CB, PspRole.PSP_PA, PspRole.VOP_RS, PspRole.VOP_VS})

# The one waiver that does not come from the PSD2 edition gap: a sandbox served on loopback (the
# default, so that `openssl ocsp -url` taken from a certificate works on a machine without DNS) puts
# http://127.0.0.1:<port>/ in the AIA, CRL distribution point and freshest-CRL URLs it writes itself.
# CA/B BR 7.1.2.11.1 / 7.1.4.3 forbid internal names, so pkilint reports each such URL; it is waived
# only there (never in a subjectAltName or a subject) and only for a loopback IP literal, which nothing
# but a local sandbox can mean. A sandbox shared with others sets base_url to a public name and gets
# the full check.
LOOPBACK_URL_CODES = frozenset({"cabf.internal_domain_name", "etsi.internal_domain_name"})
_SERVICE_URL_NODES = ("authorityInfoAccessSyntax", "cRLDistributionPoints", "freshestCRL")


@dataclass(frozen=True)
class Finding:
    code: str
    severity: str
    message: str | None

    def __str__(self) -> str:
        return f"{self.code} ({self.severity})" + (f": {self.message}" if self.message else "")


_BLOCKING = (ValidationFindingSeverity.FATAL, ValidationFindingSeverity.ERROR)


class Linter:
    """Builds each pkilint validator set once and reuses it (they are the slow part to create), and keeps
    the throwaway keys that lint copies are signed with. One per sandbox (``Sandbox.linter``) or ceremony."""

    def __init__(self) -> None:
        self._validators: dict[LintTarget | Any, tuple[Any, list[Any]]] = {}
        self._lock = threading.Lock()
        self._loader = loader.RFC5280CertificateDocumentLoader()
        self._keys: dict[str, PrivateKey] = {}
        self._arl: Any = None

    def key_for(self, public_key: PublicKey) -> PrivateKey:
        """A throwaway key of the issuer's type, made once per Linter; it never signs a real certificate."""
        key_type = key_type_of(public_key)
        with self._lock:
            if key_type not in self._keys:
                self._keys[key_type] = generate_private_key(key_type)
            return self._keys[key_type]

    def _validator_for(self, target: LintTarget, doc: Any) -> tuple[Any, list[Any]]:
        key: LintTarget | Any = target
        if target is LintTarget.ETSI_DETECT:
            key = etsi.determine_certificate_type(doc)
        with self._lock:
            if key not in self._validators:
                self._validators[key] = self._create(target, key)
            return self._validators[key]

    @staticmethod
    def _create(target: LintTarget, key: Any) -> tuple[Any, list[Any]]:
        if target is LintTarget.PKIX:
            validator = pkix_certificate.create_pkix_certificate_validator_container(
                pkix_certificate.create_decoding_validators(pkix_name.ATTRIBUTE_TYPE_MAPPINGS, pkix_extension.EXTENSION_MAPPINGS),
                [
                    pkix_certificate.create_issuer_validator_container([]),
                    pkix_certificate.create_validity_validator_container(),
                    pkix_certificate.create_subject_validator_container([]),
                    pkix_certificate.create_extensions_validator_container([]),
                    pkix_certificate.create_spki_validator_container([]),
                ],
            )
            return validator, []
        if target.name.startswith("ETSI"):
            cert_type = key if target is LintTarget.ETSI_DETECT else etsi_constants.CertificateType.from_option_str(target.value)
            validator = pkix_certificate.create_pkix_certificate_validator_container(
                etsi.create_decoding_validators(cert_type), etsi.create_validators(cert_type)
            )
            return validator, etsi.create_etsi_finding_filters(cert_type)
        cert_type = serverauth_constants.CertificateType[target.value]
        validator = pkix_certificate.create_pkix_certificate_validator_container(
            serverauth.create_decoding_validators(), serverauth.create_validators(cert_type)
        )
        return validator, serverauth.create_serverauth_finding_filters(cert_type)

    def pkilint_findings(self, der: bytes, target: LintTarget) -> list[Finding]:
        doc = self._loader.load_der_document(der, "certificate")
        validator, filters = self._validator_for(target, doc)
        results = validator.validate(doc.root)
        results, _ = finding_filter.filter_results(filters, results)
        return [
            Finding(fd.finding.code, fd.finding.severity.name, fd.message)
            for result in results
            for fd in result.finding_descriptions
            if not _loopback_service_url(fd.finding.code, result.node.path, fd.message)
        ]

    def blocking_findings(self, cert: x509.Certificate, profile: Profile) -> list[Finding]:
        """ERROR/FATAL findings of pkilint (less documented waivers) and of our own checks."""
        der = cert.public_bytes(Encoding.DER)
        findings = self.pkilint_findings(der, profile.lint)
        waived = _active_waivers(cert, profile)
        blocking = [
            f
            for f in findings
            if ValidationFindingSeverity[f.severity] in _BLOCKING and f.code not in waived
        ]
        blocking += [Finding(code, "ERROR", message) for code, message in checks.check_certificate(cert, profile)]
        return blocking

    def require_clean(self, cert: x509.Certificate, profile: Profile) -> None:
        findings = self.blocking_findings(cert, profile)
        if findings:
            raise QTSPError(
                Kind.LINT,
                f"lint refused the {profile.name} certificate: " + "; ".join(str(f) for f in findings),
                findings=[str(f) for f in findings],
            )

    def arl_findings(self, der: bytes) -> list[str]:
        """ERROR/FATAL findings of pkilint's CRL linter, BR profile, ARL type (what ``lint_crl -t ARL -p BR`` runs)."""
        kind = pkix_crl.CertificateRevocationListType.ARL
        with self._lock:
            if self._arl is None:
                self._arl = pkix_crl.create_pkix_crl_validator_container(
                    [pkix.create_attribute_decoder(pkix_name.ATTRIBUTE_TYPE_MAPPINGS),
                     pkix.create_extension_decoder(pkix_extension.EXTENSION_MAPPINGS)],
                    [pkix_crl.create_issuer_validator_container([]),
                     pkix_crl.create_validity_validator_container([cabf_crl.create_validity_period_validator(kind)]),
                     pkix_crl.create_extensions_validator_container([]), cabf_crl.CabfCrlReasonCodeAllowlistValidator(kind)])
            validator = self._arl
        doc = loader.RFC5280CertificateListDocumentLoader().load_der_document(der, "arl")
        return [fd.finding.code for result in validator.validate(doc.root) for fd in result.finding_descriptions
                if fd.finding.severity in _BLOCKING]


def _loopback_service_url(code: str, path: str, message: str | None) -> bool:
    """A finding about our own loopback service URL (see LOOPBACK_URL_CODES)."""
    if code not in LOOPBACK_URL_CODES or not path.endswith("uniformResourceIdentifier") or not message:
        return False
    if not any(node in path for node in _SERVICE_URL_NODES):
        return False
    quoted = re.search(r'"([^"]*)"\s*$', message)  # pkilint: 'Internal domain name: "127.0.0.1"'
    if quoted is None:
        return False
    host = quoted.group(1).strip("[]")
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _non_browser_waivers(cert: x509.Certificate, profile: Profile) -> set[str]:
    if profile.hierarchy is not Hierarchy.NON_BROWSER:
        return set()
    active: set[str] = set()
    if x509.ExtendedKeyUsageOID.SERVER_AUTH not in profile.ext_key_usage:
        active.add(NON_BROWSER_CLIENT_EKU_CODE)
    try:
        policies = [p.policy_identifier for p in cert.extensions.get_extension_for_class(x509.CertificatePolicies).value]
    except x509.ExtensionNotFound:
        policies = []
    if oids.QCP_W_PSD2 in policies:
        active |= NON_BROWSER_VALIDITY_CODES
    return active


def _active_waivers(cert: x509.Certificate, profile: Profile) -> set[str]:
    if "psd2" not in profile.tags:
        return set()
    active = _non_browser_waivers(cert, profile)
    if profile.is_two_qwac:
        active.add(TWO_QWAC_EKU_CODE)
    attrs = checks.psd2_attributes(cert)
    if attrs is None:
        return active
    if V181_ROLES & set(attrs.roles):
        active.add(WAIVERS[0].code)
    if attrs.nca_id == "NA":
        active.add(WAIVERS[1].code)
    return active
