"""Revoking a CA: ``qtsp ca revoke CA --reason ...``, with the key of the CA that certified it (the root).

The CA certificate is a certificate of its parent (``authorities.status``), so revoking it is a
revocation like any other, with three differences: the parent's key must be online, since the
parent's CRL (the root's ARL) is signed at once, before the command returns; the reasons are those
BR 7.2.2 allows on an ARL (cACompromise included); and a ``ca.revoke`` audit event names the CA.
The root-delegated responder re-signs the CA certificate's OCSP answer in the same commit, so
relying parties that check the chain by OCSP (nginx ``ssl_ocsp on``, Java PKIX) and by CRL
(``crl_check_all``, HAProxy ``crl-file``) refuse every certificate below it.

An offline root (key ceremonies) does the same by ceremony: a ``crl`` ceremony that lists the CA's
serial, then ``qtsp ceremony import-arl``, which records the revocations the ARL lists
(``record_arl_revocations``) without the service ever touching the root key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy.orm import Session

from ca_store import repositories as repo

from ..clock import time_travelling, utcnow
from ..core.crl import REASON_NAMES
from ..core.errors import Kind, QTSPError
from ..core.ocsp import CA_REASONS
from ..core.types import IssuerId, serial_hex
from . import authorities, crl as crl_svc, ocsp as ocsp_svc, revocation
from .context import Sandbox



@dataclass(frozen=True)
class CaRevocation:
    ca_id: str
    serial: str
    parent_id: str
    reason: str
    revoked_at: dt.datetime
    crl_number: int  # the parent's CRL (the root's ARL) that lists it


def _probe(signer: object) -> None:
    """Sign a throwaway message: the parent's key must answer before anything is recorded."""
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        signer.sign(b"qtsp ca revoke: key check", ec.ECDSA(hashes.SHA256()))
    elif isinstance(signer, rsa.RSAPrivateKey):
        signer.sign(b"qtsp ca revoke: key check", padding.PKCS1v15(), hashes.SHA256())
    else:
        raise QTSPError(Kind.POLICY, "unsupported CA key type")


def revoke_ca(sandbox: Sandbox, ca_id: str, reason: str, *, actor: str = "cli",
              now: dt.datetime | None = None) -> CaRevocation:
    """Revoke CA ``ca_id``: recorded, OCSP re-signed by the parent's responder, the parent's CRL signed."""
    if reason not in CA_REASONS:
        raise QTSPError(Kind.MALFORMED, f"unknown reason {reason!r}: one of {', '.join(CA_REASONS)}")
    if time_travelling():
        raise QTSPError(Kind.POLICY, "a CA is revoked now, never as of another time (--at): its ARL carries the real time")
    now = now or utcnow()
    cas = authorities.rows(sandbox)
    target = cas.get(IssuerId(ca_id))
    if target is None:
        raise QTSPError(Kind.NOT_FOUND, f"no CA {ca_id!r}")
    if target.parent_id is None:
        raise QTSPError(Kind.POLICY, f"{ca_id} is a root: a root is not revoked, it is taken off the Trusted List "
                        "and out of the relying parties' trust stores")
    parent = authorities.load(sandbox, target.parent_id)
    try:
        _probe(parent.signer)
    except QTSPError:
        raise
    except Exception as exc:  # the custodian's own error; never its secrets
        raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"the key of {parent.row.id} cannot sign ({type(exc).__name__}); "
                        "for an offline root, revoke by ceremony (a crl ceremony, then `qtsp ceremony import-arl`)") from None
    authorities.ensure_ca_status(sandbox, now, actor=actor)  # a data dir made before CA certificates had status
    with sandbox.transaction() as session:
        cert = repo.get_certificate(session, target.serial, target.parent_id, for_update=True)
        if cert.revocation is not None:
            raise QTSPError(Kind.ALREADY_REVOKED, f"CA {ca_id} is already revoked ({cert.revocation.reason}, "
                            f"{cert.revocation.revoked_at:%Y-%m-%d %H:%M:%S}Z)")
        result = revocation.revoke_rows(sandbox, session, [cert], reason, actor=actor, now=now,
                                        details={"ca": ca_id}, reasons=CA_REASONS)[0]
        repo.append_audit(session, at=now, actor=actor, action="ca.revoke", subject=ca_id,
                          details={"serial": target.serial, "issuer": target.parent_id, "reason": reason,
                                   "revoked_at": result.revoked_at.isoformat()})
    revocation.published(sandbox)  # OCSP workers drop their caches: the CA's answer says revoked from now
    full = crl_svc.generate(sandbox, target.parent_id, now)
    crl_svc.generate(sandbox, target.parent_id, now, delta=True)
    return CaRevocation(ca_id, target.serial, target.parent_id, reason, result.revoked_at, full.number)


def record_arl_revocations(sandbox: Sandbox, session: Session, issuer_id: IssuerId, crl: x509.CertificateRevocationList,
                           now: dt.datetime, *, actor: str) -> list[str]:
    """The CA certificates an imported ARL lists, recorded as revoked (reason and date from the ARL), so the
    root-delegated responder answers "revoked" too. Returns the CA ids newly revoked. The imported ARL is
    what relying parties get: the issuer's CRL is not marked for regeneration (the root key is offline)."""
    newly: list[str] = []
    by_serial = {ca.serial: ca for ca in repo.list_cas(session) if ca.parent_id == issuer_id}
    for entry in crl:
        ca = by_serial.get(serial_hex(entry.serial_number))
        if ca is None:
            continue
        authorities.register_status(session, ca, actor=actor, now=now)
        cert = repo.get_certificate(session, ca.serial, issuer_id)
        if cert.revocation is not None:
            continue
        try:
            flag = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
            reason = REASON_NAMES.get(flag, "unspecified")
        except x509.ExtensionNotFound:
            reason = "unspecified"
        revocation.revoke_rows(sandbox, session, [cert], reason, actor=actor, now=now,
                               details={"ca": ca.id, "from": "ceremony ARL"}, reasons=CA_REASONS)
        # The revocation date is the ARL's, so OCSP and the ARL agree; the answer re-signed with it.
        session.refresh(cert)
        assert cert.revocation is not None
        cert.revocation.revoked_at = entry.revocation_date_utc
        session.flush()
        session.refresh(cert)
        ocsp_svc.presign(sandbox, session, [cert], now)
        repo.append_audit(session, at=now, actor=actor, action="ca.revoke", subject=ca.id,
                          details={"serial": ca.serial, "issuer": issuer_id, "reason": reason, "from": "ceremony ARL",
                                   "revoked_at": entry.revocation_date_utc.isoformat()})
        newly.append(ca.id)
    if newly:
        repo.lock_publication_state(session, issuer_id).crl_dirty_since = None
    return newly
