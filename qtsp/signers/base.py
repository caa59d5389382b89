"""The Signer interface and the backend registry (after smallstep's ``kms.New``)."""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from ..core.errors import Kind, QTSPError
from ..core.keys import PublicKey
from ..core.types import KeyRef


class Signer(abc.ABC):
    """Mixin for custodian-held keys: ``sign`` goes to the custodian, export is refused."""

    key_ref: KeyRef

    def sign_many(self, datas: list[bytes], algorithm: Any) -> list[bytes]:
        """Sign several messages; backends with a batch API (Vault Transit) override this."""
        return [self._custodian_sign(data, algorithm) for data in datas]

    @abc.abstractmethod
    def _custodian_sign(self, data: bytes, algorithm: Any) -> bytes: ...

    def private_numbers(self) -> Any:
        raise QTSPError(Kind.POLICY, f"key {self.key_ref} is held by its custodian and cannot be exported")

    def private_bytes(self, *args: Any, **kwargs: Any) -> bytes:
        raise QTSPError(Kind.POLICY, f"key {self.key_ref} is held by its custodian and cannot be exported")

    def __repr__(self) -> str:  # never shows key material
        return f"<{type(self).__name__} {self.key_ref}>"


class ECSigner(Signer, ec.EllipticCurvePrivateKey):
    def __init__(self, key_ref: KeyRef, public_key: ec.EllipticCurvePublicKey) -> None:
        self.key_ref = key_ref
        self._public_key = public_key

    def sign(self, data: bytes, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        return self._custodian_sign(data, signature_algorithm)

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

    def __copy__(self) -> ECSigner:
        return self

    def __deepcopy__(self, memo: Any) -> ECSigner:
        return self


class RSASigner(Signer, rsa.RSAPrivateKey):
    def __init__(self, key_ref: KeyRef, public_key: rsa.RSAPublicKey) -> None:
        self.key_ref = key_ref
        self._public_key = public_key

    def sign(self, data: bytes, padding: padding.AsymmetricPadding, algorithm: hashes.HashAlgorithm | Prehashed) -> bytes:
        return self._custodian_sign(data, (padding, algorithm))

    def public_key(self) -> rsa.RSAPublicKey:
        return self._public_key

    @property
    def key_size(self) -> int:
        return self._public_key.key_size

    def decrypt(self, ciphertext: bytes, padding: Any) -> bytes:
        raise QTSPError(Kind.POLICY, "CA keys sign only")

    def __copy__(self) -> RSASigner:
        return self

    def __deepcopy__(self, memo: Any) -> RSASigner:
        return self


class Ed25519Signer(Signer, ed25519.Ed25519PrivateKey):
    def __init__(self, key_ref: KeyRef, public_key: ed25519.Ed25519PublicKey) -> None:
        self.key_ref = key_ref
        self._public_key = public_key

    def sign(self, data: bytes) -> bytes:
        return self._custodian_sign(data, None)

    def public_key(self) -> ed25519.Ed25519PublicKey:
        return self._public_key

    def private_bytes_raw(self) -> bytes:
        raise QTSPError(Kind.POLICY, f"key {self.key_ref} is held by its custodian and cannot be exported")

    def __copy__(self) -> Ed25519Signer:
        return self

    def __deepcopy__(self, memo: Any) -> Ed25519Signer:
        return self


def delegating_signer(key_ref: KeyRef, public_key: PublicKey, sign: Callable[[bytes, Any], bytes]) -> Signer:
    """A Signer of the right cryptography class whose ``sign`` calls ``sign(data, algorithm)``."""
    base: type[Signer]
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        base = ECSigner
    elif isinstance(public_key, rsa.RSAPublicKey):
        base = RSASigner
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        base = Ed25519Signer
    else:
        raise QTSPError(Kind.POLICY, f"unsupported key algorithm for {key_ref}")

    class _Bound(base):  # type: ignore[valid-type,misc]
        def _custodian_sign(self, data: bytes, algorithm: Any) -> bytes:
            return sign(data, algorithm)

    _Bound.__name__ = base.__name__
    return _Bound(key_ref, public_key)  # type: ignore[call-arg]


@dataclass(frozen=True)
class KeyInfo:
    ref: KeyRef
    key_type: str
    public_key: PublicKey


class Backend(Protocol):
    """Four methods, as smallstep's KeyManager: create, look up, sign through, close."""

    scheme: str

    def generate(self, label: str, key_type: str) -> KeyInfo: ...

    def rotate(self, ref: KeyRef) -> KeyInfo: ...

    def public_key(self, ref: KeyRef) -> PublicKey: ...

    def signer(self, ref: KeyRef) -> Signer: ...

    def close(self) -> None: ...


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