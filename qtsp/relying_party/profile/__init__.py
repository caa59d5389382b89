"""The certificate profile rules a PSD2 relying party applies, each finding naming its document, edition and
clause (``Finding.source``). ``check_profile(cert, kind)`` runs them all for one certificate type; the
validator adds the path, time and revocation findings around them.

    qc.py        QCStatements (EN 319 412-5) and the PSD2 statement (TS 119 495)
    subject.py   organizationIdentifier, cabfOrganizationIdentifier, EV and seal subject attributes
    usage.py     keyUsage, extendedKeyUsage, certificate policies, validity ceiling, AIA and CRL URLs
    types.py     the certificate types and how one is inferred
    sources.py   the documents and editions cited

``RULES`` lists every rule id with the clause it is checked against (docs/validator.md prints it; a test
holds the list and the code to each other).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509

from ..findings import ERROR, Finding, Severity
from .facts import Facts, facts_of
from .sources import EN_412_5, cite
from .qc import check_psd2, check_statements
from .subject import check_subject
from .types import CERTIFICATE_TYPES, QWAC, UNKNOWN, infer_type
from .usage import check_policies, check_services, check_usage, check_validity

__all__ = ["CERTIFICATE_TYPES", "UNKNOWN", "Facts", "check_profile", "facts_of", "infer_type"]


def check_profile(facts: Facts, kind: str, *, require_roles: Sequence[str] = ()) -> list[Finding]:
    """Every profile finding about ``facts.cert`` judged as a ``kind`` certificate (one of CERTIFICATE_TYPES;
    ``unknown`` is judged as a qwac after a finding saying the type could not be told)."""
    found: list[Finding] = []

    def add(rule: str, source: str, message: str, severity: Severity = ERROR) -> None:
        finding = Finding(rule, source, severity, message)
        if finding not in found:
            found.append(finding)

    if kind == UNKNOWN:
        add("certificate-type-unknown", "docs/validator.md (purpose inference)",
            "neither the EKUs, the QcType nor the policies say what this certificate is for; judged as a QWAC")
        kind = QWAC
    if kind not in CERTIFICATE_TYPES:
        raise ValueError(f"certificate type must be one of {', '.join(CERTIFICATE_TYPES)}")
    try:
        if check_statements(facts, kind, add):
            check_psd2(facts, add, require_roles)
    except (ValueError, TypeError, KeyError) as exc:  # statements that parse as DER but not as their types
        add("not-qualified", cite(EN_412_5, "annex B"), f"unreadable QCStatements ({type(exc).__name__}: {str(exc)[:120]})")
    check_subject(facts, kind, add)
    check_usage(facts, kind, add)
    check_policies(facts, kind, add)
    check_validity(facts, kind, add)
    check_services(facts, add)
    return found


def profile_of(cert: x509.Certificate, kind: str | None = None) -> tuple[str, list[Finding]]:
    """The inferred (or given) type and the profile findings: for callers that want the rules alone."""
    facts = facts_of(cert)
    chosen = kind or infer_type(facts)
    return chosen, check_profile(facts, chosen)
