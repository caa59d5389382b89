"""CRLs per CA: full and delta, one number sequence per issuer, debounced after revocations.

Every generation runs in one transaction that first locks the issuer's ``publication_state``
row (``SELECT ... FOR UPDATE``, the row created if missing), so concurrent generators
(scheduler, web on-demand, CLI) serialise: numbers rise strictly, full and delta share the
sequence (RFC 5280 5.2.3), and clearing the dirty flag commits with the CRL that covers it.
On SQLite, which has no row locks, the insert that creates the row is the transaction's first
statement and takes the database write lock, which serialises the same way.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, CertificateAuthority, PublicationState, Revocation
from ca_store.models import CrlRecord as CrlRecord  # what generate and current return, for callers' annotations

from ..clock import time_travelling
from ..core import crl as core_crl
from ..core.errors import Kind, QTSPError
from ..core.keys import PrivateKey
from ..core.types import IssuerId
from .context import Sandbox

Row = tuple[int, dt.datetime, str]  # serial, revocationDate, reason name


@dataclass(frozen=True)
class CrlPlan:
    """A full CRL built on the fly and never stored (time travel, simulator faults): what it lists, its
    times, and who signs it (None: the CA's key)."""

    entries_at: dt.datetime  # lists what was revoked by then
    this_update: dt.datetime
    validity: dt.timedelta  # nextUpdate - thisUpdate
    key_type: str  # the CA key's type
    signer: PrivateKey | None = None


# --- reading -----------------------------------------------------------------------------


def latest(session: Session, issuer_id: IssuerId, *, delta: bool = False) -> CrlRecord | None:
    """The newest full (or delta) CRL of ``issuer_id``, or None."""
    kind = CrlRecord.delta_base.is_not(None) if delta else CrlRecord.delta_base.is_(None)
    return session.execute(
        select(CrlRecord).where(CrlRecord.issuer_id == issuer_id, kind).order_by(CrlRecord.number.desc()).limit(1)
    ).scalar_one_or_none()


def is_qualified_issuing_ca(ca: CertificateAuthority) -> bool:
    """The QWAC and QSealC CAs: keep expired entries, mark it with ExpiredCertsOnCRL."""
    return ca.parent_id is not None


def validity(sandbox: Sandbox, ca: CertificateAuthority) -> dt.timedelta:
    """BR 4.9.7: subscriber CRLs at most 10 days, the root's ARL at most 12 months."""
    if is_qualified_issuing_ca(ca):
        return dt.timedelta(hours=sandbox.config.crl_validity_hours)
    return dt.timedelta(days=sandbox.config.arl_validity_days)


def delta_url(sandbox: Sandbox, issuer_id: IssuerId) -> str:
    return sandbox.config.base + f"/crl/{issuer_id}-delta.crl"


def _current_entries(session: Session, ca: CertificateAuthority, this_update: dt.datetime) -> list[Row]:
    """Every revoked certificate of ``ca``, in one query of three columns (100k rows stay fast)."""
    query = (
        select(Certificate.serial, Revocation.revoked_at, Revocation.reason)
        .join_from(Revocation, Certificate, Revocation.certificate_id == Certificate.id)
        .where(Certificate.issuer_id == ca.id)
    )  # no ORDER BY: entry order means nothing in a CRL, and sorting 100k rows costs
    if not is_qualified_issuing_ca(ca):
        # Only qualified CAs keep entries after the certificate expires (EN 319 411-2).
        query = query.where(Certificate.not_after >= this_update)
    return [(int(serial, 16), revoked_at, reason) for serial, revoked_at, reason in session.connection().execute(query)]


# --- locking -----------------------------------------------------------------------------


def ca_exists(sandbox: Sandbox, issuer_id: IssuerId) -> bool:
    with sandbox.transaction() as session:
        return session.get(CertificateAuthority, issuer_id) is not None


def _ca(sandbox: Sandbox, issuer_id: IssuerId) -> CertificateAuthority:
    with sandbox.transaction() as session:
        ca = session.get(CertificateAuthority, issuer_id)
        if ca is None:
            raise QTSPError(Kind.NOT_FOUND, f"no CA {issuer_id!r}")
        return ca


def _signer(sandbox: Sandbox, ca: CertificateAuthority) -> PrivateKey:
    """The CA's Signer, obtained before the lock is taken (a remote custodian may be slow to answer)."""
    return sandbox.backend(ca.key.ref).signer(ca.key.ref)


# --- generation --------------------------------------------------------------------------


class _Generator:
    """One CA's CRL generation inside a transaction that holds the publication_state lock."""

    def __init__(self, sandbox: Sandbox, session: Session, ca: CertificateAuthority, state: PublicationState,
                 signer: PrivateKey) -> None:
        self.sandbox, self.session, self.ca, self.state, self.signer = sandbox, session, ca, state, signer

    def _next_number(self) -> int:
        highest = self.session.execute(
            select(func.max(CrlRecord.number)).where(CrlRecord.issuer_id == self.ca.id)
        ).scalar_one()
        return (highest or 0) + 1

    def _store(self, now: dt.datetime, entries: Sequence[Row], *, delta_base: int | None, started: float) -> CrlRecord:
        if time_travelling():
            raise QTSPError(Kind.POLICY, "a stored CRL carries the real time: as of another time the service builds "
                            "CRLs on the fly (time_travel = true and the X-QTSP-Time header), never --at")
        this_update = now.astimezone(dt.timezone.utc).replace(microsecond=0)
        next_update = this_update + validity(self.sandbox, self.ca)
        number = self._next_number()
        params = core_crl.CrlParams(
            number=number,
            this_update=this_update,
            next_update=next_update,
            delta_base=delta_base,
            # Deltas are announced on issuing-CA CRLs only: the root's ARL changes a few times in its
            # life, and an announced delta that certificates do not name trips pyhanko-certvalidator.
            freshest_crl_url=None if delta_base is not None or self.ca.parent_id is None else delta_url(self.sandbox, self.ca.id),
            expired_certs_on_crl=self.ca.not_before if is_qualified_issuing_ca(self.ca) else None,
        )
        der = core_crl.build_crl(self.ca.cert_der, self.signer, params, entries)
        record = CrlRecord(issuer_id=self.ca.id, number=number, delta_base=delta_base, entries=len(entries),
                           this_update=this_update, next_update=next_update, der=der)
        self.session.add(record)
        self.session.flush()
        _observe(time.perf_counter() - started)
        return record

    def full(self, now: dt.datetime) -> tuple[CrlRecord, list[Row]]:
        """A full CRL of every revocation committed now; it brings the CRL up to date, so the
        dirty mark is cleared in the same transaction."""
        started = time.perf_counter()
        entries = _current_entries(self.session, self.ca, now.replace(microsecond=0))
        record = self._store(now, entries, delta_base=None, started=started)
        self.state.crl_dirty_since = None
        return record, entries

    def delta(self, now: dt.datetime, base: CrlRecord | None = None, base_entries: Sequence[Row] | None = None) -> CrlRecord:
        """A delta against ``base`` (default: the newest full CRL; one is made first if there is none).

        It lists what differs from the base: certificates revoked since, and reason changes
        (to keyCompromise). ``base_entries`` skips re-reading when the base was just built in
        this transaction."""
        started = time.perf_counter()
        if base is None:
            base = latest(self.session, self.ca.id)
        if base is None:
            base, base_entries = self.full(now)
            started = time.perf_counter()
        if base_entries is not None:
            entries: list[Row] = []  # same transaction, same snapshot: nothing changed since the base
        else:
            current = _current_entries(self.session, self.ca, now.replace(microsecond=0))
            entries = core_crl.delta_entries(current, core_crl.entry_reasons(base.der))
        return self._store(now, entries, delta_base=base.number, started=started)


def _observe(seconds: float) -> None:
    # qtsp.web's package imports Flask (create_app); import it only when a CRL is made.
    try:
        from ..metrics import CRL_GENERATION
    except ImportError:  # a deployment without the web extras still publishes CRLs
        return
    CRL_GENERATION.observe(seconds)


def generate(sandbox: Sandbox, issuer_id: IssuerId, now: dt.datetime, *, delta: bool = False) -> CrlRecord:
    """Build, sign and store one full (or delta) CRL for ``issuer_id``."""
    ca = _ca(sandbox, issuer_id)
    signer = _signer(sandbox, ca)
    with sandbox.transaction() as session:
        generator = _Generator(sandbox, session, ca, repo.lock_publication_state(session, issuer_id), signer)
        return generator.delta(now) if delta else generator.full(now)[0]


def current(sandbox: Sandbox, issuer_id: IssuerId, now: dt.datetime, *, delta: bool = False) -> CrlRecord:
    """The newest CRL to serve: generated on demand if there is none yet or it is past nextUpdate."""
    ca = _ca(sandbox, issuer_id)
    with sandbox.transaction() as session:
        record = latest(session, issuer_id, delta=delta)
    if record is not None and record.next_update > now:
        return record
    signer = _signer(sandbox, ca)
    with sandbox.transaction() as session:
        state = repo.lock_publication_state(session, issuer_id)
        record = latest(session, issuer_id, delta=delta)  # another process may have made it meanwhile
        if record is not None and record.next_update > now:
            return record
        generator = _Generator(sandbox, session, ca, state, signer)
        return generator.delta(now) if delta else generator.full(now)[0]


def regenerate_dirty(sandbox: Sandbox, now: dt.datetime) -> int:
    """Full CRL + delta for every issuer marked dirty at least ``crl_debounce_seconds`` ago.

    A burst of revocations sets the mark once, so it makes one CRL. The mark is cleared in the
    transaction that stores the CRLs. Returns the number of CRLs written."""
    threshold = now - dt.timedelta(seconds=sandbox.config.crl_debounce_seconds)
    with sandbox.transaction() as session:
        issuers = list(session.execute(
            select(PublicationState.issuer_id)
            .where(PublicationState.crl_dirty_since.is_not(None), PublicationState.crl_dirty_since <= threshold)
            .order_by(PublicationState.issuer_id)
        ).scalars())
    written = 0
    for issuer_id in issuers:
        ca = _ca(sandbox, issuer_id)
        signer = _signer(sandbox, ca)
        with sandbox.transaction() as session:
            state = repo.lock_publication_state(session, issuer_id)
            if state.crl_dirty_since is None or state.crl_dirty_since > threshold:
                continue  # another generator published it while we waited for the lock
            generator = _Generator(sandbox, session, ca, state, signer)
            base, entries = generator.full(now)  # clears the mark
            generator.delta(now, base, entries)
        written += 2
    return written


def _past_half(record: CrlRecord | None, now: dt.datetime) -> bool:
    if record is None:
        return True
    return now >= record.this_update + (record.next_update - record.this_update) / 2


def regenerate_due(sandbox: Sandbox, now: dt.datetime) -> int:
    """Full CRL (and a fresh delta beside it) for every CA whose newest full CRL is missing or
    past half its validity; a delta alone where only the delta is. Returns CRLs written."""
    with sandbox.transaction() as session:
        cas = list(session.execute(select(CertificateAuthority).order_by(CertificateAuthority.created_at)).scalars())
    written = 0
    for ca in cas:
        with sandbox.transaction() as session:
            due = _past_half(latest(session, ca.id), now) or _past_half(latest(session, ca.id, delta=True), now)
        if not due:
            continue
        signer = _signer(sandbox, ca)
        with sandbox.transaction() as session:
            generator = _Generator(sandbox, session, ca, repo.lock_publication_state(session, ca.id), signer)
            full = latest(session, ca.id)
            if _past_half(full, now):
                base, entries = generator.full(now)
                generator.delta(now, base, entries)
                written += 2
            elif _past_half(latest(session, ca.id, delta=True), now):
                generator.delta(now, full)
                written += 1
    return written


# --- built on the fly, never stored: as of another time, and the simulator's faults ---------------


def plan_unstored(sandbox: Sandbox, issuer_id: IssuerId, at: dt.datetime) -> CrlPlan:
    """The plan of ``issuer_id``'s correct full CRL as of ``at``: thisUpdate ``at``, what was revoked by then."""
    ca = _ca(sandbox, issuer_id)
    return CrlPlan(entries_at=at, this_update=at, validity=validity(sandbox, ca), key_type=ca.key.key_type)


def _entries_at(session: Session, ca: CertificateAuthority, at: dt.datetime, this_update: dt.datetime) -> list[Row]:
    query = (
        select(Certificate.serial, Revocation.revoked_at, Revocation.reason)
        .join_from(Revocation, Certificate, Revocation.certificate_id == Certificate.id)
        .where(Certificate.issuer_id == ca.id, Revocation.revoked_at <= at)
    )
    if not is_qualified_issuing_ca(ca):
        query = query.where(Certificate.not_after >= this_update)  # as _current_entries
    return [(int(serial, 16), _aware(revoked_at), reason) for serial, revoked_at, reason in session.execute(query)]


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def build_unstored(sandbox: Sandbox, issuer_id: IssuerId, plan: CrlPlan) -> bytes:
    """A full CRL of ``issuer_id`` made from ``plan``, numbered like the newest stored one, announcing no
    delta (there is none to match it)."""
    with sandbox.transaction() as session:
        ca = session.get(CertificateAuthority, issuer_id)
        if ca is None:
            raise QTSPError(Kind.NOT_FOUND, f"no CA {issuer_id!r}")
        number = session.execute(select(func.max(CrlRecord.number)).where(CrlRecord.issuer_id == ca.id)).scalar_one()
        this_update = plan.this_update.astimezone(dt.timezone.utc).replace(microsecond=0)
        entries = _entries_at(session, ca, plan.entries_at, this_update)
        params = core_crl.CrlParams(
            number=number or 0, this_update=this_update, next_update=this_update + plan.validity,
            expired_certs_on_crl=ca.not_before if is_qualified_issuing_ca(ca) else None)
        cert_der, key_ref = ca.cert_der, ca.key.ref
    signer = plan.signer or sandbox.backend(key_ref).signer(key_ref)
    return core_crl.build_crl(cert_der, signer, params, entries)
