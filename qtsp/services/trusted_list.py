"""The sandbox Trusted List (ETSI TS 119 612 v2.x), XAdES-signed: when a list is made, and where it is kept.

One TrustServiceProvider (the QTSP) with one CA/QC service per listed CA: the QWAC CAs
(ForWebSiteAuthentication), the QSealC CAs (ForeSeals) and the simulator's listed scenarios CA
(both), every generation of each. The root, the NCA CA and the simulator's unlisted CAs are
never listed. Element names and their order follow the TS 119 612 XSD as pyhanko's xsdata
bindings (``pyhanko.generated.etsi.ts_119612``) generated them.

A list is kept until the listed services change (a CA rollover adds a service) or half its
validity has passed; then the next sequence number is built, signed and stored. The signer is
a key of the sandbox's key backend with a self-signed certificate (EKU id-tsl-kp-tslSigning),
made on first need: that certificate is the pin relying parties verify lists with
(``qtsp.relying_party.parse_and_verify_trusted_list``).
"""


from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import CertificateAuthority, TrustedListRecord, TrustedListSigner

from ..clock import real_utcnow, time_travelling, utcnow
from ..config import Config
from ..core.errors import Kind, QTSPError
from ..core.serials import new_serial
from ..core.trusted_list import ID_TSL_KP_TSL_SIGNING, MEDIA_TYPE
from ..signers import Signer
from . import signing
from .context import Sandbox
from .authorities import key_label, key_row
from .tl_xml import LISTED_ROLES, ListedCA, build_list, services_hash, sign_list

__all__ = [  # the store side; the document builder re-exported, and the media type the web layer serves the list as
    "LISTED_ROLES", "MEDIA_TYPE", "ListedCA", "build_list", "current", "latest", "listed_cas", "services_hash",
    "sign_list", "signer_certificate",
]

SIGNER_VALIDITY = dt.timedelta(days=3 * 365)
# The signer certificate starts this long before it is made: time travel into the past (the simulator backdates
# its CAs by two years) must still find the pinned signer valid, or every list "as of then" would be refused.
SIGNER_BACKDATE = dt.timedelta(days=5 * 365)


# --- the signer ---------------------------------------------------------------------------------


def _signer_certificate_template(cfg: Config, public_key: Any, now: dt.datetime) -> x509.CertificateBuilder:
    """Self-signed TLSO certificate: C and O of the scheme operator, KU digitalSignature + nonRepudiation,
    EKU id-tsl-kp-tslSigning."""
    cn = f"{cfg.organization} Trusted List Signer"[:64]
    subject = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, cfg.country),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, cfg.organization[:64]),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ])
    real = real_utcnow()
    # Valid around both the sandbox's clock and the real one (time travel), from SIGNER_BACKDATE before.
    not_before = (min(now, real) - SIGNER_BACKDATE).replace(microsecond=0)
    not_after = (max(now, real) + SIGNER_VALIDITY).replace(microsecond=0)
    return (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject).public_key(public_key)
        .serial_number(new_serial()).not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ID_TSL_KP_TSL_SIGNING]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def _covers(cert: x509.Certificate, now: dt.datetime, cfg: Config) -> bool:
    """Valid now and until the NextUpdate of a list issued now (relying parties check it at their time)."""
    return cert.not_valid_before_utc <= now and now + dt.timedelta(days=cfg.trusted_list_validity_days) < cert.not_valid_after_utc


def _newest_signer(session: Session) -> TrustedListSigner | None:
    return session.execute(select(TrustedListSigner).order_by(TrustedListSigner.id.desc()).limit(1)).scalar_one_or_none()


def _signer(sandbox: Sandbox, now: dt.datetime) -> tuple[Signer, x509.Certificate]:
    """The newest TL signer, if it covers a list issued at ``now``; else a new one is made (and kept)."""
    cfg = sandbox.config
    for _attempt in range(3):
        with sandbox.transaction() as session:
            row = _newest_signer(session)
            found = None if row is None else (row.id, row.key.ref, x509.load_der_x509_certificate(row.cert_der))
        if found is not None and _covers(found[2], now, cfg):
            return sandbox.backend(found[1]).signer(found[1]), found[2]
        next_id = 1 if found is None else found[0] + 1
        # A random label: two processes racing here never collide on a key name; the loser's key is unused.
        info = sandbox.backend().generate(key_label(cfg, f"tl-signer-{secrets.token_hex(4)}"), cfg.ca_key_type)
        signer = sandbox.backend(info.ref).signer(info.ref)
        cert = signing.sign(_signer_certificate_template(cfg, info.public_key, now), signer)
        try:
            with sandbox.transaction() as session:
                key = repo.add_key(session, key_row(info, "tl-signer:trusted-list", now))
                session.add(TrustedListSigner(id=next_id, key_id=key.id, cert_der=cert.public_bytes(Encoding.DER),
                                              created_at=now))
        except IntegrityError:
            continue  # another process made signer next_id first: use that one
        return signer, cert
    raise QTSPError(Kind.CONFLICT, "could not settle on a Trusted List signer (concurrent creation); try again")


def signer_certificate(sandbox: Sandbox) -> x509.Certificate:
    """The certificate to pin: the one that signs the lists now (made on first need)."""
    return _signer(sandbox, utcnow())[1]


# --- the stored lists -----------------------------------------------------------------------------


def listed_cas(session: Session) -> list[ListedCA]:
    rows = session.execute(
        select(CertificateAuthority).where(CertificateAuthority.role.in_(tuple(LISTED_ROLES)))
        .order_by(CertificateAuthority.created_at, CertificateAuthority.id)
    ).scalars().all()
    out = []
    for ca in rows:
        cert = x509.load_der_x509_certificate(ca.cert_der)
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        name = f"{str(cns[0].value) if cns else ca.subject} ({ca.id})"
        out.append(ListedCA(ca.id, ca.role, name, ca.cert_der, cert.not_valid_before_utc))
    return out


# What the web layer serves: sequence, issued_at, next_update, xml (a detached store row, read only there).
PublishedList = TrustedListRecord


def latest(session: Session) -> TrustedListRecord | None:
    query = select(TrustedListRecord).order_by(TrustedListRecord.sequence.desc()).limit(1)
    return session.execute(query).scalar_one_or_none()


def _still_current(record: TrustedListRecord, digest: str, now: dt.datetime) -> bool:
    """Same services, not past half its validity, and not issued after ``now`` (a list made while
    time-travelling ahead is not served to someone at an earlier time)."""
    half_life = record.issued_at + (record.next_update - record.issued_at) / 2
    return record.services_hash == digest and record.issued_at <= now < half_life


def current(sandbox: Sandbox, now: dt.datetime) -> TrustedListRecord:
    """The list to serve: the newest, unless the listed services changed or half its validity has passed;
    then the next sequence number is built, signed and stored (the unique sequence settles races)."""
    cfg = sandbox.config
    with sandbox.transaction() as session:
        cas = listed_cas(session)
        record = latest(session)
    digest = services_hash(cfg, cas)
    if record is not None and _still_current(record, digest, now):
        return record
    signer, signer_cert = _signer(sandbox, now)
    issued_at = now.astimezone(dt.timezone.utc).replace(microsecond=0)
    next_update = issued_at + dt.timedelta(days=cfg.trusted_list_validity_days)
    if time_travelling():
        # A list "as of" another time (the simulator's time travel) is built for that request only and
        # never stored: the published sequence belongs to the real clock.
        sequence = 1 if record is None else record.sequence
        xml = sign_list(build_list(cfg, sequence, issued_at, next_update, cas), signer, signer_cert, issued_at)
        return TrustedListRecord(sequence=sequence, services_hash=digest, issued_at=issued_at, next_update=next_update,
                                 xml=xml)
    for _attempt in range(5):
        with sandbox.transaction() as session:
            record = latest(session)
        if record is not None and _still_current(record, digest, now):
            return record  # another process published it meanwhile
        sequence = 1 if record is None else record.sequence + 1
        xml = sign_list(build_list(cfg, sequence, issued_at, next_update, cas), signer, signer_cert, issued_at)
        fresh = TrustedListRecord(sequence=sequence, services_hash=digest, issued_at=issued_at, next_update=next_update,
                                  xml=xml)
        try:
            with sandbox.transaction() as session:
                session.add(fresh)
        except IntegrityError:
            continue  # that sequence number was taken: re-read
        return fresh
    raise QTSPError(Kind.CONFLICT, "could not publish the Trusted List (sequence numbers kept being taken); try again")
