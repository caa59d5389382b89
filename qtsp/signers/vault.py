"""The ``vault-transit:`` backend: keys in HashiCorp Vault / OpenBao Transit, never exportable.

Reference: ``vault-transit:<key name>@<version>``. The signer hashes locally, sends the digest
with ``prehashed=true`` (ASN.1 marshaling for ECDSA, PKCS#1 v1.5 for RSA) pinned to that key
version, and verifies each signature against that version's public key before returning it.

Settings come from the environment (never from the database, never logged):
``QTSP_VAULT_ADDR`` (default http://127.0.0.1:8200), ``QTSP_VAULT_TOKEN``, or AppRole with
``QTSP_VAULT_ROLE_ID`` + ``QTSP_VAULT_SECRET_ID`` (``QTSP_VAULT_APPROLE_MOUNT``, default approle),
``QTSP_VAULT_MOUNT`` (the Transit mount, default transit).
"""

from __future__ import annotations

import base64
import functools
import os
import re
import threading
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from ..core.errors import Kind, QTSPError
from ..core.keys import KEY_TYPES, KeyType, PublicKey, key_name, supported_public_key
from ..core.types import KeyRef
from .base import KeyInfo, Signer, delegating_signer, register_backend

BATCH = 250  # OpenBao refuses JSON bodies with too many strings (500 was refused, 400 accepted)
_REF_RE = re.compile(r"^vault-transit:(?P<name>[a-z0-9][a-z0-9._-]{0,63})@(?P<version>[1-9][0-9]{0,5})$")
_TRANSIT_TYPES = {KeyType.ECDSA_P256: "ecdsa-p256", KeyType.ECDSA_P384: "ecdsa-p384", KeyType.RSA_2048: "rsa-2048",
                  KeyType.RSA_3072: "rsa-3072", KeyType.RSA_4096: "rsa-4096"}  # ours -> Transit's key type names
_HASH_NAMES = {"sha256": "sha2-256", "sha384": "sha2-384", "sha512": "sha2-512"}


def parse_ref(ref: str) -> tuple[str, int]:
    match = _REF_RE.match(ref)
    if not match:
        raise QTSPError(Kind.MALFORMED, f"not a vault-transit key reference: {ref!r}")
    return match["name"], int(match["version"])


def make_ref(name: str, version: int) -> KeyRef:
    return KeyRef(f"vault-transit:{name}@{version}")


class VaultUnavailable(QTSPError):
    def __init__(self, addr: str, what: str) -> None:
        super().__init__(Kind.SIGNER_UNAVAILABLE, f"Vault at {addr} is unavailable ({what}); nothing was signed")


class VaultTransit:
    scheme = "vault-transit"

    def __init__(self, data_dir: Path | None = None, *, mount: str | None = None) -> None:
        self.addr = os.environ.get("QTSP_VAULT_ADDR", "http://127.0.0.1:8200")
        self.mount = mount or os.environ.get("QTSP_VAULT_MOUNT", "transit")
        self._client: Any = None
        self._lock = threading.Lock()
        self._public: dict[tuple[str, int], PublicKey] = {}

    # --- connection -----------------------------------------------------------------------

    def _connect(self) -> Any:
        import hvac

        client = hvac.Client(url=self.addr, timeout=10)
        token = os.environ.get("QTSP_VAULT_TOKEN")
        role_id, secret_id = os.environ.get("QTSP_VAULT_ROLE_ID"), os.environ.get("QTSP_VAULT_SECRET_ID")
        if token:
            client.token = token
        elif role_id and secret_id:
            mount = os.environ.get("QTSP_VAULT_APPROLE_MOUNT", "approle")
            self._call(lambda: client.auth.approle.login(role_id=role_id, secret_id=secret_id, mount_point=mount), "AppRole login")
        else:
            raise QTSPError(Kind.SIGNER_UNAVAILABLE,
                            "no Vault credentials: set QTSP_VAULT_TOKEN, or QTSP_VAULT_ROLE_ID and QTSP_VAULT_SECRET_ID")
        return client

    @property
    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._connect()
            return self._client

    def _call(self, fn: Callable[[], Any], what: str) -> Any:
        """Run a Vault call; translate every failure into one QTSPError without secrets."""
        import hvac.exceptions as hx
        import requests

        try:
            return fn()
        except hx.VaultDown:
            raise VaultUnavailable(self.addr, "sealed") from None
        except (hx.Forbidden, hx.Unauthorized):
            with self._lock:
                self._client = None  # a token may have expired: log in again next time
            raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"Vault refused {what}: permission denied") from None
        except hx.InvalidPath:
            raise QTSPError(Kind.NOT_FOUND, f"Vault has no {what}") from None
        except hx.VaultError as exc:
            raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"Vault error during {what}: {type(exc).__name__}") from None
        except requests.RequestException as exc:
            raise VaultUnavailable(self.addr, type(exc).__name__) from None

    def _sign_data(self, **kwargs: Any) -> Any:
        return self.client.secrets.transit.sign_data(**kwargs)  # the client of the moment (a re-login replaces it)

    def ensure_mount(self) -> None:
        """Enable the Transit engine at the mount if it is not there (needs sys/mounts rights)."""
        mounts = self._call(lambda: self.client.sys.list_mounted_secrets_engines(), "the list of mounts")
        data = mounts.get("data", mounts)
        if f"{self.mount}/" not in data:
            self._call(lambda: self.client.sys.enable_secrets_engine("transit", path=self.mount), "enabling Transit")

    # --- the Backend interface ------------------------------------------------------------

    def generate(self, label: str, key_type: KeyType) -> KeyInfo:
        if key_type not in _TRANSIT_TYPES:
            raise QTSPError(Kind.POLICY, f"Transit cannot hold a {key_type} key; use one of {', '.join(_TRANSIT_TYPES)}")
        if self._find_key(label) is not None:
            raise QTSPError(Kind.CONFLICT, f"Transit key {label} exists already; refusing to reuse it")
        self._call(lambda: self.client.secrets.transit.create_key(
            name=label, key_type=_TRANSIT_TYPES[key_type], exportable=False, allow_plaintext_backup=False,
            mount_point=self.mount), f"creating key {label}")
        ref = make_ref(label, 1)
        return KeyInfo(ref, key_type, self.public_key(ref))

    def rotate(self, ref: KeyRef) -> KeyInfo:
        """A new version of the same Transit key; the old version keeps signing when asked by name."""
        name, _ = parse_ref(ref)
        self._call(lambda: self.client.secrets.transit.rotate_key(name=name, mount_point=self.mount), f"rotating {name}")
        data = self._read_key(name)
        new = make_ref(name, int(data["latest_version"]))
        public = self.public_key(new)
        return KeyInfo(new, key_name(public), public)

    def _read_key(self, name: str) -> dict[str, Any]:
        data: dict[str, Any] = self._call(lambda: self.client.secrets.transit.read_key(name=name, mount_point=self.mount),
                                          f"Transit key {name}")["data"]
        return data

    def _find_key(self, name: str) -> dict[str, Any] | None:
        """The key's description, or None if Transit has no key of that name."""
        try:
            return self._read_key(name)
        except QTSPError as exc:
            if exc.kind is Kind.NOT_FOUND:
                return None
            raise

    def exists(self, ref: KeyRef) -> bool:
        """Whether Transit holds the key ``ref`` names (any version: a name is taken once)."""
        name, _ = parse_ref(ref)
        return self._find_key(name) is not None

    def public_key(self, ref: KeyRef) -> PublicKey:
        name, version = parse_ref(ref)
        if (name, version) not in self._public:
            data = self._read_key(name)
            if data.get("exportable"):
                raise QTSPError(Kind.POLICY, f"Transit key {name} is exportable; CA keys must not be")
            entry = data["keys"].get(str(version))
            if not entry or "public_key" not in entry:
                raise QTSPError(Kind.NOT_FOUND, f"Transit key {name} has no version {version}")
            # refuses what we do not support
            self._public[(name, version)] = supported_public_key(serialization.load_pem_public_key(entry["public_key"].encode()))
        return self._public[(name, version)]

    def signer(self, ref: KeyRef) -> Signer:
        name, version = parse_ref(ref)
        public = self.public_key(ref)

        def sign(data: bytes, algorithm: Any) -> bytes:
            return self.sign_many(ref, [data], algorithm)[0]

        return delegating_signer(ref, public, sign, lambda datas, algorithm: self.sign_many(ref, datas, algorithm))

    def sign_many(self, ref: KeyRef, datas: Sequence[bytes], algorithm: Any) -> list[bytes]:
        """Sign several messages, ``BATCH`` per Transit call (batch_input)."""
        name, version = parse_ref(ref)
        public = self.public_key(ref)
        hash_alg, extra = self._params(public, algorithm)
        digests = []
        for data in datas:
            h = hashes.Hash(hash_alg)
            h.update(data)
            digests.append(base64.b64encode(h.finalize()).decode())
        signatures: list[bytes] = []
        for start in range(0, len(digests), BATCH):
            chunk = digests[start : start + BATCH]
            kwargs = dict(name=name, key_version=version, prehashed=True, hash_algorithm=_HASH_NAMES[hash_alg.name],
                          mount_point=self.mount, **extra)
            if len(chunk) == 1:
                result = self._call(functools.partial(self._sign_data, hash_input=chunk[0], **kwargs), f"signing with {name}")
                items = [result["data"]]
            else:
                result = self._call(functools.partial(self._sign_data, batch_input=[{"input": d} for d in chunk], **kwargs),
                                    f"signing with {name}")
                items = result["data"]["batch_results"]
            for item in items:
                if "error" in item and item["error"]:
                    raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"Vault could not sign with {name}: {item['error']}")
                prefix, used_version, sig = item["signature"].split(":", 2)
                if used_version != f"v{version}":
                    raise QTSPError(Kind.INTEGRITY, f"Vault signed with {used_version}, not v{version}")
                signatures.append(base64.b64decode(sig))
        for data, signature in zip(datas, signatures, strict=True):
            self._verify(public, signature, data, hash_alg, algorithm)
        return signatures

    @staticmethod
    def _params(public: PublicKey, algorithm: Any) -> tuple[hashes.HashAlgorithm, dict[str, str]]:
        if isinstance(public, ec.EllipticCurvePublicKey):
            return algorithm.algorithm, {"marshaling_algorithm": "asn1"}
        if isinstance(public, rsa.RSAPublicKey):
            pad, hash_alg = algorithm
            if not isinstance(pad, padding.PKCS1v15):
                raise QTSPError(Kind.POLICY, "Transit RSA signing here uses PKCS#1 v1.5 only")
            return hash_alg, {"signature_algorithm": "pkcs1v15"}
        raise QTSPError(Kind.POLICY, "Ed25519 is not used for CA keys")

    @staticmethod
    def _verify(public: PublicKey, signature: bytes, data: bytes, hash_alg: hashes.HashAlgorithm, algorithm: Any) -> None:
        try:
            if isinstance(public, ec.EllipticCurvePublicKey):
                public.verify(signature, data, ec.ECDSA(hash_alg))
            elif isinstance(public, rsa.RSAPublicKey):
                public.verify(signature, data, padding.PKCS1v15(), hash_alg)
            else:
                raise QTSPError(Kind.POLICY, "Ed25519 is not used for CA keys")
        except InvalidSignature:
            raise QTSPError(Kind.INTEGRITY, "a Vault signature does not verify against the key version's public key") from None

    def close(self) -> None:
        self._client = None

    def forget_connection(self) -> None:
        """``Connected``: drop the client in a forked process, which must open its own (an HTTP connection
        pool shared across fork mixes the processes' requests and responses on one socket)."""
        self._lock = threading.Lock()  # the parent's may have been held by another thread at the fork
        self._client = None


register_backend("vault-transit", VaultTransit)
assert set(_TRANSIT_TYPES) <= set(KEY_TYPES)
