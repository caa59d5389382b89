"""Revocation: authorise (by the caller) -> record durably -> re-sign OCSP -> mark the CRL -> audit.

The acknowledgement (this function returning) comes after the commit, and the commit holds the
re-signed OCSP responses, so OCSP says "revoked" before anyone is told it is done.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, Revocation

from ..clock import real_utcnow, time_travelling, utcnow
from ..core.errors import Kind, QTSPError
from ..metrics import REVOCATION_TO_PUBLICATION
from ..core.ocsp import REASONS
from ..core.types import IssuerId, canonical_serial
from . import access, ocsp as ocsp_svc
from .access import EVERYTHING, Scope
from .authorities import is_ca_certificate
from .context import Sandbox
from .generation import Generation

# BR 7.2.2: the reasons a subscriber-certificate CRL may carry; certificateHold never.
REASON_CHOICES = tuple(REASONS)


@dataclass(frozen=True)
class RevocationResult:
    serial: str
    issuer_id: str
    reason: str
    revoked_at: dt.datetime
    changed_reason_from: str | None = None
    # Whether an OCSP responder answers for the issuer (re-signed "revoked" answers committed with the
    # revocation). False for a CA without one (nca-ca: receipt and NCA credential certificates): the
    # revocation is then published in the issuer's CRL only.
    ocsp: bool = True

    @property
    def published_in(self) -> list[str]:
        return ["ocsp", "crl"] if self.ocsp else ["crl"]

    @property
    def note(self) -> str | None:
        if self.ocsp:
            return None
        return f"{self.issuer_id} has no OCSP responder: this revocation is published in its CRL only"


def revoke(sandbox: Sandbox, serial: str, reason: str = "unspecified", *, actor: str = "cli",
           issuer_id: IssuerId | None = None, now: dt.datetime | None = None,
           allowed_org_nca: str | None = None, scope: Scope = EVERYTHING) -> RevocationResult:
    """Revoke one certificate. ``allowed_org_nca`` restricts to certificates carrying that NCAId; a certificate
    outside the caller's ``scope`` is answered as a serial never issued."""
    if reason not in REASONS:
        raise QTSPError(Kind.MALFORMED, f"unknown reason {reason!r}: one of {', '.join(REASON_CHOICES)}")
    serial = canonical_serial(serial)
    now = now or utcnow()
    received = time.perf_counter()
    with sandbox.transaction() as session:
        cert = access.one_certificate(session, serial, issuer_id, scope, for_update=True)
        if is_ca_certificate(session, cert):
            # A CA is revoked with its issuer's key, audited as such (``ca_revocation``): never through
            # the API, revoke-by-key or ``qtsp revoke``, which an operator token or a subscriber can reach.
            raise QTSPError(Kind.POLICY, f"{serial} is a CA certificate: revoke a CA with `qtsp ca revoke`")
        if allowed_org_nca is not None and cert.nca_id != allowed_org_nca:
            raise QTSPError(Kind.UNAUTHORISED, f"certificate {serial} does not carry NCA id {allowed_org_nca}")
        previous = cert.revocation
        if previous is None:
            result = revoke_rows(sandbox, session, [cert], reason, actor=actor, now=now)[0]
        else:
            # RFC 5280 5.3.1 / BR 4.9.1: the only change allowed is to keyCompromise.
            if reason != "key-compromise" or previous.reason == "key-compromise":
                raise QTSPError(Kind.ALREADY_REVOKED,
                                f"certificate {serial} is already revoked ({previous.reason}, {previous.revoked_at:%Y-%m-%d %H:%M:%S}Z); "
                                "only a change of reason to key-compromise is allowed")
            result = RevocationResult(serial, cert.issuer_id, reason, previous.revoked_at, previous.reason,
                                      ocsp=cert.issuer_id in ocsp_svc.responder_issuers(session))
            previous.reason = reason
            session.flush()
            session.refresh(cert)
            ocsp_svc.presign(sandbox, session, [cert], now)
            repo.mark_crl_dirty(session, cert.issuer_id, dirty_time(now))
            repo.append_audit(session, at=now, actor=actor, action="certificate.revoke.reason_change", subject=serial,
                              details={"issuer": cert.issuer_id, "reason": reason, "from": result.changed_reason_from,
                                       "revoked_at": previous.revoked_at.isoformat()})
    published(sandbox)  # every OCSP worker drops its cache before we acknowledge
    REVOCATION_TO_PUBLICATION.observe(time.perf_counter() - received)
    return result


def dirty_time(now: dt.datetime) -> dt.datetime:
    """When a CRL became due: ``now``, except under time travel, where the scheduler's (real) clock counts;
    a date ahead would hold the CRL back until then."""
    return real_utcnow() if time_travelling() else now


def _check_travelled_date(certs: Sequence[Certificate], revoked_at: dt.datetime) -> None:
    if revoked_at > real_utcnow() + dt.timedelta(seconds=1):
        raise QTSPError(Kind.POLICY, f"a revocation cannot be dated in the future ({revoked_at:%Y-%m-%d %H:%M:%S}Z): "
                        "time travel may go back, not ahead, for a revocation")
    for cert in certs:
        if revoked_at < cert.not_before:
            raise QTSPError(Kind.POLICY, f"certificate {cert.serial} was not yet issued at {revoked_at:%Y-%m-%d %H:%M:%S}Z "
                            f"(notBefore {cert.not_before:%Y-%m-%d %H:%M:%S}Z)")


def revoke_rows(sandbox: Sandbox, session: Session, certs: Sequence[Certificate], reason: str, *, actor: str,
                now: dt.datetime, details: dict[str, Any] | None = None,
                reasons: Sequence[str] = REASON_CHOICES) -> list[RevocationResult]:
    """Revoke certificate rows (not yet revoked) inside the caller's transaction: revocation rows,
    re-signed OCSP responses in one batch, dirty CRLs, audit events. The caller commits, then
    calls ``published(sandbox)`` before it acknowledges. ``reasons``: those allowed (a CA's differ)."""
    if reason not in reasons:
        raise QTSPError(Kind.MALFORMED, f"unknown reason {reason!r}: one of {', '.join(reasons)}")
    revoked_at = now.replace(microsecond=0)
    if time_travelling():  # --at, or X-QTSP-Time: back in time within the certificate's life, never ahead
        _check_travelled_date(certs, revoked_at)
    results = []
    answering = ocsp_svc.responder_issuers(session) if certs else set()
    for cert in certs:
        session.add(Revocation(certificate_id=cert.id, revoked_at=revoked_at, reason=reason, requested_by=actor))
        cert.status = "revoked"
        results.append(RevocationResult(cert.serial, cert.issuer_id, reason, revoked_at,
                                        ocsp=cert.issuer_id in answering))
    session.flush()
    for cert in certs:
        session.refresh(cert)
    if certs:
        ocsp_svc.presign(sandbox, session, list(certs), now)
        for issuer in {c.issuer_id for c in certs}:
            repo.mark_crl_dirty(session, issuer, dirty_time(now))
        repo.append_audit_many(session, now, [
            (actor, "certificate.revoke", c.serial,
             {"issuer": c.issuer_id, "reason": reason, "revoked_at": revoked_at.isoformat(), **(details or {})})
            for c in certs])
        # An NCA credential's certificate revoked: the credential is withdrawn with it, in this transaction.
        withdrawn = repo.withdraw_credentials_of(session, [c.id for c in certs], revoked_at)
        if withdrawn:
            repo.append_audit_many(session, now, [
                (actor, "nca.credential.withdraw", w.nca_id, {"fingerprint": w.fingerprint_sha256, "reason": reason})
                for w in withdrawn])
    return results


def published(sandbox: Sandbox) -> None:
    """After the commit, before the acknowledgement: every OCSP worker drops its cache."""
    Generation(sandbox.data_dir).bump()
