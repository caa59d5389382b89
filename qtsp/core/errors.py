"""One error family for the whole product, translated only at the edges.

The CLI turns a QTSPError into a one-line message and an exit code; the web layer
(a later issue) into problem+json or an OCSP status.
"""

from __future__ import annotations

import enum


class Kind(enum.Enum):
    MALFORMED = "malformed"  # the input cannot be parsed or is out of range
    POLICY = "policy"  # parsed, but our policy or the standards forbid it
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"  # would clobber something that exists
    ALREADY_REVOKED = "already_revoked"
    UNAUTHORISED = "unauthorised"  # authenticated, but not allowed (403)
    UNAUTHENTICATED = "unauthenticated"  # who is asking cannot be established (401)
    SIGNER_UNAVAILABLE = "signer_unavailable"
    LINT = "lint"  # pkilint or our own checks found an ERROR/FATAL
    STORAGE = "storage"  # data dir or database cannot be used
    INTEGRITY = "integrity"  # the audit chain or the store does not verify


# Exit codes for the CLI: stable, documented in the README.
EXIT_CODES = {
    Kind.MALFORMED: 2,
    Kind.POLICY: 3,
    Kind.NOT_FOUND: 4,
    Kind.CONFLICT: 5,
    Kind.ALREADY_REVOKED: 5,
    Kind.UNAUTHORISED: 6,
    Kind.UNAUTHENTICATED: 6,
    Kind.SIGNER_UNAVAILABLE: 7,
    Kind.LINT: 8,
    Kind.STORAGE: 9,
    Kind.INTEGRITY: 10,
}


class QTSPError(Exception):
    """An error with a kind and a one-line, user-facing detail (never key material)."""

    def __init__(self, kind: Kind, detail: str, *, findings: list[str] | None = None) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.findings = findings or []

    def __str__(self) -> str:
        return self.detail

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.kind]


def malformed(detail: str) -> QTSPError:
    return QTSPError(Kind.MALFORMED, detail)


def policy(detail: str) -> QTSPError:
    return QTSPError(Kind.POLICY, detail)
