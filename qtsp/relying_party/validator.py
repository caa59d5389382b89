"""The reference validator (issues 7, 17): what a bank's PSD2 validator should conclude about a certificate.

``validate(cert, ...)`` returns a ``Verdict``: accepted or not, with every finding, not just the first, each
naming its rule and where the rule is written (``Finding.source``: document, edition, clause). In order:

1. time: the certificate's validity at ``at`` (an argument: the caller's clock, or a time travelled to);
2. the path: from the certificate through the intermediates given, up to a CA/QC service *granted* in the
   (XAdES-verified) Trusted List or among the caller's trust anchors (``anchors.py``), each signature
   checked, each CA's basicConstraints, keyUsage and validity checked, unknown critical extensions refused;
3. revocation of every certificate below the anchor (``revocation=``): OCSP first (nonce, signature,
   responder authorisation, CertID, freshness), the CRL as fallback; ``"ocsp"``/``"crl"`` force one,
   ``"off"`` skips it (the profile and path alone); no usable answer is a reason to reject;
4. the profile of the certificate's type (given as ``purpose``, or inferred: ``profile/types.py``): every
   rule of ``profile/``, from QCStatements and PSD2 roles to key usage, policies and validity ceilings;
5. with ``pkilint=True``, pkilint 0.13.3's findings too (``pkilint_bridge.py``), less those where the
   current edition of TS 119 495 says otherwise (each such one an info finding saying why).

``Verdict.reasons`` keeps the shape earlier callers read ([code, message] of the error findings): our own
rules' errors, or pkilint's when our rules found none. The HTTP, OCSP and CRL client is
``revocation.py``, the Trusted List reader ``trusted_list.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtensionOID

from ..core import oids
from ..core.errors import Kind, QTSPError
from ..core.psd2 import decode_unchecked
from ..core.qcstatements import qc_types
from ..core.trusted_list import CA_QC, FOR_ESEALS, FOR_WEB, GRANTED, ListedService, ParsedList
from .findings import ERROR, INFO, Finding, Severity
from .profile import UNKNOWN, Facts, check_profile, facts_of, infer_type
from .profile.sources import RFC_5280, RFC_6960, TS_612, cite
from .revocation import Fetcher, crl_status, extension, issued_by, ocsp_status

__all__ = ["PURPOSES", "REVOCATION_MODES", "Reason", "Verdict", "anchors", "validate"]

PURPOSES = ("qwac", "qwac-client", "qsealc", "2-qwac")
REVOCATION_MODES = ("auto", "ocsp", "crl", "off")
MAX_PATH = 6
# RFC 5280 4.2: a validator must reject a certificate with a critical extension it does not process.
PROCESSED_CRITICAL = frozenset({
    ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.KEY_USAGE, ExtensionOID.EXTENDED_KEY_USAGE,
    ExtensionOID.SUBJECT_ALTERNATIVE_NAME, ExtensionOID.CERTIFICATE_POLICIES, ExtensionOID.NAME_CONSTRAINTS,
    ExtensionOID.POLICY_CONSTRAINTS, ExtensionOID.INHIBIT_ANY_POLICY, oids.QC_STATEMENTS,
})
# Where the path, time and revocation rules are written. Their ids are stable: bank models key on them.
CHAIN_SOURCES = {
    "malformed": cite(RFC_5280, "4.2"),
    "expired": cite(RFC_5280, "6.1.3 (a)(2)"),
    "not-yet-valid": cite(RFC_5280, "6.1.3 (a)(2)"),
    "unknown-critical-extension": cite(RFC_5280, "4.2"),
    "no-path": cite(RFC_5280, "6.1 (path building)"),
    "bad-signature": cite(RFC_5280, "6.1.3 (a)(1)"),
    "issuer-not-trusted": cite(RFC_5280, "6.1.1 (d)") + "; " + cite(TS_612, "5.5.4 (service status granted)"),
    "ca-invalid": cite(RFC_5280, "6.1.4 (k), (l), (n)"),
    "tl-service-purpose": cite(TS_612, "5.5.9.4 (additionalServiceInformation)"),
    "revoked": cite(RFC_5280, "6.1.3 (a)(3)") + "; " + cite(RFC_6960, "2.2"),
    "revocation-unknown": cite(RFC_5280, "6.1.3 (a)(3)") + "; " + cite(RFC_6960, "4.2.2.2, 4.4.1"),
}


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
    findings: list[Finding] = field(default_factory=list)
    certificate_type: str = UNKNOWN  # what the certificate says it is (profile/types.py), whatever the purpose

    @property
    def codes(self) -> list[str]:
        return [r.code for r in self.reasons]

    def as_dict(self) -> dict[str, Any]:
        return {"verdict": "accept" if self.accepted else "reject", "certificate_type": self.certificate_type,
                "purpose": self.purpose, "at": self.at.isoformat(),
                "findings": [f.as_dict() for f in self.findings],
                "reasons": [{"code": r.code, "message": r.message} for r in self.reasons], "path": self.path,
                "anchor": self.anchor, "revocation": self.revocation, "qualified": self.qualified}


def anchors(tl: ParsedList) -> list[ListedService]:
    return [s for s in tl.services if s.service_type == CA_QC and s.status == GRANTED and _parsable(s.certificate)]


# --- path, time, revocation -----------------------------------------------------------------------


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

    def fail(self, code: str, message: str, severity: Severity = ERROR) -> None:
        finding = Finding(code, CHAIN_SOURCES[code], severity, message)
        if finding not in self.verdict.findings:
            self.verdict.findings.append(finding)


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
                run.fail("no-path", f"the issuer '{current.issuer.rfc4514_string()}' is neither a trusted service nor "
                         "among the intermediates given (a missing intermediate)")
            else:
                run.fail("issuer-not-trusted", f"the path ends at '{current.subject.rfc4514_string()}', which is not "
                         "a granted CA/QC service of the Trusted List (nor a trust anchor given)")
            return path, None
        path.append(parent)
    run.fail("no-path", f"no path to a trusted service within {MAX_PATH} certificates")
    return path, None


def _check_times(run: _Run, cert: x509.Certificate, at: dt.datetime) -> None:
    if at < cert.not_valid_before_utc:
        run.fail("not-yet-valid", f"the certificate is valid from {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S}Z")
    if at > cert.not_valid_after_utc:
        run.fail("expired", f"the certificate expired at {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S}Z")


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
                what: str, mode: str) -> None:
    methods = {"auto": (ocsp_status, crl_status), "ocsp": (ocsp_status,), "crl": (crl_status,)}[mode]
    problems = []
    for method in methods:
        try:
            result = method(fetcher, cert, issuer, at)
        except QTSPError as exc:
            problems.append(exc.detail)
            continue
        except (ValueError, TypeError) as exc:  # an answer too odd for the parsers: unusable, never a crash
            problems.append(f"{method.__name__.split('_')[0].upper()}: unusable answer ({type(exc).__name__})")
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
    run.fail("revocation-unknown", f"no usable revocation status for {what} ({mode}): " + "; ".join(problems))


def _chain(run: _Run, cert: x509.Certificate, intermediates: Sequence[x509.Certificate], trusted_list: ParsedList,
           at: dt.datetime, fetcher: Fetcher | None, revocation: str) -> ListedService | None:
    verdict = run.verdict
    path, anchor = _build_path(run, cert, intermediates, anchors(trusted_list))
    verdict.path = [c.subject.rfc4514_string() for c in path]
    if anchor is None:
        return None
    verdict.anchor = anchor.name
    verdict.path.append(anchor.certificate.subject.rfc4514_string())
    if not anchor.certificate.not_valid_before_utc <= at <= anchor.certificate.not_valid_after_utc:
        run.fail("ca-invalid", f"the trusted service certificate of '{anchor.name}' is not valid at {at:%Y-%m-%d}")
    for below, ca in enumerate(reversed(path[1:])):
        _check_ca(run, ca, at, len(path) - 2 - below)
    if revocation == "off":
        verdict.findings.append(Finding("revocation-not-checked", "the caller's choice (revocation off)", INFO,
                                        "revocation was not checked: the verdict covers the path and the profile only"))
        return anchor
    assert fetcher is not None  # validate() makes one unless revocation is off
    issuers = path[1:] + [anchor.certificate]
    for i, (subject, issuer) in enumerate(zip(path, issuers, strict=True)):
        what = "the certificate" if i == 0 else f"the CA '{subject.subject.rfc4514_string()}'"
        _revocation(run, fetcher, subject, issuer, at, what, revocation)
    return anchor


# --- the entry point ------------------------------------------------------------------------------


def validate(cert: x509.Certificate, *, trusted_list: ParsedList, at: dt.datetime,
             intermediates: Sequence[x509.Certificate] = (), purpose: str | None = None,
             require_roles: Sequence[str] = (), fetcher: Fetcher | None = None, revocation: str = "auto",
             pkilint: bool = False) -> Verdict:
    """The verdict on ``cert`` for ``purpose`` (None: the type the certificate says it is) at ``at``, with
    every finding. ``at`` is the caller's (a validator has no clock of its own to read)."""
    if purpose is not None and purpose not in PURPOSES:
        raise QTSPError(Kind.MALFORMED, f"purpose must be one of {', '.join(PURPOSES)}")
    if revocation not in REVOCATION_MODES:
        raise QTSPError(Kind.MALFORMED, f"revocation must be one of {', '.join(REVOCATION_MODES)}")
    if fetcher is None and revocation != "off":
        fetcher = Fetcher()
    verdict = Verdict(False, purpose or "qwac", at)
    run = _Run(verdict)
    if not _parsable(cert):
        run.fail("malformed", "the certificate's extensions cannot be parsed (RFC 5280 4.2)")
        return _conclude(verdict)
    facts = facts_of(cert)
    verdict.certificate_type = infer_type(facts)
    kind = purpose or verdict.certificate_type
    verdict.purpose = kind if kind != UNKNOWN else "qwac"
    intermediates = [c for c in intermediates if _parsable(c)]
    _check_times(run, cert, at)
    for oid in _unknown_critical(cert):
        run.fail("unknown-critical-extension", f"the certificate has the critical extension {oid}, which is not processed")
    anchor = _chain(run, cert, intermediates, trusted_list, at, fetcher, revocation)
    if anchor is not None and facts.statements is not None:
        needed = FOR_ESEALS if verdict.purpose == "qsealc" else FOR_WEB
        if needed not in anchor.additional_info:
            run.fail("tl-service-purpose", f"the Trusted List service '{anchor.name}' is not qualified "
                     f"{needed.rsplit('/', 1)[1]}")
    verdict.findings += [f for f in check_profile(facts, kind, require_roles=require_roles) if f not in verdict.findings]
    _describe(verdict, facts)
    if pkilint:
        from .pkilint_bridge import pkilint_findings

        verdict.findings += pkilint_findings(cert, facts, verdict.purpose)
    return _conclude(verdict)


def _describe(verdict: Verdict, facts: Facts) -> None:
    """What the certificate says (``qualified`` in the JSON): QcCompliance, QcType, the PSD2 attributes."""
    info = verdict.qualified
    if facts.statements is None:
        return
    info["qc_compliance"] = oids.QCS_COMPLIANCE in facts.statements
    try:
        qc_type = facts.statement(oids.QCS_TYPE)
        info["qc_types"] = qc_types(qc_type) if qc_type is not None else []
        psd2 = facts.statement(oids.PSD2_STATEMENT)
        if psd2 is not None:
            roles, nca_name, nca_id = decode_unchecked(psd2)
            info["psd2"] = {"roles": [name for _oid, name in roles], "nca_name": nca_name, "nca_id": nca_id}
    except (QTSPError, ValueError, TypeError, KeyError):
        pass  # the profile rules already said why


def _conclude(verdict: Verdict) -> Verdict:
    ours = [f for f in verdict.findings if f.is_error and not f.source.startswith("pkilint")]
    deciding = ours or [f for f in verdict.findings if f.is_error]
    verdict.reasons = [Reason(f.rule, f.message) for f in deciding]
    verdict.accepted = not deciding
    return verdict
