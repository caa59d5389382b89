"""Making a CA from a plan, and its later life: a new responder key, a new generation.

- Every CA is made by ``make_ca``: a key of ``ca_key_type`` from the sandbox's backend, its
  certificate through ``certify`` (linted before it is signed), and a delegated responder unless the
  plan says none (the NCA CA, whose seals carry no OCSP URL). The root's answers for the CA
  certificates it signs (``status``).
- Responder rotation: a new key (a new file, or a new Transit key version) and a new delegated
  certificate. The old responder certificate is not revoked: it stays valid past the responses it signed.
- Issuing-CA rollover: a new key, a new CA certificate (same subject, new key) signed by its parent,
  its own responder, and its own id, so its CRL and caIssuers URLs differ (``/crl/qwac-ca-2.crl``).
  New issuance uses it at once; the old generation keeps its key and keeps signing CRLs and OCSP for
  what it issued until the last of those certificates expires.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_store import repositories as repo
from ca_store.models import CertificateAuthority

from ... import config as config_mod
from ...core import profiles
from ...core.errors import Kind, QTSPError
from ...core.profiles import Profile
from ...core.types import IssuerId, KeyRef, serial_hex
from .. import ocsp
from ..context import Sandbox
from ..generation import Generation
from .build import (
    BROWSER_ROOT_ID, QSEAL_CA_ID, QWAC_BROWSER_CA_ID, QWAC_CA_ID, ROOT_ID, Issuer, NewCA, ca_subject, certify, key_row, make_responder, new_key, signer_for,
)
from .records import insert, load, publish, rows
from .status import ensure_ca_status, presign_status


@dataclass(frozen=True)
class Plan:
    """One CA to make: its id, role and profile (validity applied), its common name, its parent."""

    ca_id: IssuerId
    role: str
    profile: Profile
    common_name: str
    parent: Issuer | None  # None: a self-signed root
    responder: bool = True
    # The simulator's CAs start in the past, so that its expired scenarios still fall inside their
    # CA's validity; their responders are backdated with them, so OCSP as of a past time verifies too.
    backdate: dt.timedelta = dt.timedelta(0)


def make_ca(sandbox: Sandbox, plan: Plan, now: dt.datetime) -> tuple[NewCA, Issuer]:
    """The CA of ``plan`` (key, certificate, responder), not stored yet; and it as an Issuer for its children."""
    cfg = sandbox.config
    start = now - plan.backdate
    key = new_key(sandbox, plan.ca_id, cfg.ca_key_type)
    signer = signer_for(sandbox, key.ref)
    cert = certify(sandbox, plan.profile, subject=ca_subject(cfg, plan.common_name), public_key=key.public_key,
                   now=start, issuer=plan.parent, own_signer=signer)
    issuer = Issuer(plan.ca_id, cert, signer)
    responder = None
    if plan.responder:
        responder = make_responder(sandbox, issuer, start, validity_days=plan.backdate.days + cfg.ocsp_validity_days)
    parent_id = None if plan.parent is None else plan.parent.ca_id
    return NewCA(plan.ca_id, parent_id, plan.role, plan.profile.name, cert, key, responder), issuer


def issuing_plans(cfg: config_mod.Config, root: Issuer) -> list[Plan]:
    """The sandbox's two qualified issuing CAs under ``root``, as the configuration names them."""
    return [
        Plan(QWAC_CA_ID, "qwac", profiles.QWAC_ISSUING_CA.with_validity(cfg.qwac_ca.validity_days),
             cfg.qwac_ca.common_name, root),
        Plan(QSEAL_CA_ID, "qseal", profiles.QSEAL_ISSUING_CA.with_validity(cfg.qseal_ca.validity_days),
             cfg.qseal_ca.common_name, root),
    ]


BROWSER_ROOT_ROLE, QWAC_BROWSER_ROLE = "browser-root", "qwac-browser"


def make_browser_hierarchy(sandbox: Sandbox, now: dt.datetime) -> list[NewCA]:
    """The browser QWAC hierarchy: its own root, with a delegated responder that answers for its issuing
    CA (as the sandbox root's does), and the serverAuth-only issuing CA with its responder. New keys:
    Chrome Root Program Policy v1.6 3.2.1 wants no key shared with a certificate of other EKUs."""
    cfg = sandbox.config
    root_plan = Plan(BROWSER_ROOT_ID, BROWSER_ROOT_ROLE, profiles.ROOT_CA.with_validity(cfg.browser_root.validity_days),
                     cfg.browser_root.common_name, None)
    root, root_issuer = make_ca(sandbox, root_plan, now)
    ca_plan = Plan(QWAC_BROWSER_CA_ID, QWAC_BROWSER_ROLE,
                   profiles.QWAC_BROWSER_ISSUING_CA.with_validity(cfg.qwac_browser_ca.validity_days),
                   cfg.qwac_browser_ca.common_name, root_issuer)
    return [root, make_ca(sandbox, ca_plan, now)[0]]


def make_hierarchy(sandbox: Sandbox, now: dt.datetime) -> list[NewCA]:
    """``qtsp init``'s CAs: the root, the QWAC (non-browser) and QSealC issuing CAs with their responders;
    then the browser QWAC hierarchy under its own root."""
    cfg = sandbox.config
    # The root has a delegated responder too: it answers for the issuing-CA certificates.
    root_plan = Plan(ROOT_ID, "root", profiles.ROOT_CA.with_validity(cfg.root.validity_days), cfg.root.common_name, None)
    root, root_issuer = make_ca(sandbox, root_plan, now)
    return ([root] + [make_ca(sandbox, plan, now)[0] for plan in issuing_plans(cfg, root_issuer)]
            + make_browser_hierarchy(sandbox, now))


# --- later life --------------------------------------------------------------------------------------


def rotate_responder(sandbox: Sandbox, ca_id: IssuerId, now: dt.datetime, *, actor: str) -> KeyRef:
    """A new responder key and certificate for ``ca_id``, stored. Returns the new key reference.

    The caller re-signs the CA's pre-signed responses (``keys.rotate_ocsp``)."""
    ca = load(sandbox, ca_id)
    if ca.row.ocsp_key is None or ca.row.ocsp_responder_der is None:
        raise QTSPError(Kind.POLICY, f"CA {ca_id} has no OCSP responder")
    old_ref = ca.row.ocsp_key.ref
    key = sandbox.backend(old_ref).rotate(old_ref)
    responder = make_responder(sandbox, ca.issuer, now, key=key)
    with sandbox.transaction() as session:
        row = repo.get_ca(session, ca_id)
        ocsp.retire_responder(session, row, now)  # kept: it signs answers as of a time before this rotation
        stored = repo.add_key(session, key_row(key, f"ocsp:{ca_id}", now))
        row.ocsp_key_id, row.ocsp_responder_der = stored.id, responder.cert.public_bytes(Encoding.DER)
        repo.append_audit(session, at=now, actor=actor, action="key.rotate.ocsp", subject=ca_id,
                          details={"old": old_ref, "new": key.ref, "responder_serial": serial_hex(responder.cert.serial_number)})
    return key.ref


def newest_by_role(cas: Iterable[CertificateAuthority]) -> dict[str, CertificateAuthority]:
    """The current generation of each CA role that rolls over (not the root, not the simulator's CAs)."""
    newest: dict[str, CertificateAuthority] = {}
    for ca in cas:
        if ca.role in ("root", BROWSER_ROOT_ROLE) or ca.role.startswith("scenarios"):
            continue
        best = newest.get(ca.role)
        if best is None or (ca.created_at, len(ca.id), ca.id) > (best.created_at, len(best.id), best.id):
            newest[ca.role] = ca
    return newest


def next_generation_id(existing: set[IssuerId], ca_id: IssuerId) -> IssuerId:
    """qwac-ca -> qwac-ca-2 -> qwac-ca-3: the first generation id not taken."""
    base = re.sub(r"-\d+$", "", ca_id)
    n = 2
    while f"{base}-{n}" in existing:
        n += 1
    return IssuerId(f"{base}-{n}")


def rollover(sandbox: Sandbox, ca_id: IssuerId, now: dt.datetime, *, actor: str) -> IssuerId:
    """A new generation of issuing CA ``ca_id``, stored and published. Returns the new CA id."""
    cfg = sandbox.config
    cas = rows(sandbox)
    if ca_id not in cas or cas[ca_id].parent_id is None:
        raise QTSPError(Kind.NOT_FOUND, f"no issuing CA {ca_id!r}")
    old = cas[ca_id]
    newest = newest_by_role(cas.values()).get(old.role)
    if newest is None:
        raise QTSPError(Kind.POLICY, f"{ca_id} is one of the simulator's CAs: they are never rolled over")
    if newest.id != ca_id:
        raise QTSPError(Kind.CONFLICT, f"{ca_id} is not the newest {old.role} CA ({newest.id} is); roll that one")
    # A data dir made before CA certificates had status: the root's responder first, since the new
    # CA certificate names it (AIA OCSP).
    ensure_ca_status(sandbox, now, actor=actor)
    parent = load(sandbox, old.parent_id or ROOT_ID)
    new_id = next_generation_id(set(cas), ca_id)
    key = sandbox.backend(old.key.ref).rotate(old.key.ref)
    days = {"qwac": cfg.qwac_ca, QWAC_BROWSER_ROLE: cfg.qwac_browser_ca}.get(old.role, cfg.qseal_ca).validity_days
    profile = profiles.get_profile(old.profile).with_validity(days)
    subject = x509.load_der_x509_certificate(old.cert_der).subject
    cert = certify(sandbox, profile, subject=subject, public_key=key.public_key, now=now, issuer=parent.issuer)
    responder = make_responder(sandbox, Issuer(new_id, cert, signer_for(sandbox, key.ref)), now)
    new = NewCA(new_id, parent.row.id, old.role, profile.name, cert, key, responder)
    with sandbox.transaction() as session:
        insert(session, new, now, actor=actor, action="ca.rollover",
               details={"previous": ca_id, "key": key.ref, "serial": serial_hex(cert.serial_number)})
    publish(sandbox, {new_id: cert})
    presign_status(sandbox, now)  # the new CA certificate's OCSP answer, by its parent's responder
    Generation(sandbox.data_dir).bump()  # OCSP workers pick up the new issuer
    return new_id
