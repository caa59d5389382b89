"""The refresh job's service: re-sign pre-signed OCSP answers before half their validity (RFC 5019 4,
BR 4.9.10), and sign any missing ones, one issuer at a time so that one bad issuer holds back no other.

- An issuer without an OCSP responder (the NCA CA, whose receipt and credential certificates are in
  the store) is skipped: its certificates' status is in its CRL only. They are counted, never "due".
- An issuer whose responder cannot be loaded or cannot sign (a missing key, Vault down) fails alone:
  its due certificates are counted failed and stay due for the next run; the others are re-signed.
- A batch that fails is retried certificate by certificate, each in its own transaction, so one bad
  row costs only itself; after FAILS_BEFORE_GIVING_UP failures in a row and no success, the issuer
  is given up for this run (its signer, not a row, is what fails).

Batches are walked by certificate id (keyset), so what failed is never picked again in the same run:
a run always ends. Counts go to ``qtsp_ocsp_refresh_certificates_total{issuer, outcome}``.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, OcspResponse

from ..core.types import IssuerId
from ..metrics import OCSP_REFRESH
from . import ocsp as ocsp_svc
from .context import Sandbox

log = logging.getLogger("qtsp.services.ocsp_refresh")

FAILS_BEFORE_GIVING_UP = 3


@dataclass
class RefreshReport:
    responses: int = 0  # responses signed and stored (two per certificate: SHA-1 and SHA-256 CertIDs)
    signed: dict[IssuerId, int] = field(default_factory=dict)  # certificates re-signed, by issuer
    skipped: dict[IssuerId, int] = field(default_factory=dict)  # certificates of issuers without a responder
    failed: dict[IssuerId, int] = field(default_factory=dict)  # certificates left due after a failure
    errors: dict[IssuerId, str] = field(default_factory=dict)  # the first failure per issuer, for the log

    def _add(self, counts: dict[IssuerId, int], issuer: IssuerId, n: int) -> None:
        if n:
            counts[issuer] = counts.get(issuer, 0) + n

    def _fail(self, issuer: IssuerId, n: int, exc: BaseException) -> None:
        self._add(self.failed, issuer, n)
        self.errors.setdefault(issuer, f"{type(exc).__name__}: {exc}")


def _due(issuer: IssuerId, now: dt.datetime, half: dt.timedelta) -> Select[Certificate]:
    due = select(OcspResponse.certificate_id).where(OcspResponse.next_update <= now + half)
    have = select(OcspResponse.certificate_id)
    return select(Certificate).where(Certificate.issuer_id == issuer,
                                     Certificate.id.in_(due) | Certificate.id.not_in(have))


def _count_due(sandbox: Sandbox, issuer: IssuerId, now: dt.datetime, half: dt.timedelta, after: int) -> int:
    query = _due(issuer, now, half).where(Certificate.id > after).with_only_columns(func.count(Certificate.id))
    with sandbox.transaction() as session:
        return int(session.execute(query).scalar_one())


def _skipped(session: Session, issuers: list[IssuerId], now: dt.datetime) -> dict[IssuerId, int]:
    """Certificates not yet expired of CAs without a responder: what OCSP cannot answer for."""
    if not issuers:
        return {}
    rows = session.execute(select(Certificate.issuer_id, func.count(Certificate.id))
                           .where(Certificate.issuer_id.in_(issuers), Certificate.not_after > now)
                           .group_by(Certificate.issuer_id)).all()
    return {IssuerId(issuer): int(n) for issuer, n in rows if n}


def refresh_due(sandbox: Sandbox, now: dt.datetime, *, batch: int = 500) -> RefreshReport:
    """Re-sign the responses past half their validity, and any missing ones, issuer by issuer."""
    half = dt.timedelta(hours=sandbox.config.ocsp_validity_hours / 2)
    report = RefreshReport()
    with sandbox.transaction() as session:
        cas = list(repo.list_cas(session))
        answering = [ca.id for ca in cas if ocsp_svc.has_responder(ca)]
        report.skipped = _skipped(session, [ca.id for ca in cas if not ocsp_svc.has_responder(ca)], now)
    for issuer in answering:
        _refresh_issuer(sandbox, issuer, now, half, batch, report)
    for issuer, n in report.signed.items():
        OCSP_REFRESH.labels(issuer, "signed").inc(n)
    for issuer, n in report.skipped.items():
        OCSP_REFRESH.labels(issuer, "skipped").inc(n)
    for issuer, n in report.failed.items():
        OCSP_REFRESH.labels(issuer, "failed").inc(n)
        log.warning("OCSP refresh: %d certificates of %s not re-signed (%s); they stay due for the next run",
                    n, issuer, report.errors.get(issuer, "?"))
    return report


def _refresh_issuer(sandbox: Sandbox, issuer: IssuerId, now: dt.datetime, half: dt.timedelta, batch: int,
                    report: RefreshReport) -> None:
    try:
        with sandbox.transaction() as session:
            entry = ocsp_svc.issuer_entry(sandbox, repo.get_ca(session, issuer))
    except Exception as exc:  # noqa: BLE001 - the responder cannot be loaded: this issuer fails alone
        report._fail(issuer, _count_due(sandbox, issuer, now, half, 0), exc)
        return
    if entry is None:  # its responder went away since the list was read
        return
    entries = {issuer: entry}
    last_id = 0
    while True:
        ids: list[int] = []
        try:
            with sandbox.transaction() as session:
                certs = list(session.execute(_due(issuer, now, half).where(Certificate.id > last_id)
                                             .order_by(Certificate.id).limit(batch)).scalars().all())
                ids = [c.id for c in certs]
                if not ids:
                    return
                report.responses += ocsp_svc.presign(sandbox, session, certs, now, entries)
            report._add(report.signed, issuer, len(ids))
        except Exception as exc:  # noqa: BLE001 - rolled back: try each certificate of the batch alone
            if not ids:
                report._fail(issuer, _count_due(sandbox, issuer, now, half, last_id), exc)
                return
            if not _one_by_one(sandbox, issuer, ids, now, entries, report):
                report._fail(issuer, _count_due(sandbox, issuer, now, half, ids[-1]), exc)
                return
        last_id = ids[-1]


def _one_by_one(sandbox: Sandbox, issuer: IssuerId, ids: list[int], now: dt.datetime,
                entries: dict[IssuerId, ocsp_svc.IssuerEntry], report: RefreshReport) -> bool:
    """Each certificate in its own transaction; False when the issuer looks broken (its first
    FAILS_BEFORE_GIVING_UP all failed): the rest of the batch is then counted failed, untried."""
    fails_in_a_row, any_done = 0, False
    for n, cert_id in enumerate(ids):
        try:
            with sandbox.transaction() as session:
                cert = session.get(Certificate, cert_id)
                if cert is not None:
                    report.responses += ocsp_svc.presign(sandbox, session, [cert], now, entries)
            report._add(report.signed, issuer, 1)
            fails_in_a_row, any_done = 0, True
        except Exception as exc:  # noqa: BLE001 - this certificate alone
            report._fail(issuer, 1, exc)
            fails_in_a_row += 1
            if not any_done and fails_in_a_row >= FAILS_BEFORE_GIVING_UP:
                report._add(report.failed, issuer, len(ids) - n - 1)
                return False
    return True
