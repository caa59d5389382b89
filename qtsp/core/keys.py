"""Key policy (BR 6.1.5, 7.1.3.1), key generation and CSR intake."""

from __future__ import annotations

from enum import StrEnum
from typing import overload

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from .errors import malformed, policy


class KeyType(StrEnum):
    """The key algorithms and sizes we use (BR 6.1.5), by the names the configuration and the CLI give them."""

    ECDSA_P256 = "ecdsa-p256"
    ECDSA_P384 = "ecdsa-p384"
    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    ED25519 = "ed25519"


# The names, derived from the enum (CLI choices and messages list them in these orders).
KEY_TYPES: tuple[str, ...] = tuple(t.value for t in KeyType)
CA_KEY_TYPES: tuple[str, ...] = tuple(t.value for t in (KeyType.ECDSA_P384, KeyType.ECDSA_P256, KeyType.RSA_3072,
                                                        KeyType.RSA_4096))
MAX_CSR_BYTES = 64 * 1024
_CURVE_TYPES = {"secp256r1": KeyType.ECDSA_P256, "secp384r1": KeyType.ECDSA_P384}

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey
PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey


def parse_key_type(text: str) -> KeyType:
    """A key type by its name; POLICY naming the known ones if it is none."""
    if text not in KEY_TYPES:
        raise policy(f"unknown key type {str(text)!r}: expected one of {', '.join(KEY_TYPES)}")
    return KeyType(text)


def generate_private_key(key_type: KeyType) -> PrivateKey:
    if key_type == KeyType.ECDSA_P256:
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == KeyType.ECDSA_P384:
        return ec.generate_private_key(ec.SECP384R1())
    if key_type in (KeyType.RSA_2048, KeyType.RSA_3072, KeyType.RSA_4096):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[4:]))
    if key_type == KeyType.ED25519:
        return ed25519.Ed25519PrivateKey.generate()
    raise policy(f"unknown key type {str(key_type)!r}: expected one of {', '.join(KEY_TYPES)}")


def key_name(key: PublicKey | PrivateKey) -> str:
    """The name of ``key``'s type: a ``KeyType``'s, or ``rsa-<bits>`` for an RSA size we do not make (an
    imported or a CSR's key). POLICY for algorithms and curves we do not use at all."""
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        return f"rsa-{key.key_size}"
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        if key.curve.name not in _CURVE_TYPES:
            raise policy(f"unsupported elliptic curve {key.curve.name}: use P-256 or P-384 (BR 6.1.5)")
        return _CURVE_TYPES[key.curve.name].value
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return KeyType.ED25519.value
    raise policy(f"unsupported key algorithm {type(key).__name__}")


def key_type_of(key: PublicKey | PrivateKey) -> KeyType:
    """``key``'s type, one we can make another key of (a throwaway copy, a rotation); POLICY if not."""
    return parse_key_type(key_name(key))


def supported_public_key(key: object) -> PublicKey:
    """``key`` typed as one we use (RSA, P-256/P-384, Ed25519), for what a parser hands back; POLICY if not."""
    if isinstance(key, (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey)):
        key_name(key)  # refuses other curves
        return key
    raise policy(f"unsupported key algorithm {type(key).__name__}")


def supported_private_key(key: object) -> PrivateKey:
    """``key`` typed as one we use (RSA, P-256/P-384, Ed25519), for what a parser hands back; POLICY if not."""
    if isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey)):
        key_name(key)  # refuses other curves
        return key
    raise policy(f"unsupported key algorithm {type(key).__name__}")


def check_subscriber_key(key: object, *, allow_ed25519: bool = False) -> PublicKey:
    """Refuse keys that BR 6.1.5 / 7.1.3.1 and our profiles do not allow."""
    if isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise policy(f"RSA key of {key.key_size} bits is too short: at least 2048 are required (BR 6.1.5)")
        if key.key_size % 8 != 0 or key.key_size > 8192:
            raise policy(f"RSA modulus of {key.key_size} bits is not allowed (BR 6.1.5)")
        if key.public_numbers().e != 65537:
            raise policy("RSA public exponent must be 65537 for issuance here (BR 6.1.6)")
        return key
    if isinstance(key, ec.EllipticCurvePublicKey):
        key_name(key)  # raises for curves other than P-256 / P-384
        return key
    if isinstance(key, ed25519.Ed25519PublicKey):
        if not allow_ed25519:
            raise policy("Ed25519 keys are not allowed for this profile (BR 6.1.5 allows RSA and ECDSA only)")
        return key
    raise policy(f"unsupported public key type {type(key).__name__}: use RSA >= 2048, P-256 or P-384")


@overload
def signature_hash(key: rsa.RSAPublicKey | rsa.RSAPrivateKey | ec.EllipticCurvePublicKey
                   | ec.EllipticCurvePrivateKey) -> hashes.SHA256 | hashes.SHA384: ...
@overload
def signature_hash(key: PublicKey | PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None: ...


def signature_hash(key: PublicKey | PrivateKey) -> hashes.SHA256 | hashes.SHA384 | None:
    """The hash a CA key signs with (BR 7.1.3.2): SHA-384 for P-384, else SHA-256; None for Ed25519."""
    if isinstance(key, (ed25519.Ed25519PublicKey, ed25519.Ed25519PrivateKey)):
        return None
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)) and key.curve.key_size == 384:
        return hashes.SHA384()
    return hashes.SHA256()


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a PEM or DER CSR defensively and check its self-signature."""
    if len(data) > MAX_CSR_BYTES:
        raise malformed(f"CSR is {len(data)} bytes; at most {MAX_CSR_BYTES} are accepted")
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            csr = x509.load_pem_x509_csr(data)
        else:
            csr = x509.load_der_x509_csr(data)
    except (ValueError, TypeError) as exc:
        raise malformed(f"not a PKCS#10 certificate request: {exc}") from None
    try:
        valid = csr.is_signature_valid
    except Exception as exc:  # unsupported algorithms surface here from cryptography
        raise malformed(f"CSR signature cannot be checked: {exc}") from None
    if not valid:
        raise malformed("CSR signature does not verify (proof of possession failed)")
    return csr
