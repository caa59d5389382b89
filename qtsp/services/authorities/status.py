"""The status of CA certificates: each one is a certificate its parent issued, answered for by the
parent's delegated responder and listed on the parent's CRL (the root's ARL) once revoked.

A CA certificate is registered as a ``certificates`` row of its parent when the parent has a
responder, so OCSP (pre-signed, refreshed, on demand), the CRL generator and revocation treat it as
any other certificate: nothing in the responder is special for CAs. ``qtsp init`` gives the root its
delegated responder (id-kp-OCSPSigning, id-pkix-ocsp-nocheck, rotated by the scheduler like the
others). A data dir made before that has none: ``ensure_ca_status`` makes it with the root key and
registers the CAs already there, the first time a command needs it (rollover, ``qtsp ca revoke``, the
simulator's or the NCA's CAs made on first use).
"""

from __future__ import annotations

import datetime as dt

from cryptography.hazmat.primitives.serialization import Encoding

from sqlalchemy import select

from ca_store import repositories as repo
from ca_store.models import Certificate, OcspResponse

from ...core.types import serial_hex
from .. import ocsp
from ..context import Sandbox
from ..generation import Generation
from .build import ROOT_ID, key_row, make_responder
from .records import load, register_status, rows


def ensure_ca_status(sandbox: Sandbox, now: dt.datetime, *, actor: str) -> list[str]:
    """The root's delegated responder (made with the root key if missing) and every CA certificate
    registered with its parent. Idempotent; returns what it did (nothing for a sandbox made since)."""
    done: list[str] = []
    if rows(sandbox, [ROOT_ID])[ROOT_ID].ocsp_responder_der is None:
        root = load(sandbox, ROOT_ID)  # the root key signs the responder certificate: only now is it needed
        responder = make_responder(sandbox, root.issuer, now)
        with sandbox.transaction() as session:
            row = repo.get_ca(session, ROOT_ID)
            if row.ocsp_responder_der is None:  # another process may have made one meanwhile
                stored = repo.add_key(session, key_row(responder.key, f"ocsp:{ROOT_ID}", now))
                row.ocsp_key_id, row.ocsp_responder_der = stored.id, responder.cert.public_bytes(Encoding.DER)
                repo.append_audit(session, at=now, actor=actor, action="ca.responder.create", subject=ROOT_ID,
                                  details={"key": responder.key.ref,
                                           "responder_serial": serial_hex(responder.cert.serial_number)})
                done.append(f"made the root's delegated OCSP responder ({responder.key.ref})")
    with sandbox.transaction() as session:
        for ca in repo.list_cas(session):
            if register_status(session, ca, actor=actor, now=now) is not None:
                done.append(f"registered {ca.id} with {ca.parent_id} for OCSP and CRL status")
    presign_status(sandbox, now)
    if done:
        Generation(sandbox.data_dir).bump()  # OCSP workers load the root's responder
    return done


def presign_status(sandbox: Sandbox, now: dt.datetime) -> int:
    """Pre-signed OCSP answers for the CA certificates that have none yet (after init, a rollover, the
    CAs made on first use): the same answers the scheduler keeps fresh for every certificate."""
    with sandbox.transaction() as session:
        registered = {(ca.parent_id, ca.serial) for ca in repo.list_cas(session) if ca.parent_id is not None}
        if not registered:
            return 0
        missing = session.execute(select(Certificate).where(
            Certificate.issuer_id.in_(sorted({parent for parent, _ in registered})),
            Certificate.id.not_in(select(OcspResponse.certificate_id)))).scalars().all()
        rows = [c for c in missing if (c.issuer_id, c.serial) in registered]
        return ocsp.presign(sandbox, session, rows, now) if rows else 0
