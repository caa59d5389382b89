"""The ``pkcs11:`` backend: keys on an HSM through python-pkcs11 (SoftHSM2 is the token in tests).

Reference: ``pkcs11:token=<token label>;object=<key label>`` (the path attributes of RFC 7512;
labels are restricted to ``[A-Za-z0-9._-]`` so nothing needs percent-encoding).

Keys are generated on the token with CKA_SENSITIVE true. CKA_EXTRACTABLE is false, except for
keys generated for a backup: those are extractable *under wrap only*, and only by a key the
security officer marked CKA_TRUSTED (CKA_WRAP_WITH_TRUSTED true), so the private key never
leaves the token in clear. Backups use AES key wrap with padding (RFC 5649) of the PKCS#8
encoding, the same format the file backend's backups use, so either can restore the other's.

Settings come from the environment when the backend is built from a key reference (the
service): ``QTSP_PKCS11_MODULE`` (default: the SoftHSM2 module where Debian installs it),
``QTSP_PKCS11_PIN_<TOKEN>`` (the token label upper-cased, other characters as ``_``) or
``QTSP_PKCS11_PIN``, and ``QTSP_PKCS11_TOKEN`` for ``generate``. Ceremonies pass them explicitly.
PINs are never logged, stored or shown.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from ..core.errors import Kind, QTSPError
from ..core.keys import KeyType, PublicKey, key_name
from ..core.types import KeyRef
from .base import KeyInfo, Signer, delegating_signer, register_backend

MODULE_ENV, PIN_ENV, TOKEN_ENV = "QTSP_PKCS11_MODULE", "QTSP_PKCS11_PIN", "QTSP_PKCS11_TOKEN"
DEFAULT_MODULES = ("/usr/lib/softhsm/libsofthsm2.so", "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so", "/usr/local/lib/softhsm/libsofthsm2.so")
_LABEL = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_REF_RE = re.compile(rf"^pkcs11:token=(?P<token>{_LABEL});object=(?P<object>{_LABEL})$")
_CURVES = {KeyType.ECDSA_P256: ("secp256r1", 32), KeyType.ECDSA_P384: ("secp384r1", 48)}
_RSA_SIZES = {KeyType.RSA_2048: 2048, KeyType.RSA_3072: 3072, KeyType.RSA_4096: 4096}
# (Inside the methods, ``KeyType`` is python-pkcs11's CKK_* enumeration: these tables name ours.)
# DigestInfo prefixes (RFC 8017 9.2 note 1): CKM_RSA_PKCS signs DigestInfo || digest.
_DIGEST_INFO = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}
_lock = threading.RLock()  # one token operation at a time: logins are per application, not per session
_loaded: dict[str, tuple[Any, str | None]] = {}


def parse_ref(ref: str) -> tuple[str, str]:
    match = _REF_RE.match(ref)
    if not match:
        raise QTSPError(Kind.MALFORMED, f"not a pkcs11 key reference: {ref!r} (pkcs11:token=T;object=L)")
    return match["token"], match["object"]


def make_ref(token: str, label: str) -> KeyRef:
    ref = KeyRef(f"pkcs11:token={token};object={label}")
    parse_ref(ref)
    return ref


def default_module() -> str:
    configured = os.environ.get(MODULE_ENV)
    if configured:
        return configured
    for candidate in DEFAULT_MODULES:
        if Path(candidate).exists():
            return candidate
    raise QTSPError(Kind.SIGNER_UNAVAILABLE,
                    f"no PKCS#11 module: set {MODULE_ENV} (SoftHSM2: apt-get install softhsm2)")


def pin_env_name(token: str) -> str:
    return f"{PIN_ENV}_" + re.sub(r"[^A-Z0-9]", "_", token.upper())


def _library(module: str) -> Any:
    """The loaded module, re-initialised when SOFTHSM2_CONF changed since it was initialised."""
    import pkcs11

    conf = os.environ.get("SOFTHSM2_CONF")
    try:
        lib, seen = _loaded.get(module) or (pkcs11.lib(module), conf)
    except Exception as exc:
        raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"cannot load PKCS#11 module {module}: {type(exc).__name__}") from None
    if seen != conf:
        lib.reinitialize()
    _loaded[module] = (lib, conf)
    return lib


def _private_template_mapper() -> Any:
    """python-pkcs11 builds unwrap templates with every capability (CKA_ENCRYPT, CKA_VERIFY ...),
    which tokens refuse on a private key; for private keys use the private-key template."""
    from pkcs11 import Attribute, ObjectClass
    from pkcs11.attributes import AttributeMapper

    class _Mapper(AttributeMapper):
        def generic_key_template(self, base_template: dict[Any, Any], *, capabilities: Any, id_: Any, label: Any,
                                 store: bool) -> dict[Any, Any]:
            if base_template.get(Attribute.CLASS) == ObjectClass.PRIVATE_KEY:
                template = self.private_key_template(capabilities=capabilities, id_=id_, label=label, store=store)
                template.update(base_template)
                return template
            return super().generic_key_template(base_template, capabilities=capabilities, id_=id_, label=label, store=store)

    return _Mapper()


class Pkcs11Backend:
    scheme = "pkcs11"

    def __init__(self, module: str | None = None, *, token: str | None = None, pins: Mapping[str, str] | None = None,
                 so_pins: Mapping[str, str] | None = None) -> None:
        self.module = module or default_module()
        self.token = token or os.environ.get(TOKEN_ENV)
        self._pins = dict(pins or {})
        self._so_pins = dict(so_pins or {})
        self._public: dict[KeyRef, PublicKey] = {}

    # --- sessions ---------------------------------------------------------------------------

    def _pin(self, token: str) -> str:
        pin = self._pins.get(token) or os.environ.get(pin_env_name(token)) or os.environ.get(PIN_ENV)
        if not pin:
            raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"no PIN for token {token}: set {pin_env_name(token)} or {PIN_ENV}")
        return pin

    @contextmanager
    def _session(self, token_label: str, *, so: bool = False) -> Iterator[Any]:
        import pkcs11
        from pkcs11 import exceptions as px

        with _lock:
            lib = _library(self.module)
            try:
                token = lib.get_token(token_label=token_label)
            except px.NoSuchToken:
                lib.reinitialize()  # tokens initialised after the module was loaded appear only then
                try:
                    token = lib.get_token(token_label=token_label)
                except px.NoSuchToken:
                    raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"no PKCS#11 token labelled {token_label!r}") from None
            if so:
                if token_label not in self._so_pins:
                    raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"the security officer PIN of token {token_label} is needed")
                credentials = {"so_pin": self._so_pins[token_label]}
            else:
                credentials = {"user_pin": self._pin(token_label)}
            try:
                session = token.open(rw=True, attribute_mapper=_private_template_mapper(), **credentials)
            except px.PinIncorrect:
                raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"token {token_label} refused the PIN") from None
            except pkcs11.PKCS11Error as exc:
                raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"cannot open token {token_label}: {type(exc).__name__}") from None
            try:
                yield session
            except pkcs11.PKCS11Error as exc:
                raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"token {token_label} failed: {type(exc).__name__}") from None
            finally:
                session.close()

    @staticmethod
    def _find(session: Any, object_class: Any, label: str, *, missing_ok: bool = False) -> Any:
        from pkcs11 import Attribute

        found = list(session.get_objects({Attribute.CLASS: object_class, Attribute.LABEL: label}))
        if len(found) > 1:
            raise QTSPError(Kind.INTEGRITY, f"several {object_class.name} objects are labelled {label!r}")
        if not found:
            if missing_ok:
                return None
            raise QTSPError(Kind.NOT_FOUND, f"no {object_class.name} labelled {label!r} on the token")
        return found[0]

    # --- the Backend interface ----------------------------------------------------------------

    def generate(self, label: str, key_type: KeyType, *, extractable_for_backup: bool = False) -> KeyInfo:
        """A key pair made on the token. ``extractable_for_backup``: wrappable by a trusted key only."""
        from pkcs11 import Attribute, KeyType, MechanismFlag, ObjectClass
        from pkcs11.util.ec import encode_named_curve_parameters

        if not self.token:
            raise QTSPError(Kind.MALFORMED, f"which token? set {TOKEN_ENV} or name it in the ceremony file")
        ref = make_ref(self.token, label)
        private = {Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: extractable_for_backup,
                   Attribute.WRAP_WITH_TRUSTED: True, Attribute.PRIVATE: True}
        capabilities = MechanismFlag.SIGN | MechanismFlag.VERIFY
        key_id = secrets.token_bytes(16)
        with self._session(self.token) as session:
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                if self._find(session, cls, label, missing_ok=True) is not None:
                    raise QTSPError(Kind.CONFLICT, f"token {self.token} holds a key labelled {label!r}; refusing to reuse it")
            if key_type in _CURVES:
                params = session.create_domain_parameters(
                    KeyType.EC, {Attribute.EC_PARAMS: encode_named_curve_parameters(_CURVES[key_type][0])}, local=True)
                params.generate_keypair(store=True, label=label, id=key_id, capabilities=capabilities,
                                        private_template=private)
            elif key_type in _RSA_SIZES:
                session.generate_keypair(KeyType.RSA, _RSA_SIZES[key_type], store=True, label=label, id=key_id,
                                         capabilities=capabilities, private_template=private,
                                         public_template={Attribute.PUBLIC_EXPONENT: b"\x01\x00\x01"})
            else:
                raise QTSPError(Kind.POLICY, f"a PKCS#11 CA key is ecdsa-p256, ecdsa-p384 or rsa-2048/3072/4096, not {key_type!r}")
        return KeyInfo(ref, key_type, self.public_key(ref))

    def exists(self, ref: KeyRef) -> bool:
        from pkcs11 import ObjectClass

        token, label = parse_ref(ref)
        with self._session(token) as session:
            return any(self._find(session, cls, label, missing_ok=True) is not None
                       for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY))

    def rotate(self, ref: KeyRef) -> KeyInfo:
        raise QTSPError(Kind.POLICY, "PKCS#11 keys are rolled over in a key ceremony (root-rollover), not by the scheduler")

    def public_key(self, ref: KeyRef) -> PublicKey:
        from pkcs11 import Attribute, KeyType, ObjectClass
        from pkcs11.util.ec import encode_ec_public_key

        if ref not in self._public:
            token, label = parse_ref(ref)
            with self._session(token) as session:
                pub = self._find(session, ObjectClass.PUBLIC_KEY, label)
                if pub[Attribute.KEY_TYPE] == KeyType.EC:
                    key: Any = serialization.load_der_public_key(encode_ec_public_key(pub))
                else:
                    key = rsa.RSAPublicNumbers(int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big"),
                                               int.from_bytes(pub[Attribute.MODULUS], "big")).public_key()
            key_name(key)  # refuses curves we do not support
            self._public[ref] = key
        return self._public[ref]

    def attributes(self, ref: KeyRef) -> dict[str, bool]:
        """The private key's protection attributes, for the ceremony transcript."""
        from pkcs11 import Attribute, ObjectClass

        token, label = parse_ref(ref)
        with self._session(token) as session:
            priv = self._find(session, ObjectClass.PRIVATE_KEY, label)
            return {name.lower(): bool(priv[getattr(Attribute, name)]) for name in
                    ("SENSITIVE", "EXTRACTABLE", "ALWAYS_SENSITIVE", "NEVER_EXTRACTABLE", "LOCAL", "WRAP_WITH_TRUSTED")}

    def signer(self, ref: KeyRef) -> Signer:
        public = self.public_key(ref)

        def sign(data: bytes, algorithm: Any) -> bytes:
            return self._sign(ref, public, data, algorithm)

        return delegating_signer(ref, public, sign)

    def _sign(self, ref: KeyRef, public: PublicKey, data: bytes, algorithm: Any) -> bytes:
        from pkcs11 import Mechanism, ObjectClass

        token, label = parse_ref(ref)
        if isinstance(public, ec.EllipticCurvePublicKey):
            hash_alg, digest = _digest(algorithm.algorithm, data)
            with self._session(token) as session:
                raw = self._find(session, ObjectClass.PRIVATE_KEY, label).sign(digest, mechanism=Mechanism.ECDSA)
            # PKCS#11 returns r || s, each the curve's size; X.509 wants ECDSA-Sig-Value (RFC 3279 2.2.3).
            half = len(raw) // 2
            signature = encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))
            verify: Any = lambda: public.verify(signature, digest, ec.ECDSA(Prehashed(hash_alg)))  # noqa: E731
        elif isinstance(public, rsa.RSAPublicKey):
            pad, requested = algorithm
            if not isinstance(pad, padding.PKCS1v15):
                raise QTSPError(Kind.POLICY, "PKCS#11 RSA signing here uses PKCS#1 v1.5 only")
            hash_alg, digest = _digest(requested, data)
            if hash_alg.name not in _DIGEST_INFO:
                raise QTSPError(Kind.POLICY, f"no DigestInfo for {hash_alg.name}")
            with self._session(token) as session:
                key = self._find(session, ObjectClass.PRIVATE_KEY, label)
                signature = key.sign(_DIGEST_INFO[hash_alg.name] + digest, mechanism=Mechanism.RSA_PKCS)
            verify = lambda: public.verify(signature, digest, padding.PKCS1v15(), Prehashed(hash_alg))  # noqa: E731
        else:
            raise QTSPError(Kind.POLICY, "Ed25519 is not used for CA keys")
        try:
            verify()  # a token fault must never reach a certificate
        except InvalidSignature:
            raise QTSPError(Kind.INTEGRITY, f"the token's signature with {ref} does not verify") from None
        return signature

    # --- backup and restore (ceremonies) -----------------------------------------------------

    def wrap(self, ref: KeyRef, secret: bytes) -> bytes:
        """The private key wrapped (AES-KWP) under ``secret``, through a trusted key the security
        officer imports for this one call and that is destroyed right after."""
        from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass

        token, label = parse_ref(ref)
        wrap_label = f"qtsp-backup-wrap-{secrets.token_hex(6)}"
        with self._session(token) as session:
            priv = self._find(session, ObjectClass.PRIVATE_KEY, label)
            if not priv[Attribute.EXTRACTABLE]:
                raise QTSPError(Kind.POLICY, f"{ref} is not extractable (generated without backup: true); it cannot be backed up")
        with self._session(token, so=True) as session:  # only the SO may set CKA_TRUSTED
            session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                   Attribute.VALUE: secret, Attribute.TOKEN: True, Attribute.PRIVATE: False,
                                   Attribute.LABEL: wrap_label, Attribute.WRAP: True, Attribute.TRUSTED: True,
                                   Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
        with self._session(token) as session:
            wrapping = self._find(session, ObjectClass.SECRET_KEY, wrap_label)
            try:
                return bytes(wrapping.wrap_key(self._find(session, ObjectClass.PRIVATE_KEY, label),
                                               mechanism=Mechanism.AES_KEY_WRAP_PAD))
            finally:
                wrapping.destroy()

    def unwrap(self, label: str, wrapped: bytes, secret: bytes, public: PublicKey, *,
               extractable_for_backup: bool = False) -> KeyInfo:
        """Restore a wrapped private key onto this backend's token, with its public key object."""
        from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass, exceptions as px
        from pkcs11.util.ec import decode_ec_public_key

        if not self.token:
            raise QTSPError(Kind.MALFORMED, "which token to restore into?")
        ref = make_ref(self.token, label)
        key_id = secrets.token_bytes(16)
        spki = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        if isinstance(public, ec.EllipticCurvePublicKey):
            key_type, pub_attrs = KeyType.EC, decode_ec_public_key(spki)
        elif isinstance(public, rsa.RSAPublicKey):
            numbers = public.public_numbers()
            key_type = KeyType.RSA
            pub_attrs = {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.KEY_TYPE: KeyType.RSA,
                         Attribute.MODULUS: numbers.n.to_bytes((numbers.n.bit_length() + 7) // 8, "big"),
                         Attribute.PUBLIC_EXPONENT: numbers.e.to_bytes((numbers.e.bit_length() + 7) // 8, "big")}
        else:
            raise QTSPError(Kind.POLICY, "a PKCS#11 CA key is ECDSA or RSA, not Ed25519")
        with self._session(self.token) as session:
            for cls in (ObjectClass.PRIVATE_KEY, ObjectClass.PUBLIC_KEY):
                if self._find(session, cls, label, missing_ok=True) is not None:
                    raise QTSPError(Kind.CONFLICT, f"token {self.token} holds a key labelled {label!r}; refusing to overwrite it")
            unwrapping = session.create_object({Attribute.CLASS: ObjectClass.SECRET_KEY, Attribute.KEY_TYPE: KeyType.AES,
                                                Attribute.VALUE: secret, Attribute.TOKEN: False, Attribute.UNWRAP: True,
                                                Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: False})
            try:
                unwrapping.unwrap_key(ObjectClass.PRIVATE_KEY, key_type, wrapped, label=label, id=key_id, store=True,
                                      mechanism=Mechanism.AES_KEY_WRAP_PAD, capabilities=MechanismFlag.SIGN,
                                      template={Attribute.SENSITIVE: True, Attribute.EXTRACTABLE: extractable_for_backup,
                                                Attribute.WRAP_WITH_TRUSTED: True, Attribute.PRIVATE: True})
            except px.PKCS11Error:
                raise QTSPError(Kind.INTEGRITY, "the token could not unwrap the backup: wrong secret or damaged backup") from None
            finally:
                unwrapping.destroy()
            session.create_object({**pub_attrs, Attribute.TOKEN: True, Attribute.LABEL: label, Attribute.ID: key_id,
                                   Attribute.VERIFY: True, Attribute.PRIVATE: False})
        return KeyInfo(ref, key_name(public), self.public_key(ref))

    def close(self) -> None:
        self._public.clear()


def _digest(algorithm: Any, data: bytes) -> tuple[hashes.HashAlgorithm, bytes]:
    if isinstance(algorithm, Prehashed):
        return algorithm._algorithm, data  # noqa: SLF001 (cryptography exposes no public getter)
    h = hashes.Hash(algorithm)
    h.update(data)
    return algorithm, h.finalize()


def _factory(data_dir: Path) -> Pkcs11Backend:
    return Pkcs11Backend()


register_backend("pkcs11", _factory)
