"""Steps 4 and 6 of the issuance cycle: lint with a throwaway key, then sign with the CA's Signer."""

from __future__ import annotations

from cryptography import x509

from ..core.keys import PrivateKey, PublicKey, generate_private_key, key_type_of, signature_hash
from ..core.profiles import Profile
from ..lint import default_linter
from ..signers import Signer

_lint_keys: dict[str, PrivateKey] = {}


def lint_key_for(public_key: PublicKey) -> PrivateKey:
    """A throwaway key of the issuer's type, made once per process; it never signs a real certificate."""
    key_type = key_type_of(public_key)
    if key_type not in _lint_keys:
        _lint_keys[key_type] = generate_private_key(key_type)
    return _lint_keys[key_type]


def lint(tbs: x509.CertificateBuilder, signer: Signer, profile: Profile) -> None:
    """Raise QTSPError(LINT) unless a throwaway-key copy of the template lints clean."""
    lint_cert = tbs.sign(lint_key_for(signer.public_key()), signature_hash(signer))  # type: ignore[arg-type]
    default_linter().require_clean(lint_cert, profile)


def sign(tbs: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    return tbs.sign(signer, signature_hash(signer))  # type: ignore[arg-type]


def sign_after_lint(tbs: x509.CertificateBuilder, signer: Signer, profile: Profile) -> x509.Certificate:
    lint(tbs, signer, profile)
    return sign(tbs, signer)
