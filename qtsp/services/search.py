"""The API's read side: certificate search with paging, one certificate, responder behaviours, and the
replay check of revocation by key. Views are plain data, so the web layer never sees a store row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Sequence

from cryptography import x509
from sqlalchemy import select

from ca_store import repositories as repo
from ca_store.models import AuditEvent, Certificate

from ..core.types import IssuerId, SerialHex
from . import access
from .access import EVERYTHING, Scope
from .context import Sandbox
from .simulator import Behaviour

STATUSES = repo.CERTIFICATE_STATUSES  # what the list filter takes: valid, expired, revoked (and good)


@dataclass(frozen=True)
class Revoked:
    reason: str
    revoked_at: dt.datetime


@dataclass(frozen=True)
class CertificateRecord:
    """A stored certificate as the API shows it."""

    row_id: int  # the keyset cursor of the list (never shown)
    serial: str
    issuer_id: IssuerId
    profile: str
    subject: str
    org_id: str | None
    nca_id: str | None
    roles: tuple[str, ...]
    dns_names: tuple[str, ...]
    not_before: dt.datetime
    not_after: dt.datetime
    status: str
    sha256: str
    revocation: Revoked | None
    certificate: x509.Certificate | None  # loaded only for a single certificate


@dataclass(frozen=True)
class Page:
    items: Sequence[object]
    total: int
    offset: int
    more: bool


def _record(row: Certificate, *, with_der: bool) -> CertificateRecord:
    revoked = row.revocation
    return CertificateRecord(
        row.id, row.serial, row.issuer_id, row.profile, row.subject, row.org_id, row.nca_id,
        tuple(row.roles.split(",")) if row.roles else (), tuple(row.dns_names.split(",")) if row.dns_names else (),
        row.not_before, row.not_after, row.status, row.fingerprint_sha256,
        None if revoked is None else Revoked(revoked.reason, revoked.revoked_at),
        x509.load_der_x509_certificate(row.der) if with_der else None)


def certificates(sandbox: Sandbox, *, now: dt.datetime, org_id: str | None = None, issuer_id: str | None = None,
                 profiles: Sequence[str] | None = None, status: str | None = None,
                 expiring_before: dt.datetime | None = None, limit: int = 100, offset: int = 0,
                 before_id: int | None = None, scope: Scope = EVERYTHING) -> Page:
    """Certificates matching every filter given and the caller's ``scope``, newest first
    (repositories.search_certificates says how); what is outside the scope is not counted either."""
    allowed = scope.profiles()
    if allowed is not None:
        profiles = tuple(sorted(allowed if profiles is None else allowed & set(profiles)))
    org_ids = None if not scope.org_ids else tuple(sorted(scope.org_ids if org_id is None else scope.org_ids & {org_id}))
    issuer_ids = None if not scope.cas else tuple(sorted(scope.cas if issuer_id is None else scope.cas & {issuer_id}))
    with sandbox.transaction() as session:
        result = repo.search_certificates(session, now=now, org_id=org_id, issuer_id=issuer_id, profiles=profiles,
                                          status=status, expiring_before=expiring_before, limit=limit, offset=offset,
                                          before_id=before_id, org_ids=org_ids, issuer_ids=issuer_ids)
        return Page([_record(c, with_der=False) for c in result.rows], result.total, result.offset, result.more)


def certificate(sandbox: Sandbox, serial: SerialHex, scope: Scope = EVERYTHING) -> CertificateRecord:
    """One certificate, with its DER; NOT_FOUND for a serial never issued, and for one outside ``scope``."""
    with sandbox.transaction() as session:
        return _record(access.one_certificate(session, serial, None, scope), with_der=True)


def first_event_by(sandbox: Sandbox, actor: str) -> int | None:
    """The sequence number of the first audit event recorded for ``actor``, if any (replay checks)."""
    with sandbox.transaction() as session:
        seen = session.execute(select(AuditEvent.seq).where(AuditEvent.actor == actor).limit(1)).first()
    return None if seen is None else int(seen[0])


def behaviours(sandbox: Sandbox, *, issuer_id: str | None = None, target: str | None = None, limit: int = 100,
               offset: int = 0, scope: Scope = EVERYTHING) -> Page:
    """The simulator's responder behaviours, oldest first: those of the CAs the caller's ``scope`` reaches
    (none for a caller scoped to PSPs or kinds)."""
    issuer_ids = None
    if not scope.unrestricted:
        if scope.org_ids or scope.kinds or (issuer_id is not None and not scope.allows_ca(issuer_id)):
            return Page([], 0, offset, False)
        issuer_ids = tuple(sorted(scope.cas))
    with sandbox.transaction() as session:
        result = repo.search_behaviours(session, issuer_id=issuer_id, target=target, limit=limit, offset=offset,
                                        issuer_ids=issuer_ids)
        items = [Behaviour(r.id, r.issuer_id, r.target, r.scope, r.behaviour, r.delay_ms, r.created_at, r.created_by)
                 for r in result.rows]
    return Page(items, result.total, result.offset, result.more)


def ca_certificates(sandbox: Sandbox) -> dict[str, tuple[x509.Certificate, str | None]]:
    """Every CA's certificate and its parent's id, for AIA caIssuers and the chain files."""
    with sandbox.transaction() as session:
        return {ca.id: (x509.load_der_x509_certificate(ca.cert_der), ca.parent_id) for ca in repo.list_cas(session)}
