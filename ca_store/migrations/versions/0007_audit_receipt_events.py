"""audit: the issuance event of the QTSP's receipt certificate, for sandboxes made before it was written

``qtsp audit verify`` checks that every certificate row has the event that issued it. The receipt
certificate (issued under nca-ca with the first NCA credential) was stored without one; this appends
it, once, for exactly those rows: a certificate under nca-ca that the receipts key names
(``key_references.purpose = 'receipts:<serial>'``) and that no ``certificate.issue`` event names.
The events say they were back-filled (actor ``migration``). No schema change.

Revision ID: 0007
Revises: 0006
"""
import datetime as dt
import hashlib

from alembic import op
import sqlalchemy as sa

from ca_store.models import UTCDateTime
from qtsp.core.audit import GENESIS, canonical_details, event_hash


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_events = sa.table("audit_events", sa.column("seq", sa.Integer), sa.column("at", UTCDateTime()),
                   sa.column("actor", sa.String), sa.column("action", sa.String), sa.column("subject", sa.String),
                   sa.column("details", sa.Text), sa.column("prev_hash", sa.String), sa.column("hash", sa.String))


def upgrade() -> None:
    bind = op.get_bind()
    missing = bind.execute(sa.text(
        "SELECT c.serial, c.profile, c.der FROM certificates c JOIN key_references k "
        "ON k.purpose = 'receipts:' || c.serial WHERE c.issuer_id = 'nca-ca' AND NOT EXISTS "
        "(SELECT 1 FROM audit_events e WHERE e.action = 'certificate.issue' AND e.subject = c.serial) "
        "ORDER BY c.id")).all()
    if not missing:
        return
    head = bind.execute(sa.text("SELECT seq, hash FROM audit_head WHERE id = 1")).one_or_none()
    seq, prev = (0, GENESIS) if head is None else (head[0], head[1])
    at = dt.datetime.now(dt.timezone.utc)
    for serial, profile, der in missing:
        seq += 1
        details = canonical_details({"issuer": "nca-ca", "profile": profile, "purpose": "receipts",
                                     "sha256": hashlib.sha256(der).hexdigest(), "backfilled": True})
        digest = event_hash(prev, seq, at, "migration", "certificate.issue", serial, details)
        bind.execute(sa.insert(_events).values(seq=seq, at=at, actor="migration", action="certificate.issue",
                                               subject=serial, details=details, prev_hash=prev, hash=digest))
        prev = digest
    if head is None:
        bind.execute(sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, :s, :h)"), {"s": seq, "h": prev})
    else:
        bind.execute(sa.text("UPDATE audit_head SET seq = :s, hash = :h WHERE id = 1"), {"s": seq, "h": prev})


def downgrade() -> None:
    """Nothing to undo on purpose: the back-filled event is part of the hash chain now, and removing an
    event from the chain is exactly what ``qtsp audit verify`` reports as tampering. The schema is unchanged."""
