"""What the OCSP responder reads from the store per request, as plain values: certificate statuses now
and as of another time, a pre-signed answer, and the store's change counter.

Plain connections and three-column queries: these run on the responder's cache misses, and an
answer signed on demand (a nonce) reads statuses on every request past the responder's own cache.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Iterator, Sequence

from sqlalchemy import func, select

from ca_store.models import AuditHead, Certificate, OcspResponse, Revocation

from ..core.types import IssuerId, serial_hex
from .context import Sandbox

StatusRow = tuple[str, dt.datetime | None, str | None]  # status, revoked_at, reason


@dataclass(frozen=True)
class Presigned:
    der: bytes
    status: str  # good | revoked
    this_update: dt.datetime
    next_update: dt.datetime


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def presigned(sandbox: Sandbox, issuer_key_hash: bytes, serial: int) -> Presigned | None:
    """The stored single-certificate answer for this CertID (issuerKeyHash names the hash algorithm too)."""
    query = select(OcspResponse.der, OcspResponse.status, OcspResponse.this_update, OcspResponse.next_update).where(
        OcspResponse.issuer_key_hash == issuer_key_hash.hex(), OcspResponse.serial == serial_hex(serial))
    with sandbox.transaction() as session:
        row = session.execute(query).one_or_none()
    if row is None:
        return None
    return Presigned(row.der, row.status, _aware(row.this_update), _aware(row.next_update))


def statuses(sandbox: Sandbox, ca_id: IssuerId, serials: Sequence[int]) -> dict[int, StatusRow | None]:
    """(status, revoked_at, reason) per serial as the store says now; None: never issued by ``ca_id``."""
    wanted = {serial_hex(s): s for s in serials}
    query = (
        select(Certificate.serial, Revocation.revoked_at, Revocation.reason)
        .outerjoin(Revocation, Revocation.certificate_id == Certificate.id)
        .where(Certificate.issuer_id == ca_id, Certificate.serial.in_(list(wanted)))
    )
    with sandbox.engine.connect() as conn:
        rows = {r.serial: r for r in conn.execute(query)}
    result: dict[int, StatusRow | None] = {}
    for text, serial in wanted.items():
        row = rows.get(text)
        if row is None:
            result[serial] = None
        elif row.revoked_at is None:
            result[serial] = ("good", None, None)
        else:
            result[serial] = ("revoked", _aware(row.revoked_at), row.reason)
    return result


def statuses_as_of(sandbox: Sandbox, ca_id: IssuerId, serials: Sequence[int], at: dt.datetime) -> dict[int, StatusRow | None]:
    """What the store said at ``at``: None (never issued) for a certificate that did not exist yet (recorded
    after ``at`` and valid only from after it: the simulator's backdated scenarios exist from notBefore),
    "good" for one revoked after it."""
    wanted = {serial_hex(s): s for s in serials}
    query = (
        select(Certificate.serial, Certificate.created_at, Certificate.not_before, Revocation.revoked_at,
               Revocation.reason)
        .outerjoin(Revocation, Revocation.certificate_id == Certificate.id)
        .where(Certificate.issuer_id == ca_id, Certificate.serial.in_(list(wanted)))
    )
    with sandbox.engine.connect() as conn:
        rows = {r.serial: r for r in conn.execute(query)}
    result: dict[int, StatusRow | None] = {}
    for text, serial in wanted.items():
        row = rows.get(text)
        if row is None or min(_aware(row.created_at), _aware(row.not_before)) > at:
            result[serial] = None
        elif row.revoked_at is None or _aware(row.revoked_at) > at:
            result[serial] = ("good", None, None)
        else:
            result[serial] = ("revoked", _aware(row.revoked_at), row.reason)
    return result


def change_counter(sandbox: Sandbox) -> int:
    """The store's change counter (the audit head): it moves with every change, on any host."""
    with sandbox.engine.connect() as conn:
        value = conn.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar()
    return int(value or 0)


def issued_count(sandbox: Sandbox) -> int:
    """How many certificates the store holds (to size the responder's filter of issued serials)."""
    with sandbox.engine.connect() as conn:
        return int(conn.execute(select(func.count(Certificate.id))).scalar_one())


def issued_with_ids(sandbox: Sandbox, ids: Sequence[int]) -> list[tuple[int, str, str]]:
    """(id, issuer id, serial hex) of those of ``ids`` that are recorded now (the others: not committed yet,
    or rolled back)."""
    if not ids:
        return []
    query = select(Certificate.id, Certificate.issuer_id, Certificate.serial).where(Certificate.id.in_(list(ids)))
    with sandbox.engine.connect() as conn:
        return sorted((int(r.id), str(r.issuer_id), str(r.serial)) for r in conn.execute(query))


def issued_after(sandbox: Sandbox, after_id: int, chunk: int = 20_000) -> Iterator[list[tuple[int, str, str]]]:
    """(id, issuer id, serial hex) of the certificates recorded after ``after_id``, in id order, a chunk
    per short query (no cursor held open while the caller works)."""
    while True:
        query = (select(Certificate.id, Certificate.issuer_id, Certificate.serial)
                 .where(Certificate.id > after_id).order_by(Certificate.id).limit(chunk))
        with sandbox.engine.connect() as conn:
            rows = [(int(r.id), str(r.issuer_id), str(r.serial)) for r in conn.execute(query)]
        if not rows:
            return
        yield rows
        after_id = rows[-1][0]
