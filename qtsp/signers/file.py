"""The ``file:`` backend: encrypted PKCS#8 under ``<data dir>/keys``, mode 0600.

The passphrase comes from ``QTSP_KEY_PASSPHRASE`` or is generated once into
``<data dir>/secrets/key-passphrase`` (0600). Keys are decrypted into the Signer only;
``private_bytes`` on the Signer is refused, so nothing upstream can leak them. The one way out is
``wrap``, the backup format every backend shares (AES key wrap with padding, RFC 5649, of the
PKCS#8 under a caller's secret), which key ceremonies split among custodians.
"""

from __future__ import annotations

import os
import re
import secrets
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.keywrap import InvalidUnwrap, aes_key_unwrap_with_padding, aes_key_wrap_with_padding

from .. import files
from ..core.errors import Kind, QTSPError
from ..core.keys import (KeyType, PrivateKey, PublicKey, generate_private_key, key_name, key_type_of,
                         supported_private_key)
from ..core.types import KeyRef
from .base import KeyInfo, Signer, delegating_signer, register_backend

PASSPHRASE_ENV = "QTSP_KEY_PASSPHRASE"
_LABEL_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def write_private(path: Path, data: bytes) -> None:
    """Create ``path`` with mode 0600 from the first byte on; never overwrite, never through a symlink."""
    files.write_new(path, data, private=True, sync=True)


class FileBackend:
    scheme = "file"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.key_dir = data_dir / "keys"
        self._cache: dict[KeyRef, Signer] = {}

    def _passphrase(self, *, create: bool) -> bytes:
        env = os.environ.get(PASSPHRASE_ENV)
        if env:
            return env.encode()
        path = self.data_dir / "secrets" / "key-passphrase"
        if path.exists():
            return path.read_bytes().strip()
        if not create:
            raise QTSPError(
                Kind.SIGNER_UNAVAILABLE,
                f"no key passphrase: set {PASSPHRASE_ENV} or restore {path}",
            )
        files.ensure_dir(path.parent, private=True)
        value = secrets.token_urlsafe(32).encode()
        write_private(path, value)
        return value

    def _path(self, ref: KeyRef) -> Path:
        scheme, _, label = ref.partition(":")
        if scheme != self.scheme or not _LABEL_RE.fullmatch(label):
            raise QTSPError(Kind.MALFORMED, f"not a file key reference: {ref!r}")
        return self.key_dir / f"{label}.p8"

    def generate(self, label: str, key_type: KeyType) -> KeyInfo:
        if not _LABEL_RE.fullmatch(label):
            raise QTSPError(Kind.MALFORMED, f"bad key label {label!r}")
        ref = KeyRef(f"file:{label}")
        path = self._path(ref)
        if path.exists():
            raise QTSPError(Kind.CONFLICT, f"key {ref} exists already; refusing to overwrite {path}")
        key = generate_private_key(key_type)
        self._write(path, key)
        return KeyInfo(ref, key_type, key.public_key())

    def _write(self, path: Path, key: PrivateKey) -> None:
        passphrase = self._passphrase(create=True)
        files.ensure_dir(self.key_dir, private=True)
        data = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(passphrase),
        )
        write_private(path, data)

    def exists(self, ref: KeyRef) -> bool:
        return self._path(ref).exists()

    def rotate(self, ref: KeyRef) -> KeyInfo:
        """A new key under the next label (``qwac-ca-1`` -> ``qwac-ca-2``); the old file stays."""
        label = self._path(ref).stem
        base, _, number = label.rpartition("-")
        if not number.isdigit() or not base:
            base, number = label, "1"
        key_type = key_type_of(self.public_key(ref))
        n = int(number) + 1
        while (self.key_dir / f"{base}-{n}.p8").exists():
            n += 1
        return self.generate(f"{base}-{n}", key_type)

    def _load(self, ref: KeyRef) -> PrivateKey:
        path = self._path(ref)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"key file for {ref} is missing ({path})") from None
        try:
            key = serialization.load_pem_private_key(data, self._passphrase(create=False))
        except (ValueError, TypeError):
            raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"cannot decrypt {ref}: wrong passphrase or damaged file") from None
        return supported_private_key(key)  # refuses unsupported algorithms

    def public_key(self, ref: KeyRef) -> PublicKey:
        return self.signer(ref).public_key()

    def signer(self, ref: KeyRef) -> Signer:
        if ref not in self._cache:
            key = self._load(ref)

            def sign(data: bytes, algorithm: Any, _key: Any = key) -> bytes:
                if isinstance(algorithm, tuple):  # RSA: (padding, hash)
                    return _key.sign(data, *algorithm)
                if algorithm is None:  # Ed25519
                    return _key.sign(data)
                return _key.sign(data, algorithm)

            self._cache[ref] = delegating_signer(ref, key.public_key(), sign)
        return self._cache[ref]

    def close(self) -> None:
        self._cache.clear()

    # --- KeyBackup (the optional extra): the key files are the keys, so they wrap in process ------------

    def wrap(self, ref: KeyRef, secret: bytes) -> bytes:
        der = self._load(ref).private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption())
        return aes_key_wrap_with_padding(secret, der)

    def unwrap(self, label: str, wrapped: bytes, secret: bytes, public: PublicKey, *,
               extractable_for_backup: bool = False) -> KeyInfo:
        """Restore a wrapped key as ``file:<label>``; never over an existing file. (A file key can
        always be backed up again: ``extractable_for_backup`` means nothing here.)"""
        try:
            key = serialization.load_der_private_key(aes_key_unwrap_with_padding(secret, wrapped), None)
        except (InvalidUnwrap, ValueError):
            raise QTSPError(Kind.INTEGRITY, "the backup does not unwrap: wrong secret or damaged backup") from None
        ref = KeyRef(f"file:{label}")
        path = self._path(ref)
        if path.exists():
            raise QTSPError(Kind.CONFLICT, f"{path} exists; refusing to overwrite it")
        key = supported_private_key(key)
        self._write(path, key)
        return KeyInfo(ref, key_name(key), self.public_key(ref))


register_backend("file", FileBackend)
