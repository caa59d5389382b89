"""What the profile rules read from a certificate, parsed once: EKUs, policies, keyUsage, the QCStatements
(decoded or the reason they cannot be), subject attributes. Parsing once keeps a batch fast (the rules
would otherwise decode the same qcStatements a dozen times) and lets each rule stay a few lines."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID, NameOID

from ...core import oids
from ...core.errors import QTSPError
from ...core.psd2 import QCStatement
from ...core.qcstatements import read_statements

__all__ = ["Facts", "facts_of"]


def _ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[Any] | None:
    try:
        return cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return None


@dataclass
class Facts:
    cert: x509.Certificate
    ekus: list[x509.ObjectIdentifier]
    policies: list[x509.ObjectIdentifier]
    key_usage: x509.KeyUsage | None
    qc_extension: x509.Extension[Any] | None
    statements: dict[str, QCStatement] | None  # None: absent or unreadable (see statements_error)
    statements_error: str | None
    subject: dict[x509.ObjectIdentifier, list[str]] = field(default_factory=dict)

    def has_eku(self, oid: x509.ObjectIdentifier) -> bool:
        return oid in self.ekus

    def has_policy(self, oid: x509.ObjectIdentifier) -> bool:
        return oid in self.policies

    def statement(self, sid: str) -> QCStatement | None:
        return None if self.statements is None else self.statements.get(sid)

    def attr(self, oid: x509.ObjectIdentifier) -> list[str]:
        return self.subject.get(oid, [])

    @property
    def org_id(self) -> str | None:
        values = self.attr(NameOID.ORGANIZATION_IDENTIFIER)
        return values[0] if values else None

    @property
    def is_ev(self) -> bool:
        return oids.CABF_EV in self.policies or oids.QEVCP_W in self.policies

    @property
    def tls_client_only(self) -> bool:
        return ExtendedKeyUsageOID.CLIENT_AUTH in self.ekus and ExtendedKeyUsageOID.SERVER_AUTH not in self.ekus


def facts_of(cert: x509.Certificate) -> Facts:
    """The facts of ``cert``, whose extensions must parse (the validator checks that first)."""
    eku = _ext(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    policies = _ext(cert, ExtensionOID.CERTIFICATE_POLICIES)
    ku = _ext(cert, ExtensionOID.KEY_USAGE)
    qc = _ext(cert, oids.QC_STATEMENTS)
    statements: dict[str, QCStatement] | None = None
    error: str | None = None
    if qc is None:
        error = "the certificate has no qcStatements extension"
    else:
        try:
            statements = read_statements(cert)
        except QTSPError as exc:
            error, statements = exc.detail, None
        except (ValueError, TypeError, KeyError) as exc:
            error, statements = f"unreadable QCStatements ({type(exc).__name__}: {str(exc)[:120]})", None
    subject: dict[x509.ObjectIdentifier, list[str]] = {}
    for attribute in cert.subject:
        subject.setdefault(attribute.oid, []).append(str(attribute.value))
    return Facts(cert=cert, ekus=list(eku.value) if eku else [],
                 policies=[p.policy_identifier for p in policies.value] if policies else [],
                 key_usage=ku.value if ku else None, qc_extension=qc, statements=statements,
                 statements_error=error, subject=subject)
