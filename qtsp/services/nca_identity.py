"""NCA identities: the sandbox's NCA CA, NCA request-signing credentials, the QTSP receipt key.

The NCA CA sits under the sandbox root but outside the qualified hierarchies (EKU
documentSigning); it issues each simulated NCA a seal-like certificate for signing its JWS
requests (``qtsp nca add --generate``), and the QTSP's own receipt-signing certificate. Both are
rows of the certificates table (issuer ``nca-ca``), so ``qtsp revoke`` and the NCA CA's CRL work
for them; revoking a credential's certificate withdraws the credential in the same transaction.

A credential counts only while it is current, not withdrawn, not revoked, and chains to its
anchor: checked when it is added and on every request it signs (``check_credential``).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, NationalCompetentAuthority, NcaCredential

from ..clock import utcnow
from ..core import builder, profiles
from ..core.credentials import check_credential as _check_chain
from ..core.credentials import is_ca, issued_by
from ..core.errors import Kind, QTSPError
from ..core.keys import KeyType, PrivateKey, PublicKey, generate_private_key
from ..core.names import check_country
from ..core.psd2 import NCA_ID_RE
from ..core.ocsp import REASONS
from ..core.types import IssuerId, SerialHex, serial_hex
from ..signers import Signer
from . import authorities, output, revocation
from .access import EVERYTHING, Scope
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
    withdrawn: list[str]  # those of ``credentials`` withdrawn (or whose certificate was revoked)


@dataclass(frozen=True)
class Withdrawn:
    nca_id: str
    fingerprint: str
    withdrawn_at: dt.datetime
    revoked_serial: str | None  # the certificate revoked with it (issued here), if any


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


def _seal_row(cert: x509.Certificate, now: dt.datetime) -> Certificate:
    """The certificates-table row of a seal the NCA CA issued (a credential, the receipt key's)."""
    der = cert.public_bytes(serialization.Encoding.DER)
    return Certificate(issuer_id=NCA_CA_ID, serial=serial_hex(cert.serial_number), profile=profiles.NCA_SEAL.name,
                       subject=cert.subject.rfc4514_string(), not_before=cert.not_valid_before_utc,
                       not_after=cert.not_valid_after_utc, fingerprint_sha256=hashlib.sha256(der).hexdigest(), der=der,
                       status="good", created_at=now)


def _load_pems(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        certs = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"{what} is not a PEM certificate") from None
    if not certs:
        raise QTSPError(Kind.MALFORMED, f"{what} holds no certificate")
    return certs


def _pem(certs: list[x509.Certificate]) -> str:
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certs)


def add_nca(sandbox: Sandbox, nca_id: str, name: str, *, cert_pem: bytes | None = None, generate: bool = False,
            out: Path | None = None, key_type: KeyType = CREDENTIAL_KEY_TYPE, anchor_pem: bytes | None = None,
            actor: str = "cli") -> tuple[NcaView, list[Path]]:
    """Register an NCA (if new) and a credential for it: a given certificate, or one issued here.

    A given certificate (``cert_pem``: the certificate, then any intermediates) must chain to the sandbox's
    NCA CA, or to ``anchor_pem`` (a CA certificate the operator trusts for this credential), carry the
    documentSigning EKU and be valid now; nothing is stored otherwise. With ``generate``, key.pem, cert.pem
    and chain.pem are created in ``out`` (new, never through a symlink) before anything is issued, so that
    output that cannot be written costs no credential."""
    if not generate or out is None:
        return _add_nca(sandbox, nca_id, name, cert_pem=cert_pem, generate=generate, key_type=key_type,
                        anchor_pem=anchor_pem, actor=actor)
    with output.Outputs.reserve(out, with_key=True, with_p12=False) as outputs:
        return _add_nca(sandbox, nca_id, name, cert_pem=cert_pem, generate=generate, outputs=outputs,
                        key_type=key_type, anchor_pem=anchor_pem, actor=actor)


def _add_nca(sandbox: Sandbox, nca_id: str, name: str, *, cert_pem: bytes | None, generate: bool,
             outputs: output.Outputs | None = None, key_type: KeyType, anchor_pem: bytes | None,
             actor: str) -> tuple[NcaView, list[Path]]:
    if not NCA_ID_RE.fullmatch(nca_id):
        raise QTSPError(Kind.MALFORMED, f"malformed NCA id {nca_id!r}: e.g. BE-NBB (TS 119 495 5.2.3)")
    if not name or len(name) > 256 or not name.isprintable():
        raise QTSPError(Kind.MALFORMED, "NCA name: 1-256 printable characters")
    if generate == (cert_pem is not None):
        raise QTSPError(Kind.MALFORMED, "give exactly one of --cert or --generate")
    if generate and anchor_pem is not None:
        raise QTSPError(Kind.MALFORMED, "--anchor goes with --cert: a generated credential chains to the sandbox's NCA CA")
    country = check_country(nca_id[:2])
    now = utcnow()
    files: list[Path] = []
    key: PrivateKey | None = None
    intermediates: list[x509.Certificate] = []
    anchor: x509.Certificate | None = None
    if generate:
        if outputs is None:
            raise QTSPError(Kind.MALFORMED, "--generate needs --out DIR")
        key = generate_private_key(key_type)
        cert, chain = issue_seal(sandbox, key.public_key(), f"{nca_id} PSD2 request signing", name, country, now)
    else:
        cert, *intermediates = _load_pems(cert_pem or b"", "--cert")
        chain = []
        if anchor_pem is not None:
            anchors = _load_pems(anchor_pem, "--anchor")
            if len(anchors) != 1:
                raise QTSPError(Kind.MALFORMED, "--anchor holds one CA certificate (put intermediates after the "
                                                "certificate in --cert)")
            anchor = anchors[0]
            if not is_ca(anchor):
                raise QTSPError(Kind.POLICY, "--anchor is not a CA certificate")
        nca_ca = ensure_nca_ca(sandbox, now).cert
        _check_chain(cert, intermediates, [anchor] if anchor is not None else [nca_ca], now)
    _check_credential_key(cert)
    der = cert.public_bytes(serialization.Encoding.DER)
    # issued by the sandbox's NCA CA: its row belongs in the certificates table (revoke, the nca-ca CRL)
    ours = generate or (anchor is None and issued_by(cert, nca_ca))
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
        row: Certificate | None = None
        if ours:
            row = repo.certificate_by_fingerprint(session, fp)
            if row is None:
                row = repo.add_certificate(session, _seal_row(cert, now))
                # Every certificate row has its issuance event (qtsp audit verify checks the store against them).
                repo.append_audit(session, at=now, actor=actor, action="certificate.issue", subject=row.serial,
                                  details={"issuer": NCA_CA_ID, "profile": row.profile, "purpose": "nca-credential",
                                           "sha256": row.fingerprint_sha256})
            elif row.status != "good":
                raise QTSPError(Kind.POLICY, f"certificate {row.serial} is revoked; it cannot become a credential")
        repo.add_nca_credential(session, NcaCredential(
            nca_id=nca_id, fingerprint_sha256=fp, cert_der=der, not_after=cert.not_valid_after_utc, created_at=now,
            intermediates_pem=_pem(intermediates) or None,
            anchor_der=None if anchor is None else anchor.public_bytes(serialization.Encoding.DER),
            certificate_id=None if row is None else row.id))
        repo.append_audit(session, at=now, actor=actor, action="nca.credential.add", subject=nca_id,
                          details={"fingerprint": fp, "generated": generate,
                                   "serial": None if row is None else row.serial,
                                   "anchor": "nca-ca" if anchor is None else fingerprint(anchor)})
    if key is not None and outputs is not None:
        files = [outputs.write("key.pem", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption())),
                 outputs.write("cert.pem", cert.public_bytes(serialization.Encoding.PEM)),
                 outputs.write("chain.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))]
        outputs.finish()
    receipt_signer(sandbox)  # made now, with the first credential, so that requests never create state
    return get_nca(sandbox, nca_id), files


def check_credential(session: Session, credential: NcaCredential, now: dt.datetime) -> None:
    """On every request: not withdrawn, its certificate (if issued here) not revoked, current, documentSigning,
    and still chaining to its anchor. QTSPError(UNAUTHENTICATED) otherwise."""
    if credential.revoked_at is not None:
        raise QTSPError(Kind.UNAUTHENTICATED, "the NCA credential was withdrawn")
    if credential.certificate_id is not None:
        status = session.execute(select(Certificate.status).where(Certificate.id == credential.certificate_id)).scalar_one()
        if status != "good":
            raise QTSPError(Kind.UNAUTHENTICATED, "the NCA credential's certificate is revoked")
    cert = x509.load_der_x509_certificate(credential.cert_der)
    intermediates = x509.load_pem_x509_certificates(credential.intermediates_pem.encode()) if credential.intermediates_pem else []
    anchor = (x509.load_der_x509_certificate(credential.anchor_der) if credential.anchor_der is not None
              else x509.load_der_x509_certificate(repo.get_ca(session, NCA_CA_ID).cert_der))
    try:
        _check_chain(cert, intermediates, [anchor], now)
    except QTSPError as exc:
        raise QTSPError(Kind.UNAUTHENTICATED, f"the NCA credential is not valid now: {exc.detail}") from None


def find_credential(sandbox: Sandbox, ref: str) -> str:
    """The fingerprint a full fingerprint or a unique prefix of at least 8 hex digits names."""
    ref = ref.strip().lower().replace(":", "")
    if not 8 <= len(ref) <= 64 or any(c not in "0123456789abcdef" for c in ref):
        raise QTSPError(Kind.MALFORMED, "a credential is named by its SHA-256 fingerprint (or 8+ leading hex digits)")
    with sandbox.transaction() as session:
        matches = [fp for _, fp in repo.nca_credential_fingerprints(session) if fp.startswith(ref)]
    if not matches:
        raise QTSPError(Kind.NOT_FOUND, f"no NCA credential {ref} (see 'qtsp nca list --json')")
    if len(matches) > 1:
        raise QTSPError(Kind.MALFORMED, f"{ref} names {len(matches)} credentials; give more of the fingerprint")
    return matches[0]


def withdraw_credential(sandbox: Sandbox, fp: str, *, reason: str = "cessation-of-operation", actor: str = "cli",
                        now: dt.datetime | None = None, scope: Scope = EVERYTHING) -> Withdrawn:
    """Make a credential unusable at once; its certificate, when the NCA CA issued it, is revoked in the same
    transaction (so the nca-ca CRL lists it). Requests it signed before stay on record. A caller whose scope
    is restricted does not see NCA credentials (answered as one that does not exist)."""
    if reason not in REASONS:
        raise QTSPError(Kind.MALFORMED, f"unknown reason {reason!r}: one of {', '.join(REASONS)}")
    now = now or utcnow()
    with sandbox.transaction() as session:
        credential = session.execute(select(NcaCredential).where(NcaCredential.fingerprint_sha256 == fp)
                                     .with_for_update()).scalar_one_or_none()
        if credential is None or not scope.allows_ca_wide():
            raise QTSPError(Kind.NOT_FOUND, f"no NCA credential {fp}")
        if credential.revoked_at is not None:
            raise QTSPError(Kind.ALREADY_REVOKED, f"NCA credential {fp[:16]}... was withdrawn at "
                                                  f"{credential.revoked_at:%Y-%m-%d %H:%M:%S}Z")
        withdrawn_at = now.replace(microsecond=0)
        credential.revoked_at = withdrawn_at
        revoked_serial = None
        session.flush()
        repo.append_audit(session, at=now, actor=actor, action="nca.credential.withdraw", subject=credential.nca_id,
                          details={"fingerprint": fp, "reason": reason})
        if credential.certificate_id is not None:
            row = session.execute(select(Certificate).where(Certificate.id == credential.certificate_id)
                                  .with_for_update()).scalar_one()
            if row.revocation is None:
                revocation.revoke_rows(sandbox, session, [row], reason, actor=actor, now=now,
                                       details={"nca_credential": fp})
                revoked_serial = row.serial
        result = Withdrawn(credential.nca_id, fp, withdrawn_at, revoked_serial)
    revocation.published(sandbox)
    return result


def get_nca(sandbox: Sandbox, nca_id: str) -> NcaView:
    with sandbox.transaction() as session:
        nca = repo.get_nca(session, nca_id)
        if nca is None:
            raise QTSPError(Kind.NOT_FOUND, f"no NCA {nca_id}")
        return NcaView(nca.nca_id, nca.name, [fp for _, fp in repo.nca_credential_fingerprints(session, nca_id)],
                       repo.withdrawn_nca_credentials(session, nca_id))


def list_ncas(sandbox: Sandbox) -> list[NcaView]:
    with sandbox.transaction() as session:
        creds: dict[str, list[str]] = {}
        for nca_id, fp in repo.nca_credential_fingerprints(session):
            creds.setdefault(nca_id, []).append(fp)
        withdrawn = set(repo.withdrawn_nca_credentials(session))
        return [NcaView(n.nca_id, n.name, creds.get(n.nca_id, []), [f for f in creds.get(n.nca_id, []) if f in withdrawn])
                for n in repo.list_ncas(session) if n.nca_id != "NA"]


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
    with sandbox.transaction() as session:
        repo.add_key(session, authorities.key_row(info, f"{RECEIPTS}:{serial_hex(cert.serial_number)}", now))
        repo.add_certificate(session, _seal_row(cert, now))
        # Every certificate row has its issuance event (qtsp audit verify checks the store against them).
        repo.append_audit(session, at=now, actor="system", action="certificate.issue", subject=serial_hex(cert.serial_number),
                          details={"issuer": NCA_CA_ID, "profile": profiles.NCA_SEAL.name, "purpose": RECEIPTS,
                                   "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()})
    return authorities.signer_for(sandbox, info.ref), [cert] + chain


def credential_for(session: Session, *, der: bytes | None = None, kid: str | None = None) -> NcaCredential | None:
    fp = hashlib.sha256(der).hexdigest() if der is not None else kid
    if not fp:
        return None
    return repo.get_nca_credential(session, fp)
