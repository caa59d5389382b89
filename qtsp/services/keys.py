"""Key rotation policy: OCSP responder keys every N days, issuing-CA rollover on policy; the key listing.

What a rotation makes (a new responder, a new CA generation) is ``authorities.lifecycle``'s; here
is when it is due, and what follows it: after a responder rotation, every pre-signed response of
that CA is re-signed with the new key at once. The old responder certificate is not revoked: it
stays valid past the responses it signed, and it is kept with its key (``retired_ocsp_responders``)
to sign answers as of a time before the rotation.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509

from ca_store import repositories as repo
from ca_store.models import CertificateAuthority

from . import authorities, ocsp as ocsp_svc
from .context import Sandbox
from ..clock import utcnow
from ..core.types import IssuerId, KeyRef
from .generation import Generation


@dataclass(frozen=True)
class KeyView:
    ref: str
    version: int  # the Transit key version, or the file key's generation (qwac-ca-2 -> 2)
    key_type: str
    purpose: str
    certificate: str  # what it signs for: "ca qwac-ca" or "ocsp responder of qwac-ca"
    created_at: dt.datetime
    next_rotation: dt.datetime | None
    active: bool


@dataclass(frozen=True)
class Planned:
    action: str  # rotate-ocsp | rollover-ca
    ca_id: IssuerId
    due_at: dt.datetime
    why: str


def _responder_not_before(ca: CertificateAuthority) -> dt.datetime | None:
    if ca.ocsp_responder_der is None:
        return None
    return x509.load_der_x509_certificate(ca.ocsp_responder_der).not_valid_before_utc


def plan(sandbox: Sandbox, now: dt.datetime) -> list[Planned]:
    """What the policies say should rotate, and when (due_at <= now: due now)."""
    cfg = sandbox.config
    out: list[Planned] = []
    with sandbox.transaction() as session:
        cas = list(repo.list_cas(session))
    for ca in cas:
        if ca.role.startswith("scenarios"):
            continue  # simulator CAs: responders backdated on purpose (time travel), never rotated by policy
        started = _responder_not_before(ca)
        if started is not None and cfg.ocsp_key_rotation_days:
            due = started + dt.timedelta(days=cfg.ocsp_key_rotation_days)
            out.append(Planned("rotate-ocsp", ca.id, due, f"responder key older than {cfg.ocsp_key_rotation_days} days"))
    for ca in authorities.newest_by_role(cas).values():
        if cfg.ca_rollover_days:
            due = ca.not_before + dt.timedelta(days=cfg.ca_rollover_days)
            out.append(Planned("rollover-ca", ca.id, due, f"CA key older than {cfg.ca_rollover_days} days"))
        # Whatever the policy: roll before the CA can no longer cover a maximum-length certificate.
        horizon = ca.not_after - dt.timedelta(days=400)
        out.append(Planned("rollover-ca", ca.id, horizon, "CA expires within 400 days"))
    best: dict[tuple[str, str], Planned] = {}
    for item in out:
        key = (item.action, item.ca_id)
        if key not in best or item.due_at < best[key].due_at:
            best[key] = item
    return sorted(best.values(), key=lambda p: p.due_at)


def rotate_ocsp(sandbox: Sandbox, ca_id: IssuerId, now: dt.datetime | None = None, *, actor: str = "cli") -> KeyRef:
    """New responder key and certificate for ``ca_id``; all its responses re-signed. Returns the new key ref."""
    now = now or utcnow()
    ref = authorities.rotate_responder(sandbox, ca_id, now, actor=actor)
    ocsp_svc.resign_issuer(sandbox, ca_id, now)
    Generation(sandbox.data_dir).bump()
    return ref


def rollover_ca(sandbox: Sandbox, ca_id: IssuerId, now: dt.datetime | None = None, *, actor: str = "cli") -> IssuerId:
    """A new generation of issuing CA ``ca_id``. Returns the new CA id."""
    return authorities.rollover(sandbox, ca_id, now or utcnow(), actor=actor)


def run_due(sandbox: Sandbox, now: dt.datetime | None = None, *, actor: str = "scheduler") -> list[str]:
    """Execute every due rotation; returns what was done."""
    now = now or utcnow()
    done = []
    for item in plan(sandbox, now):
        if item.due_at > now:
            continue
        if item.action == "rotate-ocsp":
            done.append(f"rotated OCSP responder of {item.ca_id}: {rotate_ocsp(sandbox, item.ca_id, now, actor=actor)}")
        else:
            done.append(f"rolled {item.ca_id} over to {rollover_ca(sandbox, item.ca_id, now, actor=actor)}")
    return done


def list_keys(sandbox: Sandbox, now: dt.datetime | None = None) -> list[KeyView]:
    now = now or utcnow()
    due = {(p.action, p.ca_id): p.due_at for p in plan(sandbox, now)}
    with sandbox.transaction() as session:
        cas = list(repo.list_cas(session))
        keys = list(repo.list_keys(session))
    active_ca = {ca.key_id: ca for ca in cas}
    active_ocsp = {ca.ocsp_key_id: ca for ca in cas if ca.ocsp_key_id}
    views = []
    for key in keys:
        version = _version(key.ref)
        kind, _, owner = key.purpose.partition(":")
        if key.id in active_ca:
            ca = active_ca[key.id]
            views.append(KeyView(key.ref, version, key.key_type, key.purpose, f"CA {ca.id} (serial {ca.serial})", key.created_at,
                                 due.get(("rollover-ca", ca.id)), True))
        elif key.id in active_ocsp:
            ca = active_ocsp[key.id]
            views.append(KeyView(key.ref, version, key.key_type, key.purpose, f"OCSP responder of {ca.id}", key.created_at,
                                 due.get(("rotate-ocsp", ca.id)), True))
        else:
            if kind == "tl-signer":
                views.append(KeyView(key.ref, version, key.key_type, key.purpose, "Trusted List signer", key.created_at,
                                     None, True))
                continue
            what = f"former OCSP responder of {owner}" if kind == "ocsp" else f"former key of {owner}"
            views.append(KeyView(key.ref, version, key.key_type, key.purpose, what, key.created_at, None, False))
    return views


def _version(ref: str) -> int:
    match = re.search(r"@(\d+)$", ref) or re.search(r"-(\d+)$", ref)
    return int(match.group(1)) if match else 1
