"""NCA requests (TS 119 495 6.2.6): a signed register feed and revocation requests.

Each request is a compact JWS signed by a registered NCA credential (ES256, ES384, PS256 or
RS256; ``x5c`` or ``kid`` names the certificate), with claims ``iss`` (the NCA id), ``jti`` (a
unique request id), ``iat``, ``aud`` (the URL of the endpoint it is sent to, as this QTSP's
``base_url`` spells it: a request signed for another QTSP, or another endpoint, is refused) and
``body``. Verification uses joserfc, restricted to the one algorithm the credential's key allows;
the credential itself is checked on every request (withdrawn, revoked, expired, not yet valid, or
no longer chaining to its anchor: refused). An NCA may act only on PSPs and certificates that
carry its own NCA id; anything else answers exactly as a PSP or serial that does not exist, so an
NCA learns nothing of another NCA's. The same ``jti`` with the same body returns the stored
answer; with another body it is refused. A signed status query is good once. The signed request
is stored verbatim as evidence; the answer carries a receipt signed by the QTSP. Revocations are
published in OCSP before the answer leaves. The JWS side (verification, receipts) is ``nca_jws``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, NcaRequest, NcaStatusQuery, PSPAuthorisation

from ..core.audit import canonical_details
from ..core.errors import Kind, QTSPError
from ..core.names import parse_org_id
from ..core.types import OrgId
from ..core.ocsp import REASONS as REASONS  # re-exported for the CLI
from ..core.psd2 import PspRole, parse_roles, roles_text, stored_roles
from ..metrics import NCA_PUBLICATION
from ..clock import utcnow
from ..relying_party.jose import MAX_JWS_BYTES as MAX_JWS_BYTES  # re-exported for the web layer
from . import nca_identity, revocation
from .nca_jws import ALGORITHMS as ALGORITHMS  # re-exported: the NCA's accepted algorithms
from .nca_jws import Verified, sign_receipt, verify
from .context import Sandbox


# --- processing --------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    status: int
    result: dict[str, Any]
    receipt: str
    replayed: bool = False


PATHS = {"authorisation": "/nca/v1/authorisations", "revocation": "/nca/v1/revocation-requests"}


def handle(sandbox: Sandbox, kind: str, compact: bytes | str, *, now: dt.datetime | None = None) -> Outcome:
    received = now or utcnow()
    started = time.perf_counter()
    if kind not in PATHS:
        raise QTSPError(Kind.MALFORMED, f"unknown request kind {kind}")
    v = verify(sandbox, compact, received, path=PATHS[kind])
    body_sha = hashlib.sha256(canonical_details(v.body).encode()).hexdigest()
    stored = _stored(sandbox, v.nca_id, v.jti)
    if stored is not None:
        return _replay(stored, kind, body_sha)
    signer, chain = nca_identity.receipt_signer(sandbox)
    try:
        with sandbox.transaction() as session:
            if kind == "authorisation":
                result, certs, reason = _authorisation(session, v)
            elif kind == "revocation":
                result, certs, reason = _revocation(session, v)
            else:
                raise QTSPError(Kind.MALFORMED, f"unknown request kind {kind}")
            revoked = revocation.revoke_rows(sandbox, session, certs, reason, actor=f"nca:{v.nca_id}", now=received,
                                             details={"nca_request": v.jti}) if certs else []
            published_at = utcnow()
            result.update({
                "request_id": v.jti, "nca_id": v.nca_id, "kind": kind, "body_sha256": body_sha,
                "received_at": received.isoformat(), "published_at": published_at.isoformat(),
                "revoked": [{"serial": r.serial, "issuer": r.issuer_id, "reason": r.reason,
                             "revoked_at": r.revoked_at.isoformat()} for r in revoked],
            })
            receipt = sign_receipt(signer, chain, result)
            session.add(NcaRequest(nca_id=v.nca_id, request_id=v.jti, kind=kind, body_sha256=body_sha, jws=v.compact,
                                   issued_at=v.iat, received_at=received, published_at=published_at, status_code=200,
                                   result=json.dumps(result), receipt=receipt))
            session.flush()
            repo.append_audit(session, at=received, actor=f"nca:{v.nca_id}", action=f"nca.{kind}", subject=v.jti,
                              details={"body_sha256": body_sha, "credential": v.credential_fingerprint,
                                       "revoked": [r.serial for r in revoked], "evidence": f"nca_requests/{v.nca_id}/{v.jti}"})
    except IntegrityError:  # the same request id raced in from another worker: answer as a replay
        stored = _stored(sandbox, v.nca_id, v.jti)
        if stored is None:
            raise
        return _replay(stored, kind, body_sha)
    revocation.published(sandbox)
    NCA_PUBLICATION.observe(time.perf_counter() - started)
    return Outcome(200, result, receipt)


def _stored(sandbox: Sandbox, nca_id: str, jti: str) -> NcaRequest | None:
    with sandbox.transaction() as session:
        return session.execute(select(NcaRequest).where(NcaRequest.nca_id == nca_id, NcaRequest.request_id == jti)).scalar_one_or_none()


def _replay(stored: NcaRequest, kind: str, body_sha: str) -> Outcome:
    if stored.body_sha256 != body_sha or stored.kind != kind:
        raise QTSPError(Kind.CONFLICT, f"request id {stored.request_id} was used before with a different body")
    return Outcome(stored.status_code, json.loads(stored.result), stored.receipt, replayed=True)


def _valid_certs(session: Session, org_id: OrgId, nca_id: str, now: dt.datetime) -> list[Certificate]:
    return list(session.execute(
        select(Certificate).where(Certificate.org_id == org_id, Certificate.nca_id == nca_id,
                                  Certificate.status == "good", Certificate.not_after > now)
        .order_by(Certificate.id).with_for_update()
    ).scalars().all())


def _scoped_psp(session: Session, v: Verified, org_id: Any) -> PSPAuthorisation | None:
    """The PSP, None if this NCA's register has no such PSP. A PSP of another NCA is None too: an NCA
    learns nothing of another's register (its org id naming another NCA is refused without a lookup)."""
    if not isinstance(org_id, str):
        raise QTSPError(Kind.MALFORMED, "org_id must be a string")
    parsed = parse_org_id(org_id)
    if parsed.nca_id != v.nca_id:
        raise QTSPError(Kind.UNAUTHORISED, f"{v.nca_id} may act only on PSPs it authorised ({org_id} names {parsed.nca_id})")
    psp = repo.get_psp(session, OrgId(org_id))
    return psp if psp is not None and psp.nca_id == v.nca_id else None


def _fields(body: dict[str, Any], allowed: set[str], required: set[str]) -> None:
    unknown, missing = set(body) - allowed, required - set(body)
    if unknown:
        raise QTSPError(Kind.MALFORMED, f"unknown body fields: {', '.join(sorted(unknown))}")
    if missing:
        raise QTSPError(Kind.MALFORMED, f"missing body fields: {', '.join(sorted(missing))}")


def _roles(value: Any) -> tuple[PspRole, ...]:
    if not isinstance(value, list) or not all(isinstance(r, str) for r in value):
        raise QTSPError(Kind.MALFORMED, "roles must be a list of role names")
    return parse_roles(",".join(value))


def _authorisation(session: Session, v: Verified) -> tuple[dict[str, Any], list[Certificate], str]:
    body, now = v.body, utcnow()
    action = body.get("action")
    if action == "grant":
        _fields(body, {"action", "org_id", "name", "roles", "country", "locality", "registration_number"},
                {"action", "org_id", "name", "roles"})
    elif action == "change-roles":
        _fields(body, {"action", "org_id", "roles"}, {"action", "org_id", "roles"})
    elif action == "withdraw":
        _fields(body, {"action", "org_id"}, {"action", "org_id"})
    else:
        raise QTSPError(Kind.MALFORMED, "action must be grant, change-roles or withdraw")
    psp = _scoped_psp(session, v, body["org_id"])
    org = parse_org_id(body["org_id"])
    if psp is None and repo.get_psp(session, org.value) is not None:
        # another NCA's PSP under an org id naming this one: the same answers as for a PSP not in the register
        if action == "grant":
            raise QTSPError(Kind.CONFLICT, f"{org.value} is authorised already; use change-roles")
        raise QTSPError(Kind.NOT_FOUND, f"{org.value} is not in the register")
    certs: list[Certificate] = []
    if action == "grant":
        roles = _roles(body["roles"])
        name = body["name"]
        if not isinstance(name, str) or not 1 <= len(name) <= 64 or not name.isprintable() or name.strip() != name:
            raise QTSPError(Kind.MALFORMED, "name must be 1-64 printable characters")
        for field in ("country", "locality", "registration_number"):
            if field in body and (not isinstance(body[field], str) or not 1 <= len(body[field]) <= 64):
                raise QTSPError(Kind.MALFORMED, f"{field} must be a string of 1-64 characters")
        if psp is not None and psp.status == "active":
            raise QTSPError(Kind.CONFLICT, f"{org.value} is authorised already; use change-roles")
        if psp is None:
            psp = PSPAuthorisation(org_id=org.value, legal_name=name, nca_id=v.nca_id,
                                   authorisation_number=org.authorisation_number or "", roles=roles_text(roles),
                                   status="active", country=body.get("country", org.country), locality=body.get("locality"),
                                   registration_number=body.get("registration_number"),
                                   business_category="Private Organization", created_at=now, updated_at=now)
            repo.add_psp(session, psp)
        else:
            psp.legal_name, psp.roles, psp.status, psp.updated_at = name, roles_text(roles), "active", now
    else:
        if psp is None:
            raise QTSPError(Kind.NOT_FOUND, f"{org.value} is not in the register")
        if action == "change-roles":
            roles = _roles(body["roles"])
            removed = set(stored_roles(psp.roles)) - set(roles)
            # A role withdrawn makes the certificates carrying it inaccurate; a role added revokes nothing.
            certs = [c for c in _valid_certs(session, psp.org_id, v.nca_id, now)
                     if removed & set(stored_roles(c.roles))]
            psp.roles, psp.updated_at = roles_text(roles), now
        else:
            psp.status, psp.updated_at = "withdrawn", now
            certs = _valid_certs(session, psp.org_id, v.nca_id, now)
    session.flush()
    result = {"psp": {"org_id": psp.org_id, "name": psp.legal_name, "roles": psp.roles.split(","), "status": psp.status},
              "action": action}
    return result, certs, "privilege-withdrawn"


def _revocation(session: Session, v: Verified) -> tuple[dict[str, Any], list[Certificate], str]:
    body, now = v.body, utcnow()
    _fields(body, {"org_id", "authorisation_number", "serials", "reason"}, {"reason"})
    reason = body["reason"]
    if not isinstance(reason, str) or reason not in REASONS:
        raise QTSPError(Kind.MALFORMED, f"reason must be one of {', '.join(REASONS)}")
    if ("org_id" in body) == ("authorisation_number" in body):
        raise QTSPError(Kind.MALFORMED, "name the PSP by exactly one of org_id or authorisation_number")
    if "org_id" in body:
        psp = _scoped_psp(session, v, body["org_id"])
    else:
        number = body["authorisation_number"]
        if not isinstance(number, str) or not 1 <= len(number) <= 64:
            raise QTSPError(Kind.MALFORMED, "authorisation_number must be a string")
        psp = session.execute(select(PSPAuthorisation).where(PSPAuthorisation.nca_id == v.nca_id,
                                                             PSPAuthorisation.authorisation_number == number)).scalar_one_or_none()
    if psp is None:
        raise QTSPError(Kind.NOT_FOUND, "no PSP with that authorisation in this NCA's register")
    valid = _valid_certs(session, psp.org_id, v.nca_id, now)
    already: list[str] = []
    if "serials" in body:
        serials = body["serials"]
        if not isinstance(serials, list) or not 1 <= len(serials) <= 1000 or not all(isinstance(s, str) for s in serials):
            raise QTSPError(Kind.MALFORMED, "serials must be a list of 1-1000 hex strings")
        wanted = {s.upper().replace(":", "").lstrip("0") for s in serials}
        by_serial = {c.serial.lstrip("0"): c for c in valid}
        for serial in sorted(wanted - set(by_serial)):
            # Only this PSP's certificates under this NCA are looked at: another NCA's (or PSP's) serial gets
            # exactly the answer of a serial never issued.
            row = session.execute(select(Certificate).where(
                Certificate.serial.in_([serial, "0" + serial]), Certificate.nca_id == v.nca_id,
                Certificate.org_id == psp.org_id)).scalars().first()
            if row is None:
                raise QTSPError(Kind.NOT_FOUND, f"no certificate {serial} of {psp.org_id}")
            already.append(row.serial)  # revoked or expired already: nothing to do
        valid = [by_serial[s] for s in wanted & set(by_serial)]
    return {"psp": {"org_id": psp.org_id, "name": psp.legal_name}, "already_revoked_or_expired": sorted(already)}, valid, reason



def status_query(sandbox: Sandbox, compact: str, request_id: str, *, path: str, now: dt.datetime | None = None) -> Outcome:
    """A signed status query (``Authorization: JWS``, body {"get": request_id}), good once: its jti is kept
    for twice the request window (beyond that its iat is refused anyway), and a second use is refused."""
    now = now or utcnow()
    verified = verify(sandbox, compact, now, path=path)
    if verified.body != {"get": request_id}:
        raise QTSPError(Kind.MALFORMED, 'the signed body must be {"get": "<request id>"} for this URL')
    horizon = now - dt.timedelta(seconds=2 * sandbox.config.nca_request_window_seconds)
    try:
        with sandbox.transaction() as session:
            session.execute(delete(NcaStatusQuery).where(NcaStatusQuery.seen_at < horizon))
            session.add(NcaStatusQuery(nca_id=verified.nca_id, jti=verified.jti, seen_at=now))
            session.flush()
    except IntegrityError:
        raise QTSPError(Kind.UNAUTHENTICATED, f"the signed query {verified.jti} was used already; sign a new one") from None
    return get_request(sandbox, verified.nca_id, request_id)


def get_request(sandbox: Sandbox, nca_id: str, request_id: str) -> Outcome:
    stored = _stored(sandbox, nca_id, request_id)
    if stored is None:
        raise QTSPError(Kind.NOT_FOUND, f"no request {request_id} from {nca_id}")
    return Outcome(stored.status_code, json.loads(stored.result), stored.receipt, replayed=True)


def list_requests(sandbox: Sandbox, nca_id: str | None = None) -> list[dict[str, Any]]:
    with sandbox.transaction() as session:
        query = select(NcaRequest).order_by(NcaRequest.id)
        if nca_id:
            query = query.where(NcaRequest.nca_id == nca_id)
        out = []
        for row in session.execute(query).scalars():
            latency = None if row.published_at is None else (row.published_at - row.received_at).total_seconds()
            result = json.loads(row.result)
            out.append({"nca_id": row.nca_id, "request_id": row.request_id, "kind": row.kind,
                        "received_at": row.received_at.isoformat(), "published_at": row.published_at and row.published_at.isoformat(),
                        "receipt_to_publication_seconds": latency, "within_24h": latency is not None and latency < 86400,
                        "revoked": [r["serial"] for r in result.get("revoked", [])], "body_sha256": row.body_sha256})
        return out
