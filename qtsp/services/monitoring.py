"""What /metrics reads from the store on each scrape: how old the pre-signed OCSP answers are and how
close each CRL is to its nextUpdate, per issuer."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select

from ca_store.models import CrlRecord, OcspResponse

from ..core.types import IssuerId
from .context import Sandbox


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)  # SQLite returns naive UTC


def publication_margins(sandbox: Sandbox, now: dt.datetime) -> tuple[dict[IssuerId, float], dict[IssuerId, float]]:
    """(age in seconds of the oldest pre-signed OCSP answer, seconds until the newest full CRL's nextUpdate),
    each by issuer id."""
    with sandbox.transaction() as session:
        ages = {issuer: (now - _aware(oldest)).total_seconds() for issuer, oldest in session.execute(
            select(OcspResponse.issuer_id, func.min(OcspResponse.this_update)).group_by(OcspResponse.issuer_id))}
        margins = {issuer: (_aware(latest) - now).total_seconds() for issuer, latest in session.execute(
            select(CrlRecord.issuer_id, func.max(CrlRecord.next_update))
            .where(CrlRecord.delta_base.is_(None)).group_by(CrlRecord.issuer_id))}
    return ages, margins
