"""CAs made by key ceremonies, into a store: the same rows ``qtsp init`` writes (``records.insert``).

The ceremonies package checks the transcripts and the hierarchy; this writes what it found, and an
ARL from a ``crl`` ceremony later on (an offline root keeps its ARL fresh that way: the service never
touches the root key).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from collections.abc import Callable

from cryptography import x509
from sqlalchemy.orm import Session

from ca_store import db, repositories as repo
from ca_store.models import CrlRecord

from ... import config as config_mod
from ...core.errors import Kind, QTSPError
from ...core.keys import key_name, supported_public_key
from ...core.types import IssuerId, KeyRef
from ...signers import KeyInfo
from ..context import Sandbox, open_sandbox
from .build import ROOT_ID, NewCA, Responder
from .records import insert_hierarchy

ACTOR = "cli"


def _key_info(ref: KeyRef, cert: x509.Certificate) -> KeyInfo:
    public = supported_public_key(cert.public_key())  # a CA's: RSA or EC
    return KeyInfo(ref, key_name(public), public)


def from_ceremony(ca_id: IssuerId, *, parent_id: IssuerId | None, role: str, profile: str, cert: x509.Certificate,
                  key_ref: KeyRef, responder: tuple[x509.Certificate, KeyRef] | None) -> NewCA:
    """A CA a ceremony made (its certificate and key reference, and its responder's), ready for ``insert``."""
    made = None if responder is None else Responder(responder[0], _key_info(responder[1], responder[0]))
    return NewCA(ca_id, parent_id, role, profile, cert, _key_info(key_ref, cert), made)


def new_store(data_dir: Path, cfg: config_mod.Config) -> Sandbox:
    """The data dir's database, migrated, and refused if it holds a hierarchy already."""
    engine = db.make_engine(config_mod.database_url(data_dir))
    try:
        db.migrate(engine)
        sandbox = Sandbox(data_dir, cfg, engine)
        with sandbox.transaction() as session:
            if repo.list_cas(session):
                raise QTSPError(Kind.CONFLICT, "the database already holds a hierarchy; refusing to import over it")
    except BaseException:
        engine.dispose()
        raise
    return sandbox


def _crl_record(issuer_id: IssuerId, number: int, der: bytes) -> CrlRecord:
    crl = x509.load_der_x509_crl(der)
    return CrlRecord(issuer_id=issuer_id, number=number, delta_base=None, entries=len(crl),
                     this_update=crl.last_update_utc, next_update=crl.next_update_utc, der=der)


def store_hierarchy(sandbox: Sandbox, cas: list[NewCA], now: dt.datetime, *, arl: tuple[int, bytes] | None,
                    transcripts: dict[str, str], actor: str = ACTOR) -> None:
    """One commit for the hierarchy (init's own insert), the root's ARL and the import's audit event."""
    with sandbox.transaction() as session:
        insert_hierarchy(session, cas, now, actor=actor)
        if arl is not None:
            repo.add_crl(session, _crl_record(ROOT_ID, arl[0], arl[1]))
        repo.append_audit(session, at=now, actor=actor, action="ceremony.import", subject="root",
                          details={"transcripts": transcripts})


def store_arl(data_dir: Path, issuer_id: IssuerId, number: int, der: bytes, now: dt.datetime,
              details: dict[str, Any], *, actor: str = ACTOR,
              also: Callable[[Sandbox, Session, x509.CertificateRevocationList], object] | None = None) -> dt.datetime | None:
    """A newer ARL of the root into a data dir that serves it. Returns its nextUpdate.

    ``also``: more to do in the same transaction (the CA revocations the ARL lists, recorded)."""
    record = _crl_record(issuer_id, number, der)
    crl = x509.load_der_x509_crl(der)
    sandbox = open_sandbox(data_dir)
    try:
        with sandbox.transaction() as session:
            ca = repo.get_ca(session, issuer_id)
            if ca.parent_id is not None:
                raise QTSPError(Kind.POLICY, "only the root's ARL comes from a ceremony")
            if not crl.is_signature_valid(supported_public_key(x509.load_der_x509_certificate(ca.cert_der).public_key())):
                raise QTSPError(Kind.INTEGRITY, f"the CRL is not signed by {ca.id}'s key")
            highest = repo.highest_crl_number(session, ca.id)
            if highest is not None and number <= highest:
                raise QTSPError(Kind.CONFLICT, f"CRL number {number} is not above {highest}, the newest of {ca.id}")
            repo.add_crl(session, record)
            repo.append_audit(session, at=now, actor=actor, action="ceremony.import-arl", subject=ca.id,
                              details={"number": number, **details})
            if also is not None:
                also(sandbox, session, crl)
    finally:
        sandbox.engine.dispose()
    return crl.next_update_utc
