"""What every CA certificate is made of: the QTSP's name, a key from the sandbox's key backend,
and a certificate built from a profile, linted with a throwaway key, then signed.

Root, issuing, NCA and simulator CAs, their OCSP responders and the NCA seals all come through
``certify``: so none of them is signed before lint passes (Boulder's ``Issuer.Prepare`` order,
ARCHITECTURE "Issuance, step by step" 4), whichever command made it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import NameOID

from ca_store.models import KeyReference

from ... import config as config_mod
from ...core import builder, profiles
from ...core.keys import KeyType, PublicKey, supported_public_key
from ...core.names import parse_org_id
from ...core.profiles import Profile
from ...core.serials import new_serial
from ...core.types import IssuerId, KeyRef
from ...signers import KeyInfo, Signer
from .. import signing
from ..context import Sandbox

ROOT_ID, QWAC_CA_ID, QSEAL_CA_ID = IssuerId("root"), IssuerId("qwac-ca"), IssuerId("qseal-ca")
# The browser QWAC hierarchy: a second root, dedicated to TLS server authentication (Chrome Root Program
# Policy v1.6 3.2), and its serverAuth-only issuing CA. ``root`` keeps the non-browser QWAC CA and the QSealC CA.
BROWSER_ROOT_ID, QWAC_BROWSER_CA_ID = IssuerId("browser-root"), IssuerId("qwac-browser-ca")
RESPONDER_SUFFIX = " OCSP Responder"


def ca_subject(cfg: config_mod.Config, common_name: str) -> x509.Name:
    """A CA (or responder) subject: the QTSP's organisation, country and organizationIdentifier
    from the configuration, with this common name (EN 319 412-3 for the QTSP's own names)."""
    data = builder.SubjectData(
        organization=cfg.organization,
        country=cfg.country,
        org_id=parse_org_id(cfg.organization_identifier),
        common_name=common_name,
    )
    return builder.subject_name(profiles.SubjectShape.CA, data)


def common_name(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def responder_name(ca_cert: x509.Certificate) -> str:
    """The delegated responder's common name: its CA's, then " OCSP Responder" (at most 64, X.520 ub-common-name)."""
    return f"{common_name(ca_cert)}{RESPONDER_SUFFIX}"[:64]


def issuer_info(cfg: config_mod.Config, ca_id: IssuerId, cert: x509.Certificate, *,
                ocsp: bool = True) -> builder.IssuerInfo:
    """What a certificate signed by ``ca_id`` says about it: name, key, and the URLs of its AIA and CRL.
    A root's children name the OCSP URL too, answered by that root's delegated responder (the sandbox
    root's and the browser root's, ``ensure_ca_status``); ``ocsp=False`` for the NCA seals and the
    ceremonies' link certificates."""
    return builder.IssuerInfo(
        name=cert.subject,
        public_key=supported_public_key(cert.public_key()),  # a CA's: RSA or EC (CA_KEY_TYPES)
        not_after=cert.not_valid_after_utc,
        ca_issuers_url=cfg.ca_issuers_url(ca_id),
        ocsp_url=cfg.ocsp_url if ocsp else None,
        crl_url=cfg.crl_url(ca_id),
    )


# --- keys -----------------------------------------------------------------------------------------


def key_label(cfg: config_mod.Config, name: str) -> str:
    """File keys are numbered per rotation (root-1, root-2); Transit keys carry versions instead,
    under a per-sandbox prefix so that two sandboxes can share one Vault."""
    return f"{cfg.vault_key_prefix}{name}" if cfg.key_backend == "vault-transit" else f"{name}-1"


def new_key(sandbox: Sandbox, name: str, key_type: KeyType) -> KeyInfo:
    """A new key in the sandbox's key backend (file, Vault Transit), labelled for ``name``."""
    return sandbox.backend().generate(key_label(sandbox.config, name), key_type)


def signer_for(sandbox: Sandbox, ref: KeyRef) -> Signer:
    """The Signer of a stored key reference; the reference's scheme picks the backend."""
    return sandbox.backend(ref).signer(KeyRef(ref))


def key_row(info: KeyInfo, purpose: str, now: dt.datetime) -> KeyReference:
    """The store's row for a key: its reference and public key, never key material."""
    der = info.public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    return KeyReference(ref=info.ref, key_type=info.key_type, public_key_der=der, purpose=purpose, created_at=now)


# --- certificates ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Issuer:
    """A CA that signs: its id (for the URLs), its certificate and its Signer."""

    ca_id: IssuerId
    cert: x509.Certificate
    signer: Signer


@dataclass(frozen=True)
class Responder:
    """A delegated OCSP responder (RFC 6960 4.2.2.2): its certificate and key."""

    cert: x509.Certificate
    key: KeyInfo


@dataclass(frozen=True)
class NewCA:
    """A CA made (or imported) and not stored yet: what ``records.insert`` writes."""

    ca_id: IssuerId
    parent_id: IssuerId | None
    role: str
    profile: str
    cert: x509.Certificate
    key: KeyInfo
    responder: Responder | None = None


def certify(sandbox: Sandbox, profile: Profile, *, subject: x509.Name, public_key: PublicKey, now: dt.datetime,
            issuer: Issuer | None, own_signer: Signer | None = None, ocsp: bool = True) -> x509.Certificate:
    """Build ``profile``'s template, lint it on a throwaway key (the sandbox's linter), then sign it.

    ``issuer=None``: self-signed with ``own_signer`` (a root)."""
    info = None if issuer is None else issuer_info(sandbox.config, issuer.ca_id, issuer.cert, ocsp=ocsp)
    tbs = builder.build(profile, subject=subject, public_key=public_key, serial=new_serial(), now=now, issuer=info)
    signer = issuer.signer if issuer is not None else own_signer
    if signer is None:
        raise ValueError("a self-signed certificate needs its own signer")
    return signing.sign_after_lint(tbs, signer, profile, sandbox.linter)


def make_responder(sandbox: Sandbox, ca: Issuer, now: dt.datetime, *, key: KeyInfo | None = None,
                   validity_days: int | None = None) -> Responder:
    """A responder certificate for ``ca``, on ``key`` (a new key of ``ocsp_key_type`` if not given)."""
    cfg = sandbox.config
    key = key or new_key(sandbox, f"{ca.ca_id}-ocsp", cfg.ocsp_key_type)
    profile = profiles.OCSP_RESPONDER.with_validity(validity_days or cfg.ocsp_validity_days)
    cert = certify(sandbox, profile, subject=ca_subject(cfg, responder_name(ca.cert)), public_key=key.public_key,
                   now=now, issuer=ca)
    return Responder(cert, key)
