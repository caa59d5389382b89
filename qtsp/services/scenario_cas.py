"""The simulator's CAs (issue 7), made on first use under the sandbox root: ``scenarios-ca`` (a service of
the sandbox Trusted List), ``scenarios-unlisted-ca`` (not listed) and ``scenarios-sub-ca`` (the
intermediate the missing-intermediate scenario leaves out). Normal issuance never uses them."""

from __future__ import annotations

import contextlib
import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy.exc import IntegrityError

from ca_store import repositories as repo
from ca_store.models import CertificateAuthority, KeyReference

from ..clock import utcnow
from ..core import builder, profiles
from ..core.errors import Kind, QTSPError
from ..core.serials import new_serial
from ..core.types import serial_hex
from ..signers import Signer
from .context import Sandbox
from .hierarchy import ROOT_ID, _key_row, _qtsp_subject, issuer_info, key_label, publish_ca_files
from .revocation import published
from .signing import sign


SCENARIOS_CA, UNLISTED_CA, SUB_CA = "scenarios-ca", "scenarios-unlisted-ca", "scenarios-sub-ca"
CA_ROLES = {SCENARIOS_CA: "scenarios", UNLISTED_CA: "scenarios-unlisted", SUB_CA: "scenarios-sub"}
CA_NAMES = {
    SCENARIOS_CA: "qtsp Sandbox Scenarios CA",
    UNLISTED_CA: "qtsp Sandbox Unlisted Scenarios CA",
    SUB_CA: "qtsp Sandbox Scenarios Sub-CA",
}
BACKDATE = dt.timedelta(days=2 * 365)  # so that expired scenarios still fall inside their CA's validity
ACTOR = "simulator"


@dataclass
class ScenarioCA:
    row: CertificateAuthority
    cert: x509.Certificate
    signer: Signer




# --- the scenario CAs -------------------------------------------------------------------------


def ensure_cas(sandbox: Sandbox, now: dt.datetime | None = None) -> dict[str, ScenarioCA]:
    """The simulator's CAs, made on first use (signed by the sandbox root, which must be online)."""
    now = now or utcnow()
    cas = _load(sandbox)
    if len(cas) == len(CA_ROLES):
        return cas
    if cas:
        raise QTSPError(Kind.CONFLICT, f"the simulator CAs are half there ({', '.join(sorted(cas))}); the store is inconsistent")
    backend = sandbox.backend()
    with sandbox.transaction() as session:
        root = repo.get_ca(session, ROOT_ID)
        root_ref = root.key.ref
    root_cert = x509.load_der_x509_certificate(root.cert_der)
    root_signer = sandbox.backend(root_ref).signer(root_ref)
    cfg = sandbox.config
    start = now - BACKDATE
    made: dict[str, tuple[CertificateAuthority, KeyReference, KeyReference, x509.Certificate, Signer]] = {}
    for ca_id, parent in ((SCENARIOS_CA, ROOT_ID), (UNLISTED_CA, ROOT_ID), (SUB_CA, SCENARIOS_CA)):
        profile = profiles.SCENARIOS_SUB_CA if ca_id == SUB_CA else profiles.SCENARIOS_CA
        parent_cert, parent_signer = (root_cert, root_signer) if parent == ROOT_ID else made[parent][3:5]
        info = backend.generate(key_label(cfg, ca_id), cfg.ca_key_type)
        signer = backend.signer(info.ref)
        tbs = builder.build(profile, subject=_qtsp_subject(cfg, CA_NAMES[ca_id]), public_key=info.public_key,
                            serial=new_serial(), now=start, issuer=issuer_info(cfg, parent, parent_cert))
        cert = sign(tbs, parent_signer)
        ocsp_info = backend.generate(key_label(cfg, f"{ca_id}-ocsp"), cfg.ocsp_key_type)
        # Backdated with the CA, so that OCSP answers as of a past time (time travel) verify too.
        ocsp_profile = profiles.OCSP_RESPONDER.with_validity(BACKDATE.days + cfg.ocsp_validity_days)
        ocsp_tbs = builder.build(ocsp_profile, subject=_qtsp_subject(cfg, f"{CA_NAMES[ca_id]} OCSP Responder"[:64]),
                                 public_key=ocsp_info.public_key, serial=new_serial(), now=start,
                                 issuer=issuer_info(cfg, ca_id, cert))
        ocsp_cert = sign(ocsp_tbs, signer)
        row = CertificateAuthority(
            id=ca_id, parent_id=parent, role=CA_ROLES[ca_id], profile=profile.name,
            subject=cert.subject.rfc4514_string(), cert_der=cert.public_bytes(Encoding.DER),
            serial=serial_hex(cert.serial_number), not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc, ocsp_responder_der=ocsp_cert.public_bytes(Encoding.DER), created_at=now,
        )
        made[ca_id] = (row, _key_row(info, f"ca:{ca_id}", now), _key_row(ocsp_info, f"ocsp:{ca_id}", now), cert, signer)
    # Another process may make them at the same moment: the unique CA ids let one commit win, and the
    # loser uses the winner's CAs (its own rows were never committed; its unused keys stay in the keystore).
    with contextlib.suppress(IntegrityError):
        with sandbox.transaction() as session:
            for ca_id, (row, key, ocsp_key, _cert, _signer) in made.items():
                row.key_id = repo.add_key(session, key).id
                row.ocsp_key_id = repo.add_key(session, ocsp_key).id
                repo.add_ca(session, row)
                repo.append_audit(session, at=now, actor=ACTOR, action="ca.create", subject=ca_id,
                                  details={"serial": row.serial, "subject": row.subject, "key": key.ref,
                                           "profile": row.profile, "simulator": True})
    cas = _load(sandbox)
    publish_ca_files(sandbox, {ca_id: ca.cert for ca_id, ca in cas.items() if ca_id != SUB_CA})
    published(sandbox)  # OCSP workers pick up the new issuers
    return cas


def _load(sandbox: Sandbox) -> dict[str, ScenarioCA]:
    out = {}
    with sandbox.transaction() as session:
        for ca in repo.list_cas(session):
            if ca.id in CA_ROLES:
                session.expunge(ca)
                out[ca.id] = ca
    return {ca_id: ScenarioCA(ca, x509.load_der_x509_certificate(ca.cert_der), sandbox.backend(ca.key.ref).signer(ca.key.ref))
            for ca_id, ca in out.items()}


