"""pkilint underneath the validator: its findings on the certificate as ``Finding``s, source
``pkilint <version> <certificate type>``, loaded on first use (``validate(..., pkilint=True)``) so that
``import qtsp.relying_party`` does not pay for it.

pkilint 0.13.3 is one edition behind in places. Where the current text says otherwise, our rule decides and
pkilint's finding is replaced by an info finding (rule ``pkilint-superseded``) naming the clause that wins:

- the V1.8.1 roles (PSP_CB, PSP_PA, VOP_RS, VOP_VS): pkilint knows only PSP_AS/PI/AI/IC and Unspecified
  (TS 119 495 V1.8.1 5.1); our ``role-oid-mismatch`` still holds every name to its OID;
- NCAName = NCAId = "NA" for PSP_CB / PSP_PA holders (TS 119 495 V1.8.1 5.2.3); ``ncaid-malformed`` checks it;
- mutual-TLS QWACs (clientAuth, a non-browser hierarchy): the SC-081 schedule (200/100/47 days) binds
  browser-trusted hierarchies only; ``validity-too-long`` holds them to 398 days. A client-only one has no
  serverAuth by design (TS 119 495 5.3 note 3);
- http://127.0.0.1 or [::1] in AIA and CRL URLs: only a sandbox on loopback writes them (BR 7.1.2.11.1 is
  about public names; a shared sandbox uses one and gets the full check).

pkilint's NOTICE and INFO findings are left out; its WARNINGs are warnings, ERROR and FATAL errors.
"""

from __future__ import annotations

import ipaddress
import re
import threading
from importlib.metadata import version
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID
from pkilint import etsi, finding_filter, loader
from pkilint.etsi.etsi_constants import CertificateType
from pkilint.pkix import certificate as pkix_certificate

from ..core import oids
from ..core.psd2 import NA_ROLES, NOT_APPLICABLE, ROLE_BY_OID, PspRole, decode_unchecked
from .findings import ERROR, INFO, WARNING, Finding
from .profile.facts import Facts
from .profile.sources import BR, TS_495, cite

__all__ = ["PKILINT", "pkilint_findings"]

PKILINT = f"pkilint {version('pkilint')}"
_SEVERITY = {"FATAL": ERROR, "ERROR": ERROR, "WARNING": WARNING}
V181_ROLES = frozenset({PspRole.PSP_CB, PspRole.PSP_PA, PspRole.VOP_RS, PspRole.VOP_VS})
ROLE_CODES = frozenset({"etsi.ts_119_495.gen-5.2-2.invalid_psp_oid"})
NA_CODES = frozenset({"etsi.ts_119_495.gen-5.2.3-2.invalid_structure", "etsi.ts_119_495.gen-5.2.3-2.invalid_iso_country",
                      "etsi.ts_119_495.gen-5.2.3-2.invalid_ca_identifier"})
SC081_CODES = frozenset(f"cabf.serverauth.certificate_validity_period_exceeds_{d}_days" for d in (200, 100, 47))
CLIENT_ONLY_CODE = "cabf.serverauth.subscriber.serverauth_eku_absent"
LOOPBACK_CODES = frozenset({"cabf.internal_domain_name", "etsi.internal_domain_name"})
_SERVICE_NODES = ("authorityInfoAccessSyntax", "cRLDistributionPoints", "freshestCRL")

_lock = threading.Lock()
_validators: dict[CertificateType, tuple[Any, list[Any]]] = {}
_loader = loader.RFC5280CertificateDocumentLoader()


def _validator(cert_type: CertificateType) -> tuple[Any, list[Any]]:
    with _lock:
        if cert_type not in _validators:  # building one takes ~0.1 s; reused for every certificate of its type
            _validators[cert_type] = (
                pkix_certificate.create_pkix_certificate_validator_container(
                    etsi.create_decoding_validators(cert_type), etsi.create_validators(cert_type)),
                etsi.create_etsi_finding_filters(cert_type))
        return _validators[cert_type]


def _superseded(facts: Facts) -> dict[str, str]:
    """pkilint code -> why our rule decides instead, for this certificate."""
    out: dict[str, str] = {}
    statement = facts.statement(oids.PSD2_STATEMENT)
    if statement is not None:
        try:
            roles, nca_name, nca_id = decode_unchecked(statement)
        except Exception:  # noqa: BLE001  # our own rule reports an unreadable statement
            roles, nca_name, nca_id = [], "", ""
        known = [ROLE_BY_OID.get(o) for o, n in roles if ROLE_BY_OID.get(o) is not None and ROLE_BY_OID[o].value == n]
        if known and len(known) == len(roles) and V181_ROLES & set(known):
            out.update(dict.fromkeys(ROLE_CODES, f"{cite(TS_495, '5.1')} adds PSP_CB, PSP_PA, VOP_RS and VOP_VS, which "
                                                 "pkilint 0.13.3 does not know; rule role-oid-mismatch checks each name "
                                                 "against its OID"))
        if known and all(r in NA_ROLES for r in known) and nca_id == nca_name == NOT_APPLICABLE:
            out.update(dict.fromkeys(NA_CODES, f"{cite(TS_495, '5.2.3')}: PSP_CB / PSP_PA holders carry NCAName = "
                                               "NCAId = 'NA'; rule ncaid-malformed checks it"))
    if ExtendedKeyUsageOID.CLIENT_AUTH in facts.ekus:
        out.update(dict.fromkeys(SC081_CODES, f"{cite(BR, '6.3.2')}: the SC-081 schedule binds browser-trusted "
                                              "hierarchies; a mutual-TLS QWAC is held to 398 days by rule validity-too-long"))
        if ExtendedKeyUsageOID.SERVER_AUTH not in facts.ekus:
            out[CLIENT_ONLY_CODE] = f"{cite(TS_495, '5.3 (note 3)')}: a mutual-TLS client QWAC asserts clientAuth only"
    return out


def _loopback_url(code: str, path: str, message: str | None) -> bool:
    if code not in LOOPBACK_CODES or not message or not any(node in path for node in _SERVICE_NODES):
        return False
    quoted = re.search(r'"([^"]*)"\s*$', message)  # pkilint: 'Internal domain name: "127.0.0.1"'
    try:
        return quoted is not None and ipaddress.ip_address(quoted.group(1).strip("[]")).is_loopback
    except ValueError:
        return False


def _cert_type(doc: Any, facts: Facts) -> CertificateType:
    detected = etsi.determine_certificate_type(doc)
    if detected is CertificateType.QEVCP_W_PSD2_EIDAS_FINAL_CERTIFICATE and ExtendedKeyUsageOID.CLIENT_AUTH in facts.ekus:
        return CertificateType.QEVCP_W_PSD2_EIDAS_NON_BROWSER_FINAL_CERTIFICATE  # the mutual-TLS hierarchy
    return detected


def pkilint_findings(cert: x509.Certificate, facts: Facts, purpose: str) -> list[Finding]:
    """pkilint's WARNING and above on ``cert``, those the current edition overrides turned into info findings."""
    try:
        doc = _loader.load_der_document(cert.public_bytes(Encoding.DER), "certificate")
        cert_type = _cert_type(doc, facts)
        validator, filters = _validator(cert_type)
        results, _ = finding_filter.filter_results(filters, validator.validate(doc.root))
    except Exception as exc:  # noqa: BLE001  # pkilint cannot decode it at all: that is the finding
        return [Finding("pkilint.decoding-failed", PKILINT, ERROR, f"pkilint cannot decode the certificate "
                        f"({type(exc).__name__}: {str(exc)[:160]})")]
    source = f"{PKILINT} lint_etsi_cert {cert_type.to_option_str}"
    superseded = _superseded(facts)
    out: list[Finding] = []
    for result in results:
        for fd in result.finding_descriptions:
            code, severity = fd.finding.code, _SEVERITY.get(fd.finding.severity.name)
            if severity is None:
                continue
            message = fd.message or code
            if code in superseded:
                finding = Finding("pkilint-superseded", superseded[code], INFO, f"{source} reports {code}; {superseded[code]}")
            elif _loopback_url(code, result.node.path, fd.message):
                finding = Finding("pkilint-superseded", cite(BR, "7.1.2.11.1"), INFO,
                                  f"{source} reports {code} for a loopback service URL ({message}): a sandbox on this machine")
            else:
                finding = Finding(code, source, severity, message)
            if finding not in out:
                out.append(finding)
    return out
