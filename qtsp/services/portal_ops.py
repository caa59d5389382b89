"""What the portal's operator pages show, read from the store (every function checks the role first):
the sandbox in numbers, issuance and revocation per day, the scheduler's jobs and the last thing each
one did, CA and OCSP responder certificates with their expiry, NCA requests with their receipts, and the
audit log with ``audit.check``'s verdict (the check ``qtsp audit verify`` runs)."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from sqlalchemy import func, inspect, select, text

from ca_store.models import (AuditEvent, Certificate, CertificateAuthority, CrlRecord, NcaRequest, OcspResponse,
                             PSPAuthorisation, Revocation, TrustedListRecord)

from . import audit
from .context import Sandbox
from .portal import Principal, require_reader

MAX_EVENTS = 200
MAX_REQUESTS = 200


@dataclass(frozen=True)
class Overview:
    psps: int
    certificates: int
    revoked: int
    valid: int


@dataclass(frozen=True)
class Day:
    day: dt.date
    issued: int
    revoked: int


@dataclass(frozen=True)
class JobView:
    id: str
    next_run: dt.datetime | None
    last_effect: str
    last_at: dt.datetime | None


@dataclass(frozen=True)
class CertView:
    ca_id: str
    what: str  # "CA" or "OCSP responder"
    subject: str
    not_after: dt.datetime
    days_left: int


@dataclass(frozen=True)
class AuditView:
    ok: bool
    events: int
    problem: str | None
    signed_heads: int
    recent: list[dict[str, Any]]


def overview(sandbox: Sandbox, who: Principal, now: dt.datetime) -> Overview:
    require_reader(who)
    with sandbox.transaction() as session:
        psps = session.scalar(select(func.count()).select_from(PSPAuthorisation)) or 0
        total = session.scalar(select(func.count()).select_from(Certificate)) or 0
        revoked = session.scalar(select(func.count()).select_from(Revocation)) or 0
        valid = session.scalar(select(func.count()).select_from(Certificate).where(
            Certificate.status == "good", Certificate.not_after > now)) or 0
    return Overview(psps, total, revoked, valid)


def activity(sandbox: Sandbox, who: Principal, now: dt.datetime, days: int = 30) -> list[Day]:
    """Certificates issued and revoked per UTC day, the last ``days`` days up to ``now``."""
    require_reader(who)
    start = (now - dt.timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    issued: dict[dt.date, int] = {}
    revoked: dict[dt.date, int] = {}
    with sandbox.transaction() as session:
        for (at,) in session.execute(select(Certificate.created_at).where(Certificate.created_at >= start)):
            issued[at.date()] = issued.get(at.date(), 0) + 1
        for (at,) in session.execute(select(Revocation.revoked_at).where(Revocation.revoked_at >= start)):
            revoked[at.date()] = revoked.get(at.date(), 0) + 1
    return [Day(d, issued.get(d, 0), revoked.get(d, 0))
            for d in ((start + dt.timedelta(days=i)).date() for i in range(days))]


def jobs(sandbox: Sandbox, who: Principal) -> list[JobView]:
    """The scheduler's jobs (APScheduler's table, when a scheduler has run) and what each last did, as the
    store shows it: the newest OCSP answer, CRL and Trusted List, the last audit event anchored."""
    require_reader(who)
    with sandbox.transaction() as session:
        scheduled: dict[str, dt.datetime | None] = {}
        if inspect(session.connection()).has_table("apscheduler_jobs"):
            for job_id, next_run in session.execute(text("SELECT id, next_run_time FROM apscheduler_jobs")):
                scheduled[str(job_id)] = None if next_run is None else dt.datetime.fromtimestamp(float(next_run),
                                                                                                   dt.timezone.utc)
        ocsp = session.scalar(select(func.max(OcspResponse.produced_at)))
        crl_full = session.scalar(select(func.max(CrlRecord.this_update)).where(CrlRecord.delta_base.is_(None)))
        tl = session.scalar(select(func.max(TrustedListRecord.issued_at)))
    anchored = audit.check(sandbox).last_signed
    effects = {
        "refresh-ocsp": ("newest pre-signed OCSP answer", ocsp),
        "publish-dirty-crls": ("newest CRL", crl_full),
        "refresh-crls": ("newest CRL", crl_full),
        "rotate-keys": ("(rotates OCSP responder keys when due)", None),
        "publish-trusted-list": ("newest Trusted List", tl),
        "anchor-audit": ("last signed audit head", None if anchored is None else anchored.at),
    }
    names = list(dict.fromkeys([*effects, *sorted(scheduled)]))
    return [JobView(name, scheduled.get(name), effects.get(name, ("", None))[0], _aware(effects.get(name, ("", None))[1]))
            for name in names]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def certificates_of_the_service(sandbox: Sandbox, who: Principal, now: dt.datetime) -> list[CertView]:
    """Every CA certificate and OCSP responder certificate, soonest expiry first."""
    require_reader(who)
    out: list[CertView] = []
    with sandbox.transaction() as session:
        for ca in session.execute(select(CertificateAuthority)).scalars():
            cert = x509.load_der_x509_certificate(ca.cert_der)
            out.append(_cert_view(ca.id, "CA", cert, now))
            if ca.ocsp_responder_der is not None:
                out.append(_cert_view(ca.id, "OCSP responder", x509.load_der_x509_certificate(ca.ocsp_responder_der), now))
    return sorted(out, key=lambda v: v.not_after)


def _cert_view(ca_id: str, what: str, cert: x509.Certificate, now: dt.datetime) -> CertView:
    not_after = cert.not_valid_after_utc
    return CertView(ca_id, what, cert.subject.rfc4514_string(), not_after, (not_after - now).days)


def nca_requests(sandbox: Sandbox, who: Principal) -> list[dict[str, Any]]:
    """The newest NCA requests, each with its outcome and the QTSP's signed receipt (compact JWS)."""
    require_reader(who)
    with sandbox.transaction() as session:
        rows = session.execute(select(NcaRequest).order_by(NcaRequest.id.desc()).limit(MAX_REQUESTS)).scalars().all()
        return [{"nca_id": r.nca_id, "request_id": r.request_id, "kind": r.kind, "received_at": r.received_at,
                 "published_at": r.published_at, "status_code": r.status_code,
                 "revoked": [x.get("serial") for x in json.loads(r.result).get("revoked", [])],
                 "receipt": r.receipt} for r in rows]


def audit_log(sandbox: Sandbox, who: Principal, limit: int = MAX_EVENTS) -> AuditView:
    """The newest events and the whole chain's verification (hash chain, signed heads, store state)."""
    require_reader(who)
    report = audit.check(sandbox)
    problem = None
    if report.chain is not None:
        problem = f"event {report.chain.seq}: {report.chain.problem}"
    elif report.head_problems:
        problem = f"signed head line {report.head_problems[0].line}: {report.head_problems[0].problem}"
    elif report.state_problems:
        problem = f"{report.state_problems[0].subject}: {report.state_problems[0].problem}"
    with sandbox.transaction() as session:
        rows = session.execute(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(limit)).scalars().all()
        recent = [{"seq": e.seq, "at": e.at, "actor": e.actor, "action": e.action, "subject": e.subject,
                   "details": e.details} for e in rows]
    return AuditView(report.ok, report.events, problem, report.signed_heads, recent)
