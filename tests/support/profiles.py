"""Helpers the profile tests share (tests/unit/core/test_profiles.py, tests/system/core/test_profiles.py)."""

from __future__ import annotations

from cryptography import x509

from qtsp.services import issuance
from qtsp.services.context import Sandbox

from support import SAMPLE_ORG


def issue_kind(sb: Sandbox, kind: str, **kw: object) -> issuance.Issued:
    """One certificate of ``kind`` for the sample PSP, with a generated P-256 key."""
    return issuance.issue(sb, issuance.IssueRequest(kind, SAMPLE_ORG, generate_key="ecdsa-p256", **kw))  # type: ignore[arg-type]


def extension(cert: x509.Certificate, cls: type) -> x509.Extension:  # type: ignore[type-arg]
    return cert.extensions.get_extension_for_class(cls)


def subject_values(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> list[str]:
    return [str(a.value) for a in cert.subject.get_attributes_for_oid(oid)]
