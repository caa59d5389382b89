"""Steps 4 and 6 of the issuance cycle: lint with a throwaway key, then sign with the CA's Signer."""

from __future__ import annotations

from cryptography import x509

from ..core.keys import signature_hash
from ..core.profiles import Profile
from ..lint import Linter
from ..signers import Signer


def lint(tbs: x509.CertificateBuilder, signer: Signer, profile: Profile, linter: Linter) -> None:
    """Raise QTSPError(LINT) unless a throwaway-key copy of the template lints clean."""
    lint_cert = tbs.sign(linter.key_for(signer.public_key()), signature_hash(signer))
    linter.require_clean(lint_cert, profile)


def sign(tbs: x509.CertificateBuilder, signer: Signer) -> x509.Certificate:
    return tbs.sign(signer, signature_hash(signer))


def sign_after_lint(tbs: x509.CertificateBuilder, signer: Signer, profile: Profile, linter: Linter) -> x509.Certificate:
    lint(tbs, signer, profile, linter)
    return sign(tbs, signer)
