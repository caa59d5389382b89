"""The key backends a ceremony file names, built from its ``backend`` map.

The Signers are qtsp's own (``qtsp.signers``): what a ceremony makes, the service uses. Backups
are one format for every backend that has the ``KeyBackup`` extra: AES key wrap with padding
(RFC 5649) of the PKCS#8 key, under a random 256-bit secret. PKCS#11 wraps on the token (the key
is never in clear outside it); the file backend, whose keys are files anyway, wraps in process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from collections.abc import Callable

from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import PublicKey
from qtsp.core.types import KeyRef
from qtsp.signers import Backend, KeyAttributes, KeyBackup, KeyInfo
from qtsp.signers.file import FileBackend
from qtsp.signers.pkcs11 import Pkcs11Backend, make_ref
from qtsp.signers.vault import VaultTransit, make_ref as vault_ref

AskSecret = Callable[[str], str | None]  # prompt for a PIN when its environment variable is unset


def _env_secret(name: str, what: str, ask: AskSecret | None) -> str:
    value = os.environ.get(name)
    if not value and ask is not None:
        value = ask(f"{what} (${name} is not set)")
    if not value:
        raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"{what}: set ${name}")
    return value


def open_backend(spec: dict[str, Any], ask: AskSecret | None = None, *, so: bool = False) -> Backend:
    """A backend for the ceremony's ``backend`` map; PINs from the environment (or asked for)."""
    kind = spec["type"]
    if kind == "pkcs11":
        token = spec["token"]
        pins = {token: _env_secret(spec["pin-env"], f"user PIN of token {token}", ask)}
        so_pins = {}
        if so:
            if not spec.get("so-pin-env"):
                raise QTSPError(Kind.MALFORMED, "key.backend.so-pin-env: a PKCS#11 backup needs the security officer's PIN")
            so_pins = {token: _env_secret(spec["so-pin-env"], f"SO PIN of token {token}", ask)}
        return Pkcs11Backend(spec.get("module"), token=token, pins=pins, so_pins=so_pins)
    if kind == "vault-transit":
        return VaultTransit(mount=spec["mount"])
    if kind == "file":
        return FileBackend(Path(spec["dir"]))
    raise AssertionError(kind)


def key_ref(spec: dict[str, Any]) -> KeyRef:
    """The reference of ``label`` in the backend ``spec`` names."""
    backend, label = spec["backend"], spec["label"]
    if backend["type"] == "pkcs11":
        return make_ref(backend["token"], label)
    if backend["type"] == "vault-transit":
        name, _, version = label.partition("@")
        return vault_ref(name, int(version or 1))
    if "@" in label:
        raise QTSPError(Kind.MALFORMED, "key.label: @version applies to vault-transit keys only")
    return KeyRef(f"file:{label}")


def describe(spec: dict[str, Any]) -> str:
    backend = spec["type"]
    if backend == "pkcs11":
        return f"PKCS#11 token {spec['token']!r}"
    if backend == "vault-transit":
        return f"Vault Transit (mount {spec['mount']})"
    return f"file keys in {spec['dir']}"


def generate(backend: Backend, spec: dict[str, Any]) -> KeyInfo:
    if isinstance(backend, Pkcs11Backend):
        return backend.generate(spec["label"], spec["type"], extractable_for_backup=spec["backup"])
    if spec["backup"]:
        raise QTSPError(Kind.MALFORMED, "key.backup: only PKCS#11 keys need it (file keys can always be backed up; "
                                        "Transit keys never leave Vault)")
    return backend.generate(spec["label"], spec["type"])


def check_label_free(spec: dict[str, Any], ask: AskSecret | None) -> None:
    """Refuse, before anything is generated, a new key whose label is taken in its backend."""
    ref = key_ref(spec)
    if open_backend(spec["backend"], ask).exists(ref):
        raise QTSPError(Kind.CONFLICT, f"{ref} exists already; refusing to reuse it")


def attributes(backend: Backend, ref: KeyRef) -> dict[str, bool] | None:
    return backend.attributes(ref) if isinstance(backend, KeyAttributes) else None


def wrap(backend: Backend, ref: KeyRef, secret: bytes) -> bytes:
    if isinstance(backend, KeyBackup):
        return backend.wrap(ref, secret)
    raise QTSPError(Kind.POLICY, "Vault Transit keys are not exportable; back them up with Vault's own tools")


def unwrap(backend: Backend, label: str, wrapped: bytes, secret: bytes, public: PublicKey,
           extractable_for_backup: bool) -> KeyInfo:
    if isinstance(backend, KeyBackup):
        return backend.unwrap(label, wrapped, secret, public, extractable_for_backup=extractable_for_backup)
    raise QTSPError(Kind.POLICY, "a backup is restored into a PKCS#11 token or the file backend")
