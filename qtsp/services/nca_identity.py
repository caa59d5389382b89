"""NCA identities: the sandbox's NCA CA, NCA request-signing credentials, the QTSP receipt key.

The NCA CA sits under the sandbox root but outside the qualified hierarchies (EKU
documentSigning); it issues each simulated NCA a seal-like certificate for signing its JWS
requests (``qtsp nca add --generate``), and the QTSP's own receipt-signing certificate.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, NationalCompetentAuthority, NcaCredential

from ..clock import utcnow
from ..core import builder, profiles
from ..core.errors import Kind, QTSPError
from ..core.keys import KeyType, PrivateKey, PublicKey, generate_private_key
from ..core.names import check_country
from ..core.psd2 import NCA_ID_RE
from ..core.types import IssuerId, SerialHex, serial_hex
from ..signers import Signer
from ..signers.file import write_private
from . import authorities
from .authorities import ROOT_ID, LoadedCA, Plan
from .context import Sandbox

NCA_CA_ID = IssuerId("nca-ca")
NCA_CA_NAME = "qtsp Sandbox NCA and Receipts CA"
RECEIPTS = "receipts"
# The key ``qtsp nca add --generate`` makes for a simulated NCA: its JWS requests are signed ES256.
CREDENTIAL_KEY_TYPE = KeyType.ECDSA_P256


@dataclass(frozen=True)
class NcaView:
    nca_id: str
    name: str
    credentials: list[str]  # SHA-256 fingerprints (the JWS kid)


def fingerprint(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def ensure_nca_ca(sandbox: Sandbox, now: dt.datetime) -> LoadedCA:
    """The NCA CA, made on first use under the sandbox root (outside the qualified hierarchies)."""
    existing = authorities.load_many(sandbox, [NCA_CA_ID])
    if NCA_CA_ID in existing:
        return existing[NCA_CA_ID]
    authorities.ensure_ca_status(sandbox, now, actor="system")  # its certificate names the root's responder
    root = authorities.load(sandbox, ROOT_ID)
    plan = Plan(NCA_CA_ID, "nca", profiles.NCA_ISSUING_CA, NCA_CA_NAME, root.issuer, responder=False)
    new, _ = authorities.make_ca(sandbox, plan, now)
    if authorities.insert_once(sandbox, [new], now, actor="system"):
        authorities.publish(sandbox, {NCA_CA_ID: new.cert})
        authorities.presign_status(sandbox, now)
    return authorities.load(sandbox, NCA_CA_ID)  # ours, or the one another process stored first


def issue_seal(sandbox: Sandbox, public_key: PublicKey, common_name: str, organization: str, country: str,
               now: dt.datetime) -> tuple[x509.Certificate, list[x509.Certificate]]:
    """A seal-like certificate from the NCA CA (an NCA's request-signing credential, the receipt key's),
    and its chain: the NCA CA, the root."""
    ca = ensure_nca_ca(sandbox, now)
    root_cert = authorities.load(sandbox, ROOT_ID).cert
    subject = builder.subject_name(profiles.SubjectShape.CA, builder.SubjectData(organization[:64], country, common_name=common_name[:64]))
    cert = authorities.certify(sandbox, profiles.NCA_SEAL, subject=subject, public_key=public_key, now=now,
                               issuer=ca.issuer, ocsp=False)
    return cert, [ca.cert, root_cert]


def _check_credential_key(cert: x509.Certificate) -> None:
    key = cert.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name in ("secp256r1", "secp384r1"):
        return
    if isinstance(key, rsa.RSAPublicKey) and key.key_size >= 2048:
        return
    raise QTSPError(Kind.POLICY, "an NCA credential needs a P-256, P-384 or RSA >= 2048 key (ES256/ES384/PS256/RS256)")


def add_nca(sandbox: Sandbox, nca_id: str, name: str, *, cert_pem: bytes | None = None, generate: bool = False,
            out: Path | None = None, key_type: KeyType = CREDENTIAL_KEY_TYPE, actor: str = "cli") -> tuple[NcaView, list[Path]]:
    """Register an NCA (if new) and a credential for it: a given certificate, or one issued here."""
    if not NCA_ID_RE.fullmatch(nca_id):
        raise QTSPError(Kind.MALFORMED, f"malformed NCA id {nca_id!r}: e.g. BE-NBB (TS 119 495 5.2.3)")
    if not name or len(name) > 256 or not name.isprintable():
        raise QTSPError(Kind.MALFORMED, "NCA name: 1-256 printable characters")
    if generate == (cert_pem is not None):
        raise QTSPError(Kind.MALFORMED, "give exactly one of --cert or --generate")
    country = check_country(nca_id[:2])
    now = utcnow()
    files: list[Path] = []
    key: PrivateKey | None = None
    if generate:
        if out is None:
            raise QTSPError(Kind.MALFORMED, "--generate needs --out DIR")
        targets = [out / "key.pem", out / "cert.pem", out / "chain.pem"]
        if any(p.exists() for p in targets):
            raise QTSPError(Kind.CONFLICT, f"refusing to overwrite files in {out}")
        key = generate_private_key(key_type)
        cert, chain = issue_seal(sandbox, key.public_key(), f"{nca_id} PSD2 request signing", name, country, now)
    else:
        try:
            cert = x509.load_pem_x509_certificate(cert_pem or b"")
        except ValueError:
            raise QTSPError(Kind.MALFORMED, "--cert is not a PEM certificate") from None
        chain = []
        if cert.not_valid_after_utc <= now:
            raise QTSPError(Kind.POLICY, "the NCA certificate has expired")
    _check_credential_key(cert)
    with sandbox.transaction() as session:
        nca = repo.get_nca(session, nca_id)
        if nca is None:
            nca = NationalCompetentAuthority(nca_id=nca_id, name=name, country=country)
            repo.add_nca(session, nca)
        elif nca.name != name:
            raise QTSPError(Kind.CONFLICT, f"NCA {nca_id} is registered as {nca.name!r}; use that name")
        fp = fingerprint(cert)
        if repo.get_nca_credential(session, fp) is not None:
            raise QTSPError(Kind.CONFLICT, "that certificate is registered already")
        repo.add_nca_credential(session, NcaCredential(
            nca_id=nca_id, fingerprint_sha256=fp, cert_der=cert.public_bytes(serialization.Encoding.DER),
            not_after=cert.not_valid_after_utc, created_at=now))
        repo.append_audit(session, at=now, actor=actor, action="nca.credential.add", subject=nca_id,
                          details={"fingerprint": fp, "generated": generate})
    if key is not None and out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_private(out / "key.pem", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
        (out / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        (out / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
        files = targets
    receipt_signer(sandbox)  # made now, with the first credential, so that requests never create state
    return get_nca(sandbox, nca_id), files


def get_nca(sandbox: Sandbox, nca_id: str) -> NcaView:
    with sandbox.transaction() as session:
        nca = repo.get_nca(session, nca_id)
        if nca is None:
            raise QTSPError(Kind.NOT_FOUND, f"no NCA {nca_id}")
        return NcaView(nca.nca_id, nca.name, [fp for _, fp in repo.nca_credential_fingerprints(session, nca_id)])


def list_ncas(sandbox: Sandbox) -> list[NcaView]:
    with sandbox.transaction() as session:
        creds: dict[str, list[str]] = {}
        for nca_id, fp in repo.nca_credential_fingerprints(session):
            creds.setdefault(nca_id, []).append(fp)
        return [NcaView(n.nca_id, n.name, creds.get(n.nca_id, [])) for n in repo.list_ncas(session) if n.nca_id != "NA"]


def receipt_signer(sandbox: Sandbox) -> tuple[Signer, list[x509.Certificate]]:
    """The QTSP's receipt key and its chain (made on first use under the NCA CA)."""
    with sandbox.transaction() as session:
        key = repo.newest_key_for(session, f"{RECEIPTS}:")
        if key is not None:
            serial = SerialHex(key.purpose.split(":", 1)[1])  # receipts:<serial>, written by serial_hex
            chain_der = [repo.get_certificate(session, serial, NCA_CA_ID).der, repo.get_ca(session, NCA_CA_ID).cert_der,
                         repo.get_ca(session, ROOT_ID).cert_der]
            return authorities.signer_for(sandbox, key.ref), [x509.load_der_x509_certificate(d) for d in chain_der]
    now = utcnow()
    cfg = sandbox.config
    info = authorities.new_key(sandbox, f"{RECEIPTS}-{now:%Y%m%d%H%M%S}", cfg.ocsp_key_type)
    cert, chain = issue_seal(sandbox, info.public_key, "qtsp Sandbox NCA Request Receipts", cfg.organization, cfg.country, now)
    der = cert.public_bytes(serialization.Encoding.DER)
    with sandbox.transaction() as session:
        repo.add_key(session, authorities.key_row(info, f"{RECEIPTS}:{serial_hex(cert.serial_number)}", now))
        repo.add_certificate(session, Certificate(
            issuer_id=NCA_CA_ID, serial=serial_hex(cert.serial_number), profile=profiles.NCA_SEAL.name,
            subject=cert.subject.rfc4514_string(), not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc,
            fingerprint_sha256=hashlib.sha256(der).hexdigest(), der=der, status="good", created_at=now))
    return authorities.signer_for(sandbox, info.ref), [cert] + chain


def credential_for(session: Session, *, der: bytes | None = None, kid: str | None = None) -> NcaCredential | None:
    fp = hashlib.sha256(der).hexdigest() if der is not None else kid
    if not fp:
        return None
    return repo.get_nca_credential(session, fp)
