"""Key rotation: OCSP responder keys every N days, issuing-CA rollover on policy.

- OCSP responder: a new key (a new file, or a new Transit key version) and a new delegated
  certificate; every pre-signed response of that CA is re-signed with it at once. The old
  responder certificate is not revoked: it stays valid past the responses it signed, and it is
  kept with its key (``retired_ocsp_responders``) to sign answers as of a time before the rotation.
- Issuing CA rollover: a new key, a new CA certificate (same subject, new key) signed by the root,
  its own responder, and its own id, so its CRL and caIssuers URLs differ (``/crl/qwac-ca-2.crl``).
  New issuance uses it at once; the old generation keeps its key and keeps signing CRLs and OCSP
  for what it issued until the last of those certificates expires.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_store import repositories as repo
from ca_store.models import CertificateAuthority, KeyReference

from ..clock import utcnow
from ..core import builder, profiles
from ..core.errors import Kind, QTSPError
from ..core.serials import new_serial
from ..core.types import serial_hex
from . import ocsp as ocsp_svc
from .context import Sandbox
from .generation import Generation
from .hierarchy import ROOT_ID, _key_row, _qtsp_subject, issuer_info, key_label, publish_ca_files
from .signing import sign_after_lint


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
    ca_id: str
    due_at: dt.datetime
    why: str


def _responder_not_before(ca: CertificateAuthority) -> dt.datetime | None:
    if ca.ocsp_responder_der is None:
        return None
    return x509.load_der_x509_certificate(ca.ocsp_responder_der).not_valid_before_utc


def _newest_by_role(cas: list[CertificateAuthority]) -> dict[str, CertificateAuthority]:
    newest: dict[str, CertificateAuthority] = {}
    for ca in cas:
        if ca.role == "root" or ca.role.startswith("scenarios"):
            continue  # the simulator's CAs are never rolled over
        best = newest.get(ca.role)
        if best is None or (ca.created_at, len(ca.id), ca.id) > (best.created_at, len(best.id), best.id):
            newest[ca.role] = ca
    return newest


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
    for ca in _newest_by_role(cas).values():
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


def rotate_ocsp(sandbox: Sandbox, ca_id: str, now: dt.datetime | None = None, *, actor: str = "cli") -> str:
    """New responder key and certificate for ``ca_id``; all its responses re-signed. Returns the new key ref."""
    now = now or utcnow()
    with sandbox.transaction() as session:
        ca = repo.get_ca(session, ca_id)
        if ca.ocsp_key is None or ca.ocsp_responder_der is None:
            raise QTSPError(Kind.POLICY, f"CA {ca_id} has no OCSP responder")
        old_ref, ca_key_ref, ca_der = ca.ocsp_key.ref, ca.key.ref, ca.cert_der
    info = sandbox.backend(old_ref).rotate(old_ref)  # type: ignore[arg-type]
    ca_cert = x509.load_der_x509_certificate(ca_der)
    cfg = sandbox.config
    responder_profile = profiles.OCSP_RESPONDER.with_validity(cfg.ocsp_validity_days)
    tbs = builder.build(
        responder_profile,
        subject=_qtsp_subject(cfg, _responder_cn(ca_cert)),
        public_key=info.public_key, serial=new_serial(), now=now, issuer=issuer_info(cfg, ca_id, ca_cert),
    )
    cert = sign_after_lint(tbs, sandbox.backend(ca_key_ref).signer(ca_key_ref), responder_profile)  # type: ignore[arg-type]
    with sandbox.transaction() as session:
        ca = repo.get_ca(session, ca_id)
        ocsp_svc.retire_responder(session, ca, now)  # kept: it signs answers as of a time before this one
        key = repo.add_key(session, _key_row(info, f"ocsp:{ca_id}", now))
        ca.ocsp_key_id, ca.ocsp_responder_der = key.id, cert.public_bytes(Encoding.DER)
        repo.append_audit(session, at=now, actor=actor, action="key.rotate.ocsp", subject=ca_id,
                          details={"old": old_ref, "new": info.ref, "responder_serial": serial_hex(cert.serial_number)})
    ocsp_svc.resign_issuer(sandbox, ca_id, now)
    Generation(sandbox.data_dir).bump()
    return info.ref


def _responder_cn(ca_cert: x509.Certificate) -> str:
    cn = ca_cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)[0].value
    return f"{cn} OCSP Responder"[:64]


def _next_generation_id(existing: set[str], ca_id: str) -> str:
    base = re.sub(r"-\d+$", "", ca_id)
    n = 2
    while f"{base}-{n}" in existing:
        n += 1
    return f"{base}-{n}"


def rollover_ca(sandbox: Sandbox, ca_id: str, now: dt.datetime | None = None, *, actor: str = "cli") -> str:
    """A new generation of issuing CA ``ca_id``. Returns the new CA id."""
    now = now or utcnow()
    cfg = sandbox.config
    with sandbox.transaction() as session:
        cas = {ca.id: ca for ca in repo.list_cas(session)}
        if ca_id not in cas or cas[ca_id].parent_id is None:
            raise QTSPError(Kind.NOT_FOUND, f"no issuing CA {ca_id!r}")
        old = cas[ca_id]
        newest = _newest_by_role(list(cas.values()))[old.role]
        if newest.id != ca_id:
            raise QTSPError(Kind.CONFLICT, f"{ca_id} is not the newest {old.role} CA ({newest.id} is); roll that one")
        root = cas[old.parent_id or ROOT_ID]
        old_ref, root_ref, root_der, old_der = old.key.ref, root.key.ref, root.cert_der, old.cert_der
        old_profile, role = old.profile, old.role
        new_id = _next_generation_id(set(cas), ca_id)
    backend = sandbox.backend(old_ref)
    info = backend.rotate(old_ref)  # type: ignore[arg-type]
    old_cert = x509.load_der_x509_certificate(old_der)
    root_cert = x509.load_der_x509_certificate(root_der)
    profile = profiles.get_profile(old_profile).with_validity(cfg.qwac_ca.validity_days if role == "qwac" else cfg.qseal_ca.validity_days)
    tbs = builder.build(profile, subject=old_cert.subject, public_key=info.public_key, serial=new_serial(), now=now,
                        issuer=issuer_info(cfg, ROOT_ID, root_cert))
    cert = sign_after_lint(tbs, sandbox.backend(root_ref).signer(root_ref), profile)  # type: ignore[arg-type]
    ocsp_info = sandbox.backend().generate(key_label(cfg, f"{new_id}-ocsp"), cfg.ocsp_key_type)
    responder_profile = profiles.OCSP_RESPONDER.with_validity(cfg.ocsp_validity_days)
    responder_tbs = builder.build(responder_profile, subject=_qtsp_subject(cfg, _responder_cn(cert)),
                                  public_key=ocsp_info.public_key, serial=new_serial(), now=now,
                                  issuer=issuer_info(cfg, new_id, cert))
    responder = sign_after_lint(responder_tbs, backend.signer(info.ref), responder_profile)
    with sandbox.transaction() as session:
        key = repo.add_key(session, _key_row(info, f"ca:{new_id}", now))
        ocsp_key = repo.add_key(session, _key_row(ocsp_info, f"ocsp:{new_id}", now))
        repo.add_ca(session, CertificateAuthority(
            id=new_id, parent_id=ROOT_ID, role=role, profile=profile.name, subject=cert.subject.rfc4514_string(),
            key_id=key.id, cert_der=cert.public_bytes(Encoding.DER), serial=serial_hex(cert.serial_number),
            not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            ocsp_responder_der=responder.public_bytes(Encoding.DER), ocsp_key_id=ocsp_key.id, created_at=now,
        ))
        repo.append_audit(session, at=now, actor=actor, action="ca.rollover", subject=new_id,
                          details={"previous": ca_id, "key": info.ref, "serial": serial_hex(cert.serial_number)})
    publish_ca_files(sandbox, {new_id: cert})
    Generation(sandbox.data_dir).bump()
    return new_id


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
        keys: list[KeyReference] = list(session.query(KeyReference).order_by(KeyReference.id))
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
