"""OCSP responses: pre-sign per certificate (SHA-1 and SHA-256 CertIDs), refresh; the responders' identities.

What the web responder reads per request (statuses, a pre-signed answer, the store's change counter)
is ``ocsp_status``'s."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Callable, Sequence

from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, CertificateAuthority, OcspResponse, RetiredOcspResponder, Revocation

from ..clock import time_travelling
from ..core import ocsp as core_ocsp
from ..core.types import IssuerId, KeyRef
from ..signers import Signer
from .context import Sandbox


@dataclass(frozen=True)
class IssuerEntry:
    ca_id: IssuerId
    archive_cutoff: dt.datetime  # the issuing CA's notBefore (EN 319 411-2 CSS-6.3.10-08)
    hashes: dict[str, tuple[bytes, bytes]]  # alg -> (issuerNameHash, issuerKeyHash)
    responder: core_ocsp.ResponderInfo
    responder_valid: tuple[dt.datetime, dt.datetime]  # the responder certificate's notBefore, notAfter


@dataclass(frozen=True)
class PastResponder:
    """A responder a rotation replaced: its validity, and how to load it (its key stays with the custodian)."""

    not_before: dt.datetime
    not_after: dt.datetime
    cert_der: bytes
    key_ref: KeyRef


def _sign_function(signer: Signer) -> tuple[str, Callable[[bytes], bytes], Callable[[list[bytes]], list[bytes]]]:
    """(signature algorithm name, sign one, sign many) for the responder's key type."""
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        size = signer.public_key().curve.key_size
        algorithm: hashes.HashAlgorithm = hashes.SHA384() if size == 384 else hashes.SHA256()
        name = "sha384_ecdsa" if size == 384 else "sha256_ecdsa"
        return (name, lambda data: signer.sign(data, ec.ECDSA(algorithm)),
                lambda datas: signer.sign_many(datas, ec.ECDSA(algorithm)))
    if isinstance(signer, rsa.RSAPrivateKey):
        return ("sha256_rsa", lambda data: signer.sign(data, padding.PKCS1v15(), hashes.SHA256()),
                lambda datas: signer.sign_many(datas, (padding.PKCS1v15(), hashes.SHA256())))
    raise ValueError("unsupported OCSP responder key")


def responder_info(sandbox: Sandbox, cert_der: bytes, key_ref: KeyRef) -> core_ocsp.ResponderInfo:
    """A responder certificate and its key, ready to sign ResponseData."""
    signer = sandbox.backend(key_ref).signer(key_ref)
    algorithm, sign, sign_many = _sign_function(signer)
    return core_ocsp.ResponderInfo(cert_der, ax509.Certificate.load(cert_der).public_key.sha1, algorithm, sign, sign_many)


def has_responder(ca: CertificateAuthority) -> bool:
    """Whether an OCSP responder answers for ``ca``'s certificates. The root and the NCA CA (NCA
    credentials, the receipt key) have none: their certificates' status is in their CRL only."""
    return ca.ocsp_responder_der is not None and ca.ocsp_key_id is not None


def responder_issuers(session: Session) -> set[IssuerId]:
    """The CAs an OCSP responder answers for (without loading a signer)."""
    return {ca.id for ca in repo.list_cas(session) if has_responder(ca)}


def issuer_entry(sandbox: Sandbox, ca: CertificateAuthority) -> IssuerEntry | None:
    """The OCSP identity of an issuing CA, or None for CAs without a responder (the root, nca-ca)."""
    if ca.ocsp_responder_der is None or ca.ocsp_key is None:  # has_responder, spelled out for the types
        return None
    ca_cert = ax509.Certificate.load(ca.cert_der)
    name_der = ca_cert["tbs_certificate"]["subject"].dump()
    key_bits = ca_cert.public_key["public_key"].contents[1:]  # BIT STRING value without the unused-bits octet
    responder_cert = ax509.Certificate.load(ca.ocsp_responder_der)
    return IssuerEntry(
        ca_id=ca.id,
        archive_cutoff=ca.not_before,
        hashes=core_ocsp.issuer_hashes(name_der, key_bits),
        responder=responder_info(sandbox, ca.ocsp_responder_der, ca.ocsp_key.ref),
        responder_valid=(responder_cert.not_valid_before, responder_cert.not_valid_after),
    )


def retire_responder(session: Session, ca: CertificateAuthority, now: dt.datetime) -> None:
    """Keep ``ca``'s current responder (certificate and key reference) before a rotation replaces it."""
    if ca.ocsp_responder_der is None or ca.ocsp_key_id is None:
        return
    cert = ax509.Certificate.load(ca.ocsp_responder_der)
    session.add(RetiredOcspResponder(issuer_id=ca.id, key_id=ca.ocsp_key_id, cert_der=ca.ocsp_responder_der,
                                     not_before=cert.not_valid_before, not_after=cert.not_valid_after, retired_at=now))


def past_responders(sandbox: Sandbox, ca_id: IssuerId) -> list[PastResponder]:
    """``ca_id``'s retired responders, oldest first."""
    with sandbox.transaction() as session:
        rows = session.execute(select(RetiredOcspResponder).where(RetiredOcspResponder.issuer_id == ca_id)
                               .order_by(RetiredOcspResponder.id)).scalars().all()
        return [PastResponder(r.not_before, r.not_after, r.cert_der, r.key.ref) for r in rows]


def issuer_entries(sandbox: Sandbox, session: Session) -> dict[IssuerId, IssuerEntry]:
    entries = {}
    for ca in repo.list_cas(session):
        entry = issuer_entry(sandbox, ca)
        if entry is not None:
            entries[ca.id] = entry
    return entries


def status_of(cert: Certificate, revocation: Revocation | None, entry: IssuerEntry, cert_id: core_ocsp.CertID,
              now: dt.datetime, hours: int) -> core_ocsp.SingleStatus:
    this_update, next_update = core_ocsp.validity_window(now, hours)
    if revocation is not None:
        return core_ocsp.SingleStatus(cert_id, "revoked", this_update, next_update, revocation.revoked_at,
                                      revocation.reason, entry.archive_cutoff)
    return core_ocsp.SingleStatus(cert_id, "good", this_update, next_update, archive_cutoff=entry.archive_cutoff)


def presign(sandbox: Sandbox, session: Session, certs: Sequence[Certificate], now: dt.datetime,
            entries: dict[IssuerId, IssuerEntry] | None = None) -> int:
    """Sign and store the single-certificate responses (both CertID hashes) for ``certs``.

    A certificate whose issuer has no OCSP responder (``has_responder``: the NCA CA's receipt and
    credential certificates) gets none: its status is published in its CA's CRL only."""
    ids = [c.id for c in certs]
    if ids:
        session.execute(delete(OcspResponse).where(OcspResponse.certificate_id.in_(ids)))
    if time_travelling():
        # Answers as of another time (--at) are never stored: clients on the real clock would be served them.
        # Without a stored answer the responder signs on demand, and the scheduler re-signs missing ones.
        return 0
    entries = entries or issuer_entries(sandbox, session)
    hours = sandbox.config.ocsp_validity_hours
    # Build every ResponseData first, then sign per issuer in one batch (Vault Transit batch_input).
    pending: dict[IssuerId, list[tuple[Certificate, str, bytes, core_ocsp.SingleStatus, bytes]]] = {}
    for cert in certs:
        entry = entries.get(cert.issuer_id)
        if entry is None:
            continue
        serial = int(cert.serial, 16)
        for algorithm, (name_hash, key_hash) in entry.hashes.items():
            cert_id = core_ocsp.CertID(algorithm, name_hash, key_hash, serial)
            status = status_of(cert, cert.revocation, entry, cert_id, now, hours)
            tbs = core_ocsp.response_data(entry.responder, [status], now.replace(microsecond=0))
            pending.setdefault(cert.issuer_id, []).append((cert, algorithm, key_hash, status, tbs))
    rows = []
    for issuer_id, items in pending.items():
        responder = entries[issuer_id].responder
        tbs_list = [item[4] for item in items]
        signatures = responder.sign_many(tbs_list) if responder.sign_many else [responder.sign(t) for t in tbs_list]
        for (cert, algorithm, key_hash, status, tbs), signature in zip(items, signatures, strict=True):
            rows.append(OcspResponse(
                certificate_id=cert.id, issuer_id=cert.issuer_id, hash_algorithm=algorithm,
                issuer_key_hash=key_hash.hex(), serial=cert.serial, status=status.status,
                der=core_ocsp.assemble(responder, tbs, signature),
                produced_at=now, this_update=status.this_update, next_update=status.next_update,
            ))
    session.add_all(rows)
    session.flush()
    return len(rows)


def resign_issuer(sandbox: Sandbox, issuer_id: IssuerId, now: dt.datetime, *, batch: int = 1000) -> int:
    """Re-sign every pre-signed response of one issuer (after its responder key rotated)."""
    done, last_id = 0, 0
    while True:
        with sandbox.transaction() as session:
            certs = list(session.execute(
                select(Certificate).where(Certificate.issuer_id == issuer_id, Certificate.id > last_id)
                .order_by(Certificate.id).limit(batch)
            ).scalars().all())
            if not certs:
                return done
            done += presign(sandbox, session, certs, now)
            last_id = certs[-1].id
