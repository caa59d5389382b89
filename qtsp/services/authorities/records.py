"""A CA in the store and on disk: its row (with its key references and audit event), its certificate
registered with its parent for status, the files AIA serves (``ca/<id>.pem`` and ``.der``), and its
Signer loaded back from the row.

``insert`` is the one way a CA row is written: ``qtsp init``, the simulator's and the NCA's
CAs made on first use, a rollover, and ``qtsp ceremony import`` all go through it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, CertificateAuthority, Revocation

from ... import files
from ...core.errors import Kind, QTSPError
from ...core.types import IssuerId, serial_hex
from ...signers import Signer
from .. import register
from ..context import Sandbox
from .build import ROOT_ID, Issuer, NewCA, key_row, signer_for


def insert(session: Session, new: NewCA, now: dt.datetime, *, actor: str, action: str = "ca.create",
           details: dict[str, Any] | None = None, extra: dict[str, Any] | None = None) -> CertificateAuthority:
    """The CA row, its key reference (and its responder's), and one audit event, in the caller's transaction.

    The event's details are the CA's serial, subject, key and profile, with ``extra`` added; or ``details``."""
    cert = new.cert
    key = repo.add_key(session, key_row(new.key, f"ca:{new.ca_id}", now))
    ocsp_key = None if new.responder is None else repo.add_key(session, key_row(new.responder.key, f"ocsp:{new.ca_id}", now))
    row = CertificateAuthority(
        id=new.ca_id, parent_id=new.parent_id, role=new.role, profile=new.profile,
        subject=cert.subject.rfc4514_string(), key_id=key.id, cert_der=cert.public_bytes(Encoding.DER),
        serial=serial_hex(cert.serial_number), not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
        ocsp_responder_der=None if new.responder is None else new.responder.cert.public_bytes(Encoding.DER),
        ocsp_key_id=None if ocsp_key is None else ocsp_key.id, created_at=now,
    )
    repo.add_ca(session, row)
    if details is None:
        details = {"serial": row.serial, "subject": row.subject, "key": new.key.ref, "profile": row.profile, **(extra or {})}
    repo.append_audit(session, at=now, actor=actor, action=action, subject=new.ca_id, details=details)
    register_status(session, row, actor=actor, now=now)
    return row


def register_status(session: Session, ca: CertificateAuthority, *, actor: str, now: dt.datetime) -> Certificate | None:
    """``ca``'s certificate as a certificate of its parent, when the parent answers OCSP (None: nothing to do)."""
    if ca.parent_id is None:
        return None
    parent = session.get(CertificateAuthority, ca.parent_id)
    if parent is None or parent.ocsp_responder_der is None:
        return None  # no responder would answer for it; the parent's CRL still lists it once revoked
    there = session.execute(select(Certificate.id).where(Certificate.issuer_id == ca.parent_id,
                                                         Certificate.serial == ca.serial)).first()
    if there is not None:
        return None
    row = repo.add_certificate(session, Certificate(
        issuer_id=ca.parent_id, serial=ca.serial, profile=ca.profile, subject=ca.subject, org_id=None, nca_id=None,
        roles=None, dns_names=None, not_before=ca.not_before, not_after=ca.not_after,
        fingerprint_sha256=hashlib.sha256(ca.cert_der).hexdigest(), der=ca.cert_der, status="good",
        created_at=ca.created_at))
    # Every certificate row has its issuance event (qtsp audit verify checks the store against them).
    repo.append_audit(session, at=now, actor=actor, action="certificate.issue", subject=ca.serial,
                      details={"issuer": ca.parent_id, "profile": ca.profile, "ca": ca.id, "sha256": row.fingerprint_sha256})
    return row


def is_ca_certificate(session: Session, cert: Certificate) -> bool:
    """Whether a certificate row is a CA's (registered by ``register``)."""
    found = session.execute(select(CertificateAuthority.id).where(CertificateAuthority.parent_id == cert.issuer_id,
                                                                  CertificateAuthority.serial == cert.serial)).first()
    return found is not None


def revocation_of(session: Session, ca: CertificateAuthority) -> Revocation | None:
    """The revocation of ``ca``'s certificate (recorded by ``qtsp ca revoke`` or an imported ARL), or None."""
    return session.execute(select(Revocation).join(Certificate, Revocation.certificate_id == Certificate.id).where(
        Certificate.issuer_id == ca.parent_id, Certificate.serial == ca.serial)).scalar_one_or_none()


def insert_hierarchy(session: Session, cas: Iterable[NewCA], now: dt.datetime, *, actor: str) -> None:
    """A new sandbox's store: the NCA register's seed, then each CA (``qtsp init`` and ``ceremony import``)."""
    register.seed_ncas(session)
    for new in cas:
        insert(session, new, now, actor=actor)


def insert_once(sandbox: Sandbox, cas: Iterable[NewCA], now: dt.datetime, *, actor: str,
                extra: dict[str, Any] | None = None) -> bool:
    """Insert CAs made on first use, in one transaction; False if another process stored them first.

    Two processes may make them at the same moment: the unique CA ids let one commit win, and the
    loser uses the winner's CAs (its own rows were never committed; its unused keys stay in the keystore)."""
    with contextlib.suppress(IntegrityError):
        with sandbox.transaction() as session:
            for new in cas:
                insert(session, new, now, actor=actor, extra=extra)
        return True
    return False


def store_first_need(sandbox: Sandbox, cas: list[NewCA], now: dt.datetime, *, actor: str,
                     what: str) -> dict[IssuerId, CertificateAuthority]:
    """CAs made on first need (the browser hierarchy, the 2-QWAC CA): inserted once with a ``ca.create`` event
    each (``first_need: true``; a racing process's commit may win, and then its CAs are the ones read back),
    read back, and their certificates published where AIA serves them. The caller then says ``published``
    so OCSP workers pick up the new issuers."""
    insert_once(sandbox, cas, now, actor=actor, extra={"first_need": True})
    ids = [new.ca_id for new in cas]
    stored = rows(sandbox, ids)
    if len(stored) != len(ids):
        raise QTSPError(Kind.CONFLICT, f"{what} is half there ({', '.join(sorted(stored)) or 'none of it'}); the "
                                       "store is inconsistent")
    publish(sandbox, {ca_id: x509.load_der_x509_certificate(row.cert_der) for ca_id, row in stored.items()})
    return stored


def publish(sandbox: Sandbox, certs: dict[IssuerId, x509.Certificate]) -> None:
    """Write each CA certificate as PEM and DER into ``<data dir>/ca`` (what AIA serves)."""
    files.ensure_dir(sandbox.ca_dir)
    for ca_id, cert in certs.items():  # rewritten whole (a new name, then a rename), never through a symlink
        files.replace(sandbox.ca_dir / f"{ca_id}.pem", cert.public_bytes(Encoding.PEM))
        files.replace(sandbox.ca_dir / f"{ca_id}.der", cert.public_bytes(Encoding.DER))


# --- loading ----------------------------------------------------------------------------------------


@dataclass
class LoadedCA:
    """A stored CA: its row (detached from the session), its certificate and its Signer."""

    row: CertificateAuthority
    cert: x509.Certificate
    signer: Signer

    @property
    def issuer(self) -> Issuer:
        return Issuer(self.row.id, self.cert, self.signer)


def rows(sandbox: Sandbox, wanted: Iterable[IssuerId] | None = None) -> dict[IssuerId, CertificateAuthority]:
    """The CA rows (all, or those named), detached, so they can be read after the transaction."""
    wanted = None if wanted is None else set(wanted)
    out: dict[IssuerId, CertificateAuthority] = {}
    with sandbox.transaction() as session:
        for ca in repo.list_cas(session):
            if wanted is None or ca.id in wanted:
                session.expunge(ca)
                out[ca.id] = ca
    return out


def load(sandbox: Sandbox, ca_id: IssuerId) -> LoadedCA:
    """One CA with its Signer (NOT_FOUND if there is no such CA)."""
    with sandbox.transaction() as session:
        row = repo.get_ca(session, ca_id)
        session.expunge(row)
    return LoadedCA(row, x509.load_der_x509_certificate(row.cert_der), signer_for(sandbox, row.key.ref))


def load_many(sandbox: Sandbox, wanted: Iterable[IssuerId]) -> dict[IssuerId, LoadedCA]:
    """The CAs among ``wanted`` that exist, with their Signers."""
    return {ca_id: LoadedCA(row, x509.load_der_x509_certificate(row.cert_der), signer_for(sandbox, row.key.ref))
            for ca_id, row in rows(sandbox, wanted).items()}


def chain(sandbox: Sandbox, ca_id: IssuerId) -> list[x509.Certificate]:
    """The CA's certificate, then its parent's (the root's), as issued certificates are handed out."""
    with sandbox.transaction() as session:
        ca = repo.get_ca(session, ca_id)
        parent = repo.get_ca(session, ca.parent_id or ROOT_ID)
        return [x509.load_der_x509_certificate(ca.cert_der), x509.load_der_x509_certificate(parent.cert_der)]
