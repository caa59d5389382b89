"""The Signer interface and the backend registry (after smallstep's ``kms.New``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable
from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from ..core.errors import Kind, QTSPError
from ..core.keys import KeyType, PublicKey
from ..core.types import KeyRef


SignFn = Callable[[bytes, Any], bytes]  # (data, algorithm): algorithm as ``sign`` got it; RSA: (padding, hash)
SignManyFn = Callable[[Sequence[bytes], Any], list[bytes]]
Data = bytes | bytearray | memoryview  # what cryptography's builders may hand ``sign``


class _Custodian:
    """What the three Signer classes share: ``sign`` goes to the custodian, export is refused."""

    def __init__(self, key_ref: KeyRef, sign: SignFn, sign_many: SignManyFn | None) -> None:
        self.key_ref = key_ref
        self._sign = sign
        self._sign_many = sign_many

    def sign_many(self, datas: Sequence[bytes], algorithm: Any) -> list[bytes]:
        """Sign several messages; in one call where the custodian has a batch API (Vault Transit)."""
        if self._sign_many is not None:
            return self._sign_many(datas, algorithm)
        return [self._sign(data, algorithm) for data in datas]

    def private_numbers(self) -> Any:
        raise QTSPError(Kind.POLICY, f"key {self.key_ref} is held by its custodian and cannot be exported")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise QTSPError(Kind.POLICY, f"key {self.key_ref} is held by its custodian and cannot be exported")

    def __repr__(self) -> str:  # never shows key material
        return f"<{type(self).__name__} {self.key_ref}>"

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: Any) -> Any:
        return self


class ECSigner(_Custodian, ec.EllipticCurvePrivateKey):
    def __init__(self, key_ref: KeyRef, public_key: ec.EllipticCurvePublicKey, sign: SignFn,
                 sign_many: SignManyFn | None = None) -> None:
        super().__init__(key_ref, sign, sign_many)
        self._public_key = public_key

    def sign(self, data: Data, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        return self._sign(bytes(data), signature_algorithm)

    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._public_key

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._public_key.curve

    @property
    def key_size(self) -> int:
        return self._public_key.curve.key_size

    def exchange(self, algorithm: Any, peer_public_key: Any) -> bytes:
        raise QTSPError(Kind.POLICY, "CA keys sign only")


class RSASigner(_Custodian, rsa.RSAPrivateKey):
    def __init__(self, key_ref: KeyRef, public_key: rsa.RSAPublicKey, sign: SignFn,
                 sign_many: SignManyFn | None = None) -> None:
        super().__init__(key_ref, sign, sign_many)
        self._public_key = public_key

    def sign(self, data: Data, padding: padding.AsymmetricPadding, algorithm: Any) -> bytes:
        # algorithm: a HashAlgorithm or Prehashed (NoDigestInfo, in newer cryptography, the custodians refuse)
        return self._sign(bytes(data), (padding, algorithm))

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        raise QTSPError(Kind.POLICY, "CA keys sign only")


class Ed25519Signer(_Custodian, ed25519.Ed25519PrivateKey):
    def __init__(self, key_ref: KeyRef, public_key: ed25519.Ed25519PublicKey, sign: SignFn,
                 sign_many: SignManyFn | None = None) -> None:
        super().__init__(key_ref, sign, sign_many)
        self._public_key = public_key

    def sign(self, data: Data) -> bytes:
        return self._sign(bytes(data), None)

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public_key

    def private_bytes_raw(self) -> bytes:
        raise QTSPError(Kind.POLICY, f"key {self.key_ref} is held by its custodian and cannot be exported")


# A custodian-held key: an instance of cryptography's private-key class for its algorithm, so that
# CertificateBuilder, CertificateRevocationListBuilder and OCSPResponseBuilder sign with it unchanged.
Signer = ECSigner | RSASigner | Ed25519Signer


def delegating_signer(key_ref: KeyRef, public_key: PublicKey, sign: SignFn,
                      sign_many: SignManyFn | None = None) -> Signer:
    """A Signer of the right cryptography class whose ``sign`` calls ``sign(data, algorithm)``, and whose
    ``sign_many`` calls ``sign_many(datas, algorithm)`` if given (one ``sign`` each otherwise)."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return ECSigner(key_ref, public_key, sign, sign_many)
    if isinstance(public_key, rsa.RSAPublicKey):
        return RSASigner(key_ref, public_key, sign, sign_many)
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return Ed25519Signer(key_ref, public_key, sign, sign_many)
    raise QTSPError(Kind.POLICY, f"unsupported key algorithm for {key_ref}")


@dataclass(frozen=True)
class KeyInfo:
    ref: KeyRef
    key_type: str  # a KeyType's name; rsa-<bits> for an RSA size we do not make (a restored or imported key)
    public_key: PublicKey


class Backend(Protocol):
    """Four methods, as smallstep's KeyManager: create, look up, sign through, close."""

    scheme: str

    def generate(self, label: str, key_type: KeyType) -> KeyInfo: ...

    def rotate(self, ref: KeyRef) -> KeyInfo: ...

    def public_key(self, ref: KeyRef) -> PublicKey: ...

    def exists(self, ref: KeyRef) -> bool: ...

    def signer(self, ref: KeyRef) -> Signer: ...

    def close(self) -> None: ...


# --- optional extras (smallstep's separate KeyManager interfaces): a backend has them or it does not ---


@runtime_checkable
class KeyBackup(Protocol):
    """Backup and restore of a private key, AES key wrap with padding (RFC 5649) of its PKCS#8 under a
    caller's secret: the same format for every backend that has it, so either restores the other's."""

    def wrap(self, ref: KeyRef, secret: bytes) -> bytes: ...

    def unwrap(self, label: str, wrapped: bytes, secret: bytes, public: PublicKey, *,
               extractable_for_backup: bool = False) -> KeyInfo: ...


@runtime_checkable
class KeyAttributes(Protocol):
    """The protection attributes the custodian keeps on a private key (PKCS#11 CKA_*), for transcripts."""

    def attributes(self, ref: KeyRef) -> dict[str, bool]: ...


@runtime_checkable
class Connected(Protocol):
    """A backend holding network connections: a forked process must drop them before its first call
    (an HTTP connection pool shared across fork mixes the processes' requests and responses)."""

    def forget_connection(self) -> None: ...


BackendFactory = Callable[[Path], Backend]
_REGISTRY: dict[str, BackendFactory] = {}


def register_backend(scheme: str, factory: BackendFactory) -> None:
    _REGISTRY[scheme] = factory


def backend_for(scheme_or_ref: str, data_dir: Path) -> Backend:
    scheme = scheme_or_ref.split(":", 1)[0]
    if scheme not in _REGISTRY:
        raise QTSPError(
            Kind.SIGNER_UNAVAILABLE,
            f"no key backend for scheme {scheme!r} (available: {', '.join(sorted(_REGISTRY))})",
        )
    return _REGISTRY[scheme](data_dir)


def signer_for(ref: KeyRef, data_dir: Path) -> Signer:
    return backend_for(ref, data_dir).signer(ref)
