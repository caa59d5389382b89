"""Repositories: functions over a Session. They flush, never commit (services own the transaction)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from collections.abc import Sequence

from sqlalchemy import ColumnElement, case, func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer, joinedload

from qtsp.core.audit import GENESIS, ChainEvent, canonical_details, event_hash
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.profiles import CA_PROFILES
from qtsp.core.types import IssuerId, OrgId, SerialHex

from .models import (
    ApiToken,
    AuditEvent,
    AuditHead,
    Certificate,
    CertificateAuthority,
    CrlRecord,
    IssuanceIntent,
    KeyReference,
    NationalCompetentAuthority,
    NcaCredential,
    PSPAuthorisation,
    PublicationState,
    ResponderBehaviour,
    Revocation,
)

# --- audit -----------------------------------------------------------------------------


AuditEntry = tuple[str, str, str, dict[str, Any]]  # actor, action, subject, details


def append_audit(
    session: Session, *, at: dt.datetime, actor: str, action: str, subject: str, details: dict[str, Any]
) -> None:
    """Append one event to the hash chain."""
    append_audit_many(session, at, [(actor, action, subject, details)])


def append_audit_many(session: Session, at: dt.datetime, entries: Sequence[AuditEntry]) -> None:
    """Append events in order. The head row is locked once, so concurrent appends serialise."""
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one_or_none()
    if head is None:
        head = AuditHead(id=1, seq=0, hash=GENESIS)
        session.add(head)
    seq, prev = head.seq, head.hash
    rows = []
    for actor, action, subject, details in entries:
        seq += 1
        body = canonical_details(details)
        digest = event_hash(prev, seq, at, actor, action, subject, body)
        rows.append({"seq": seq, "at": at, "actor": actor, "action": action, "subject": subject,
                     "details": body, "prev_hash": prev, "hash": digest})
        prev = digest
    if rows:
        session.execute(insert(AuditEvent), rows)
    head.seq, head.hash = seq, prev
    session.flush()


def audit_events(session: Session) -> Sequence[AuditEvent]:
    return session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars().all()


def audit_chain(session: Session, *, attempts: int = 5) -> tuple[list[ChainEvent], tuple[int, str] | None]:
    """The events and the head, as one consistent picture while others keep appending.

    On SQLite each read is its own snapshot, so events read after the head may include appends
    committed in between (a bulk batch adds 50 at once), which looks like a chain running past its
    head. The head is read first and the events after it; when the events run past that head, the
    head is read again (appends move both in one transaction) until it covers them. Events that no
    head ever covers are returned as they are, and the chain check reports them."""
    for _ in range(attempts):
        head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
        events = [ChainEvent(e.seq, e.at, e.actor, e.action, e.subject, e.details, e.prev_hash, e.hash)
                  for e in audit_events(session)]
        session.expire_all()
        if head is None or not events or events[-1].seq <= head.seq:
            break
    return events, (None if head is None else (head.seq, head.hash))


def audit_events_after(session: Session, seq: int) -> list[ChainEvent]:
    """The events after ``seq``, in order (what is appended since a signed head)."""
    rows = session.execute(select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)).scalars()
    return [ChainEvent(e.seq, e.at, e.actor, e.action, e.subject, e.details, e.prev_hash, e.hash) for e in rows]


def audit_event_hash(session: Session, seq: int) -> str | None:
    return session.execute(select(AuditEvent.hash).where(AuditEvent.seq == seq)).scalar_one_or_none()


def audit_head(session: Session) -> tuple[int, str]:
    """The head the store records: (0, GENESIS) before the first event."""
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one_or_none()
    return (0, GENESIS) if head is None else (head.seq, head.hash)


def certificate_states(session: Session) -> list[tuple[str, str, str, str, str | None]]:
    """(issuer, serial, sha256, status, revocation reason or None) of every certificate: what the
    audit cross-check compares with the events (no DER read)."""
    rows = session.execute(
        select(Certificate.issuer_id, Certificate.serial, Certificate.fingerprint_sha256, Certificate.status,
               Revocation.reason).outerjoin(Revocation, Revocation.certificate_id == Certificate.id))
    return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]


def token_states(session: Session) -> list[tuple[int, str, str, str, bool]]:
    """(id, name, role, secret hash, revoked) of every API token."""
    rows = session.execute(select(ApiToken.id, ApiToken.name, ApiToken.role, ApiToken.token_hash,
                                  ApiToken.revoked_at))
    return [(r[0], r[1], r[2], r[3], r[4] is not None) for r in rows]


def nca_credential_states(session: Session) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in session.execute(select(NcaCredential.nca_id, NcaCredential.fingerprint_sha256))]


# --- keys and CAs ----------------------------------------------------------------------


def add_key(session: Session, key: KeyReference) -> KeyReference:
    session.add(key)
    session.flush()
    return key


def list_keys(session: Session) -> Sequence[KeyReference]:
    return session.execute(select(KeyReference).order_by(KeyReference.id)).scalars().all()


def newest_key_for(session: Session, purpose_prefix: str) -> KeyReference | None:
    """The newest key whose purpose starts with ``purpose_prefix`` (e.g. ``receipts:``)."""
    return session.execute(select(KeyReference).where(KeyReference.purpose.startswith(purpose_prefix, autoescape=True))
                           .order_by(KeyReference.id.desc())).scalars().first()


def add_ca(session: Session, ca: CertificateAuthority) -> None:
    session.add(ca)
    session.flush()


def get_ca(session: Session, ca_id: IssuerId) -> CertificateAuthority:
    ca = session.get(CertificateAuthority, ca_id)
    if ca is None:
        raise QTSPError(Kind.NOT_FOUND, f"no CA {ca_id!r}")
    return ca


def list_cas(session: Session) -> Sequence[CertificateAuthority]:
    return session.execute(select(CertificateAuthority).order_by(CertificateAuthority.created_at)).scalars().all()


def ca_for_role(session: Session, role: str) -> CertificateAuthority:
    ca = session.execute(
        select(CertificateAuthority).where(CertificateAuthority.role == role)
        .order_by(CertificateAuthority.created_at.desc(), func.length(CertificateAuthority.id).desc(),
                  CertificateAuthority.id.desc())
    ).scalars().first()
    if ca is None:
        raise QTSPError(Kind.NOT_FOUND, f"no {role} CA in this sandbox")
    return ca


# --- issuance --------------------------------------------------------------------------


def reserve_serials(session: Session, issuer_id: IssuerId, serials: Sequence[SerialHex], profile: str,
                    at: dt.datetime) -> list[IssuanceIntent]:
    """Record intent: a serial collision with any earlier intent raises (unique per issuer)."""
    if session.get(CertificateAuthority, issuer_id) is None:
        raise QTSPError(Kind.NOT_FOUND, f"no CA {issuer_id!r}")
    intents = [IssuanceIntent(issuer_id=issuer_id, serial=s, profile=profile, state="reserved", created_at=at) for s in serials]
    session.add_all(intents)
    try:
        session.flush()
    except IntegrityError:
        raise QTSPError(Kind.CONFLICT, f"serial already used by issuer {issuer_id}") from None
    return intents


def complete_intents(session: Session, intents: Sequence[IssuanceIntent], certs: Sequence[Certificate]) -> None:
    """Step 7: the certificates and the 'done' mark on their intents, in the caller's transaction.

    Each row gets its id, as the OCSP responses pre-signed next refer to it."""
    if len(certs) == 1:
        session.add(certs[0])
    else:  # bulk: one executemany instead of an ORM unit of work per row (RETURNING in batches, in order)
        columns = [c.key for c in Certificate.__table__.columns if c.key != "id"]
        ids = session.execute(insert(Certificate).returning(Certificate.id, sort_by_parameter_order=True),
                              [{k: getattr(c, k) for k in columns} for c in certs]).scalars().all()
        for cert, cert_id in zip(certs, ids, strict=True):
            cert.id = cert_id
    session.execute(
        update(IssuanceIntent).where(IssuanceIntent.id.in_([i.id for i in intents])).values(state="done")
    )
    session.flush()


def abandon_intents(session: Session, intent_ids: Sequence[int]) -> None:
    session.execute(update(IssuanceIntent).where(IssuanceIntent.id.in_(intent_ids)).values(state="abandoned"))


def get_certificate(session: Session, serial: SerialHex, issuer_id: IssuerId | None = None, *,
                    for_update: bool = False) -> Certificate:
    query = select(Certificate).where(Certificate.serial == serial)
    if for_update:
        query = query.with_for_update()
    if issuer_id is not None:
        query = query.where(Certificate.issuer_id == issuer_id)
    found = session.execute(query).scalars().all()
    if not found:
        raise QTSPError(Kind.NOT_FOUND, f"no certificate with serial {serial}")
    if len(found) > 1:
        raise QTSPError(Kind.MALFORMED, f"serial {serial} exists under several issuers; name the issuer")
    return found[0]


def certificate_by_fingerprint(session: Session, fingerprint: str) -> Certificate | None:
    return session.execute(select(Certificate).where(Certificate.fingerprint_sha256 == fingerprint)).scalar_one_or_none()


def add_certificate(session: Session, cert: Certificate) -> Certificate:
    session.add(cert)
    session.flush()
    return cert


def issuers_of_serial(session: Session, serial: SerialHex) -> list[IssuerId]:
    return sorted(session.execute(select(Certificate.issuer_id).where(Certificate.serial == serial)).scalars())


def list_certificates(
    session: Session, *, org_id: str | None = None, profile: str | None = None, limit: int = 100, offset: int = 0
) -> Sequence[Certificate]:
    query = (select(Certificate).where(Certificate.profile.not_in(sorted(CA_PROFILES)))
             .order_by(Certificate.id.desc()).limit(limit).offset(offset))
    if org_id:
        query = query.where(Certificate.org_id == org_id)
    if profile:
        query = query.where(Certificate.profile == profile)
    return session.execute(query).scalars().all()


# --- searches: the API's list endpoints -----------------------------------------------------------

Row = TypeVar("Row")
CERTIFICATE_STATUSES = ("valid", "expired", "revoked", "good")


@dataclass(frozen=True)
class ResultPage(Generic[Row]):
    rows: Sequence[Row]
    total: int  # rows matching the filters, on every page
    offset: int  # matching rows before the first of ``rows``
    more: bool  # matching rows follow the last of ``rows``


def _page(session: Session, query: Any, count: Any, limit: int, offset: int,
          before: ColumnElement[bool] | None) -> ResultPage[Any]:
    """Two statements: the count, then limit + 1 rows (the extra one says whether more follow).

    With ``before`` (keyset paging) the page is the rows that satisfy it, and its offset is the number
    of matching rows that do not, counted in the same statement as the total."""
    if before is None:
        total = session.execute(count).scalar_one()
        page = query.offset(offset)
    else:
        total, offset = session.execute(count.add_columns(func.count(case((~before, 1))))).one()
        page = query.where(before)
    rows = session.execute(page.limit(limit + 1)).scalars().all()
    return ResultPage(rows[:limit], total, offset, len(rows) > limit)


def search_certificates(
    session: Session, *, now: dt.datetime, org_id: str | None = None, profiles: Sequence[str] | None = None,
    issuer_id: str | None = None, status: str | None = None, expiring_before: dt.datetime | None = None,
    limit: int = 100, offset: int = 0, before_id: int | None = None, org_ids: Sequence[str] | None = None,
    issuer_ids: Sequence[str] | None = None,
) -> ResultPage[Certificate]:
    """Certificates matching every filter given, newest first.

    ``status`` as of ``now``: valid (not revoked, notBefore <= now <= notAfter), expired (not revoked, notAfter
    passed), revoked, good (not revoked, whatever the dates). ``expiring_before``: notAfter before it. Pages by
    ``offset``, or by ``before_id`` (keyset: the rows with a smaller id; a page stays exact while certificates
    are issued or revoked between requests, and costs an index range instead of skipping ``offset`` rows).
    Revocations come in the same statement (no query per row); the DER is not loaded. ``org_ids``, ``issuer_ids``:
    only these (a caller's scope), on top of the other filters. CA certificates (registered with their parent
    for status) are not among them: ``qtsp ca list`` shows those."""
    where: list[ColumnElement[bool]] = [Certificate.profile.not_in(sorted(CA_PROFILES))]
    if org_id is not None:
        where.append(Certificate.org_id == org_id)
    if org_ids is not None:
        where.append(Certificate.org_id.in_(list(org_ids)))
    if profiles is not None:
        where.append(Certificate.profile.in_(list(profiles)))
    if issuer_id is not None:
        where.append(Certificate.issuer_id == issuer_id)
    if issuer_ids is not None:
        where.append(Certificate.issuer_id.in_(list(issuer_ids)))
    if status == "revoked":
        where.append(Certificate.status == "revoked")
    elif status in ("valid", "expired", "good"):
        where.append(Certificate.status == "good")
        if status == "valid":
            where += [Certificate.not_before <= now, Certificate.not_after >= now]
        elif status == "expired":
            where.append(Certificate.not_after < now)
    elif status is not None:
        raise ValueError(f"status is one of {', '.join(CERTIFICATE_STATUSES)}, not {status!r}")
    if expiring_before is not None:
        where.append(Certificate.not_after < expiring_before)
    query = (select(Certificate).where(*where).order_by(Certificate.id.desc())
             .options(joinedload(Certificate.revocation), defer(Certificate.der)))
    count = select(func.count()).select_from(Certificate).where(*where)
    before = None if before_id is None else Certificate.id < before_id
    return _page(session, query, count, limit, offset, before)


def search_behaviours(
    session: Session, *, issuer_id: str | None = None, target: str | None = None, limit: int = 100, offset: int = 0,
    issuer_ids: Sequence[str] | None = None,
) -> ResultPage[ResponderBehaviour]:
    """The simulator's responder behaviours, oldest first (``issuer_ids``: only these CAs')."""
    where: list[ColumnElement[bool]] = []
    if issuer_id is not None:
        where.append(ResponderBehaviour.issuer_id == issuer_id)
    if issuer_ids is not None:
        where.append(ResponderBehaviour.issuer_id.in_(list(issuer_ids)))
    if target is not None:
        where.append(ResponderBehaviour.target == target)
    query = select(ResponderBehaviour).where(*where).order_by(ResponderBehaviour.id)
    count = select(func.count()).select_from(ResponderBehaviour).where(*where)
    return _page(session, query, count, limit, offset, None)


# --- register --------------------------------------------------------------------------


def get_nca(session: Session, nca_id: str) -> NationalCompetentAuthority | None:
    return session.get(NationalCompetentAuthority, nca_id)


def list_ncas(session: Session) -> Sequence[NationalCompetentAuthority]:
    return session.execute(select(NationalCompetentAuthority).order_by(NationalCompetentAuthority.nca_id)).scalars().all()


def add_nca(session: Session, nca: NationalCompetentAuthority) -> None:
    session.add(nca)
    session.flush()


def get_psp(session: Session, org_id: OrgId) -> PSPAuthorisation | None:
    return session.get(PSPAuthorisation, org_id)


def add_psp(session: Session, psp: PSPAuthorisation) -> None:
    session.add(psp)
    session.flush()


def list_psps(session: Session) -> Sequence[PSPAuthorisation]:
    return session.execute(select(PSPAuthorisation).order_by(PSPAuthorisation.org_id)).scalars().all()


def get_nca_credential(session: Session, fingerprint: str) -> NcaCredential | None:
    return session.execute(select(NcaCredential).where(NcaCredential.fingerprint_sha256 == fingerprint)).scalar_one_or_none()


def add_nca_credential(session: Session, credential: NcaCredential) -> None:
    session.add(credential)
    session.flush()


def withdrawn_nca_credentials(session: Session, nca_id: str | None = None) -> list[str]:
    """Fingerprints of the withdrawn credentials (of one NCA, or all)."""
    query = select(NcaCredential.fingerprint_sha256).where(NcaCredential.revoked_at.is_not(None)).order_by(NcaCredential.id)
    if nca_id is not None:
        query = query.where(NcaCredential.nca_id == nca_id)
    return list(session.execute(query).scalars())


def withdraw_credentials_of(session: Session, certificate_ids: Sequence[int], at: dt.datetime) -> list[NcaCredential]:
    """Withdraw the credentials whose certificates these are (when they are revoked); returns those withdrawn now."""
    rows = list(session.execute(select(NcaCredential).where(NcaCredential.certificate_id.in_(certificate_ids),
                                                            NcaCredential.revoked_at.is_(None))).scalars())
    for row in rows:
        row.revoked_at = at
    session.flush()
    return rows


def nca_credential_fingerprints(session: Session, nca_id: str | None = None) -> list[tuple[str, str]]:
    """(NCA id, fingerprint) of every credential, or of one NCA's."""
    query = select(NcaCredential.nca_id, NcaCredential.fingerprint_sha256).order_by(NcaCredential.id)
    if nca_id is not None:
        query = query.where(NcaCredential.nca_id == nca_id)
    return [(row[0], row[1]) for row in session.execute(query).all()]


# --- publication -------------------------------------------------------------------------


def add_crl(session: Session, record: CrlRecord) -> None:
    session.add(record)
    session.flush()


def highest_crl_number(session: Session, issuer_id: IssuerId) -> int | None:
    return session.execute(select(func.max(CrlRecord.number)).where(CrlRecord.issuer_id == issuer_id)).scalar_one()



def lock_publication_state(session: Session, issuer_id: IssuerId) -> PublicationState:
    """The issuer's publication_state row, created if missing, locked for this transaction.

    Created with INSERT ... ON CONFLICT DO NOTHING: two first revocations of one issuer at once
    (PostgreSQL, several workers) both see no row; a plain INSERT made the second fail its unique key."""
    dialect = session.get_bind().dialect.name
    if dialect in ("sqlite", "postgresql"):
        from sqlalchemy.dialects import postgresql, sqlite

        insert = sqlite.insert if dialect == "sqlite" else postgresql.insert
        session.execute(
            insert(PublicationState)
            .values(issuer_id=issuer_id, crl_dirty_since=None)
            .on_conflict_do_nothing(index_elements=[PublicationState.issuer_id])
        )
    elif session.get(PublicationState, issuer_id) is None:
        session.add(PublicationState(issuer_id=issuer_id, crl_dirty_since=None))
        session.flush()
    return session.execute(
        select(PublicationState).where(PublicationState.issuer_id == issuer_id)
        .with_for_update().execution_options(populate_existing=True)
    ).scalar_one()


def mark_crl_dirty(session: Session, issuer_id: IssuerId, at: dt.datetime) -> None:
    """The issuer's CRL is behind: the scheduler regenerates it (debounced) and clears this."""
    # Locked: a CRL generator holds this row while it builds, so a revocation either lands before
    # (and is on that CRL) or after (and re-marks the issuer dirty once the generator clears it).
    state = lock_publication_state(session, issuer_id)
    if state.crl_dirty_since is None:
        state.crl_dirty_since = at
    session.flush()
