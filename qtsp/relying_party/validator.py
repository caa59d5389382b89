"""The reference validator (issue 7): what a bank's PSD2 validator should conclude about a certificate.

``validate(cert, ...)`` returns a ``Verdict``: accepted or not, with every reason found, not just the
first. In order:

1. time: the certificate's validity at ``at`` (an argument: the caller's clock, or a time travelled to);
2. the path: from the certificate through the intermediates given, up to a CA/QC service *granted* in
   the (XAdES-verified) Trusted List, each signature checked, each CA's basicConstraints, keyUsage and
   validity checked, unknown critical extensions refused (RFC 5280 4.2);
3. revocation of every certificate below the anchor: OCSP first (a nonce sent, the response's
   signature, responder authorisation, CertID, freshness and nonce checked), the CRL as fallback
   (signature, issuer, freshness); no usable answer from either is a reason to reject;
4. the qualified and PSD2 content: QcCompliance, QcType against the purpose, the Trusted List's
   additional service information (ForWebSiteAuthentication / ForeSeals), the PSD2 statement (each
   role's name against its OID, NCAId form, NCAId against organizationIdentifier, required roles);
5. the purpose's key usage and extended key usage.

The HTTP, OCSP and CRL client is ``revocation.py``, the Trusted List reader ``trusted_list.py``. None of
them shares code with the issuing side beyond ``qtsp.core`` (the ASN.1 structure of the PSD2 statement,
the Trusted List's URIs); the scenario catalogue's manifest is checked against the validator, and the
validator against pyhanko, OpenSSL and Java PKIX, in tests/test_validation.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from ..core import oids
from ..core.errors import Kind, QTSPError
from ..core.psd2 import NCA_ID_RE, NOT_APPLICABLE, ROLE_BY_OID, ROLES, decode_unchecked
from ..core.qcstatements import qc_types, read_statements
from ..core.trusted_list import CA_QC, FOR_ESEALS, FOR_WEB, GRANTED, ListedService, ParsedList
from .revocation import Fetcher, crl_status, extension, issued_by, ocsp_status

__all__ = ["PURPOSES", "Reason", "Verdict", "anchors", "validate"]

PURPOSES = ("qwac", "qwac-client", "qsealc", "2-qwac")
MAX_PATH = 6
# RFC 5280 4.2: a validator must reject a certificate with a critical extension it does not process.
PROCESSED_CRITICAL = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.POLICY_CONSTRAINTS, ExtensionOID.INHIBIT_ANY_POLICY,
})


@dataclass(frozen=True)
class Reason:
    code: str
    message: str


@dataclass
class Verdict:
    accepted: bool
    purpose: str
    at: dt.datetime
    reasons: list[Reason] = field(default_factory=list)
    path: list[str] = field(default_factory=list)  # subjects, certificate first, anchor last
    anchor: str | None = None  # the Trusted List service the path ends at
    revocation: list[dict[str, Any]] = field(default_factory=list)
    qualified: dict[str, Any] = field(default_factory=dict)

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "accept" if self.accepted else "reject", "purpose": self.purpose, "at": self.at.isoformat(),
                "reasons": [{"code": r.code, "message": r.message} for r in self.reasons], "path": self.path,
                "anchor": self.anchor, "revocation": self.revocation, "qualified": self.qualified}


def anchors(tl: ParsedList) -> list[ListedService]:
    return [s for s in tl.services if s.service_type == CA_QC and s.status == GRANTED and _parsable(s.certificate)]


# --- checks ---------------------------------------------------------------------------------------


def _parsable(cert: x509.Certificate) -> bool:
    """cryptography parses extensions on first access; a malformed one is a verdict, never a crash."""
    try:
        cert.extensions  # noqa: B018
        return True
    except ValueError:
        return False


def _unknown_critical(cert: x509.Certificate) -> list[str]:
    return [e.oid.dotted_string for e in cert.extensions if e.critical and e.oid not in PROCESSED_CRITICAL]


class _Run:
    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict

    def fail(self, code: str, message: str) -> None:
        if all(r.code != code or r.message != message for r in self.verdict.reasons):
            self.verdict.reasons.append(Reason(code, message))


def _build_path(run: _Run, cert: x509.Certificate, intermediates: Sequence[x509.Certificate],
                services: list[ListedService]) -> tuple[list[x509.Certificate], ListedService | None]:
    """Certificate first; the anchor's service, or None with the reason recorded."""
    path = [cert]
    while len(path) <= MAX_PATH:
        current = path[-1]
        named = [s for s in services if s.certificate.subject == current.issuer]
        for service in named:
            if issued_by(current, service.certificate):
                return path, service
        candidates = [c for c in intermediates if c.subject == current.issuer and c not in path]
        parent = next((c for c in candidates if issued_by(current, c)), None)
        if parent is None:
            if named or candidates:
                run.fail("bad-signature", f"the signature on '{current.subject.rfc4514_string()}' does not verify with "
                         f"the key of its issuer '{current.issuer.rfc4514_string()}'")
            elif current is cert:
                run.fail("no-path", f"the issuer '{current.issuer.rfc4514_string()}' is neither a Trusted List "
                         "service nor among the intermediates given (a missing intermediate)")
            else:
                run.fail("issuer-not-trusted", f"the path ends at '{current.subject.rfc4514_string()}', which is not "
                         "a granted CA/QC service of the Trusted List")
            return path, None
        path.append(parent)
    run.fail("no-path", f"no path to a Trusted List service within {MAX_PATH} certificates")
    return path, None


def _check_times(run: _Run, cert: x509.Certificate, at: dt.datetime, *, what: str = "the certificate") -> None:
    if at < cert.not_valid_before_utc:
        run.fail("not-yet-valid", f"{what} is valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z")
    if at > cert.not_valid_after_utc:
        run.fail("expired", f"{what} expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z")


def _check_ca(run: _Run, ca: x509.Certificate, at: dt.datetime, below: int) -> None:
    name = f"the CA '{ca.subject.rfc4514_string()}'"
    bc = extension(ca, ExtensionOID.BASIC_CONSTRAINTS)
    ku = extension(ca, ExtensionOID.KEY_USAGE)
    if bc is None or not bc.ca:
        run.fail("ca-invalid", f"{name} is not a CA (basicConstraints)")
    elif bc.path_length is not None and below > bc.path_length:
        run.fail("ca-invalid", f"{name} allows {bc.path_length} CA certificates below it, the path has {below}")
    if ku is not None and not ku.key_cert_sign:
        run.fail("ca-invalid", f"{name} may not sign certificates (keyUsage)")
    if at < ca.not_valid_before_utc or at > ca.not_valid_after_utc:
        run.fail("ca-invalid", f"{name} is not valid at {at:%Y-%m-%d %H:%M:%S}Z")
    for oid in _unknown_critical(ca):
        run.fail("unknown-critical-extension", f"{name} has the critical extension {oid}, which is not processed")


def _revocation(run: _Run, fetcher: Fetcher, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime,
                what: str) -> None:
    problems = []
    for method in (ocsp_status, crl_status):
        try:
            result = method(fetcher, cert, issuer, at)
        except QTSPError as exc:
            problems.append(exc.detail)
            continue
        except (ValueError, TypeError) as exc:  # an answer too odd for the parsers: unusable, never a crash
            problems.append(f"{method.__name__.strip('_').upper()}: unusable answer ({type(exc).__name__})")
            continue
        result["certificate"] = what
        if problems:
            result["fallback_after"] = problems
        run.verdict.revocation.append(result)
        if result["status"] == "revoked":
            run.fail("revoked", f"{what} was revoked at {result['revoked_at']} ({result['reason']}), says the "
                     f"{result['source'].upper()}")
        return
    run.verdict.revocation.append({"certificate": what, "status": "unavailable", "problems": problems})
    run.fail("revocation-unknown", f"no usable revocation status for {what}: " + "; ".join(problems))


# --- qualified and PSD2 content -------------------------------------------------------------------


def _org_id(cert: x509.Certificate) -> str | None:
    attrs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)
    return str(attrs[0].value) if attrs else None


def _qualified(run: _Run, cert: x509.Certificate, purpose: str, anchor: ListedService | None,
               require_roles: Sequence[str]) -> None:
    try:
        _qualified_statements(run, cert, purpose, anchor, require_roles)
    except (ValueError, TypeError, KeyError) as exc:  # statements that parse as DER but not as their types
        run.fail("not-qualified", f"unreadable QCStatements ({type(exc).__name__}: {str(exc)[:120]})")


def _qualified_statements(run: _Run, cert: x509.Certificate, purpose: str, anchor: ListedService | None,
                          require_roles: Sequence[str]) -> None:
    info = run.verdict.qualified
    try:
        statements = read_statements(cert)
    except QTSPError as exc:
        run.fail("not-qualified", f"no readable QCStatements: {exc.detail}")
        return
    info["qc_compliance"] = oids.QCS_COMPLIANCE in statements
    if not info["qc_compliance"]:
        run.fail("not-qualified", "no QcCompliance statement: not an EU qualified certificate")
    wanted = oids.QCT_ESEAL if purpose == "qsealc" else oids.QCT_WEB
    types = qc_types(statements[oids.QCS_TYPE]) if oids.QCS_TYPE in statements else []
    info["qc_types"] = types
    if types != [wanted]:
        label = {oids.QCT_WEB: "web", oids.QCT_ESEAL: "eseal", oids.QCT_ESIGN: "esign"}
        run.fail("qctype-mismatch", f"QcType is {', '.join(label.get(t, t) for t in types) or 'absent'}; a "
                 f"{purpose} must be of type {label[wanted]} only (EN 319 412-5 4.2.3)")
    if anchor is not None:
        needed = FOR_ESEALS if purpose == "qsealc" else FOR_WEB
        if needed not in anchor.additional_info:
            run.fail("tl-service-purpose", f"the Trusted List service '{anchor.name}' is not qualified "
                     f"{needed.rsplit('/', 1)[1]}")
    psd2 = statements.get(oids.PSD2_STATEMENT)
    if psd2 is None:
        run.fail("missing-psd2-statement", "no PSD2 QCStatement (TS 119 495 5.1): no roles, no NCA")
        return
    try:
        roles, nca_name, nca_id = decode_unchecked(psd2)
    except QTSPError as exc:
        run.fail("missing-psd2-statement", exc.detail)
        return
    info["psd2"] = {"roles": [name for _oid, name in roles], "nca_name": nca_name, "nca_id": nca_id}
    for oid, name in roles:
        known = ROLE_BY_OID.get(oid)
        if known != name:
            run.fail("role-oid-mismatch", f"PSD2 role name {name!r} does not match its OID {oid} "
                     f"({known.value if known is not None else 'no known role'!r}; TS 119 495 5.1)")
    if nca_id != NOT_APPLICABLE and not NCA_ID_RE.fullmatch(nca_id):
        run.fail("ncaid-malformed", f"NCAId {nca_id!r} is not <country>-<2-8 upper-case letters> (TS 119 495 5.2.3)")
    org_id = _org_id(cert)
    if org_id and org_id.startswith("PSD") and NCA_ID_RE.fullmatch(nca_id):
        named = f"{org_id[3:5]}-{org_id[6:].split('-', 1)[0]}"
        if named != nca_id:
            run.fail("ncaid-mismatch", f"organizationIdentifier {org_id} names NCA {named}, the PSD2 statement {nca_id}")
    held = {name for oid, name in roles if ROLE_BY_OID.get(oid) == name}
    for role in require_roles:
        if role not in ROLES:
            raise QTSPError(Kind.MALFORMED, f"unknown PSD2 role {role!r}; known: {', '.join(ROLES)}")
        if role not in held:
            run.fail("role-not-authorised", f"the certificate does not carry the role {role}")


def _usage(run: _Run, cert: x509.Certificate, purpose: str) -> None:
    ku = extension(cert, ExtensionOID.KEY_USAGE)
    eku = extension(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    if purpose == "qsealc":
        if ku is None or not (ku.content_commitment or ku.digital_signature):
            run.fail("key-usage", "a seal's keyUsage needs nonRepudiation or digitalSignature (EN 319 412-3)")
        return
    if purpose == "2-qwac":  # TS 119 411-5: signs TLS certificate bindings, never a TLS handshake
        if ku is None or not ku.digital_signature:
            run.fail("key-usage", "a 2-QWAC's keyUsage needs digitalSignature: it signs TLS certificate bindings")
        if eku is None or oids.KP_TLS_BINDING not in eku:
            run.fail("eku-tls-binding-missing", "extendedKeyUsage lacks id-kp-tls-binding (0.4.0.194115.1.0): "
                     "not a 2-QWAC (TS 119 411-5)")
        elif any(o in eku for o in (ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH)):
            run.fail("eku-tls-on-2qwac", "a 2-QWAC must not be usable for TLS (serverAuth/clientAuth in its "
                     "extendedKeyUsage; TS 119 411-5)")
        return
    if ku is None or not ku.digital_signature:
        run.fail("key-usage", "keyUsage lacks digitalSignature: the key cannot authenticate a TLS handshake")
    wanted = ExtendedKeyUsageOID.CLIENT_AUTH if purpose == "qwac-client" else ExtendedKeyUsageOID.SERVER_AUTH
    if eku is None or wanted not in eku:
        code = "eku-client-auth-missing" if purpose == "qwac-client" else "eku-server-auth-missing"
        run.fail(code, f"extendedKeyUsage lacks {wanted._name}: not for use as a TLS {purpose == 'qwac-client' and 'client' or 'server'}")


# --- the entry point ------------------------------------------------------------------------------


def validate(cert: x509.Certificate, *, trusted_list: ParsedList, at: dt.datetime,
             intermediates: Sequence[x509.Certificate] = (), purpose: str = "qwac", require_roles: Sequence[str] = (),
             fetcher: Fetcher | None = None) -> Verdict:
    """The verdict on ``cert`` for ``purpose`` at ``at``, with every reason found. ``at`` is the caller's
    (a validator has no clock of its own to read: the CLI passes the sandbox's, tests a fixed time)."""
    if purpose not in PURPOSES:
        raise QTSPError(Kind.MALFORMED, f"purpose must be one of {', '.join(PURPOSES)}")
    fetcher = fetcher or Fetcher()
    verdict = Verdict(False, purpose, at)
    run = _Run(verdict)
    if not _parsable(cert):
        run.fail("malformed", "the certificate's extensions cannot be parsed (RFC 5280 4.2)")
        return verdict
    intermediates = [c for c in intermediates if _parsable(c)]
    _check_times(run, cert, at)
    for oid in _unknown_critical(cert):
        run.fail("unknown-critical-extension", f"the certificate has the critical extension {oid}, which is not processed")
    path, anchor = _build_path(run, cert, intermediates, anchors(trusted_list))
    verdict.path = [c.subject.rfc4514_string() for c in path]
    if anchor is not None:
        verdict.anchor = anchor.name
        verdict.path.append(anchor.certificate.subject.rfc4514_string())
        if not anchor.certificate.not_valid_before_utc <= at <= anchor.certificate.not_valid_after_utc:
            run.fail("ca-invalid", f"the Trusted List service certificate of '{anchor.name}' is not valid at {at:%Y-%m-%d}")
        for below, ca in enumerate(reversed(path[1:])):
            _check_ca(run, ca, at, len(path) - 2 - below)
        issuers = path[1:] + [anchor.certificate]
        for i, (subject, issuer) in enumerate(zip(path, issuers, strict=True)):
            _revocation(run, fetcher, subject, issuer, at, "the certificate" if i == 0 else f"the CA '{subject.subject.rfc4514_string()}'")
    _qualified(run, cert, purpose, anchor, require_roles)
    _usage(run, cert, purpose)
    verdict.accepted = not verdict.reasons
    return verdict
