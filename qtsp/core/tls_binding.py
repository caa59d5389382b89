"""The 2-QWAC's TLS certificate binding (ETSI TS 119 411-5 V2.1.1 Annex B): its format, pure.

A binding is a JAdES signature (ETSI TS 119 182-1) in JWS compact serialization (RFC 7515 7.1) with a
detached, empty payload, so it reads ``<header>..<signature>``. Its protected header:

- ``alg``: ES256 (P-256), RS256 or PS256: the algorithms Chromium's verifier (``net/cert/two_qwac.cc``)
  accepts; TS 119 411-5 requires none in particular, only one that agrees with the 2-QWAC's key;
- ``cty``: ``TLS-Certificate-Binding-v1`` (Annex B);
- ``x5c``: the 2-QWAC, then its CA certificates, each standard base64 of the DER (RFC 7515 4.1.6);
- ``sigD`` (TS 119 182-1 5.2.8): ``mId`` ``http://uri.etsi.org/19182/ObjectIdByURIHash``, ``pars`` one
  (empty) string per bound certificate, ``hashM`` S256/S384/S512, and ``hashV`` one value per bound TLS
  certificate: base64url(digest(base64url(DER))) (5.2.8.1: with no ``b64`` header the digest is over the
  base64url-encoded data object, not the object itself), base64url without padding throughout;
- ``iat`` (integer, TS 119 182-1 5.1.11) and ``exp`` (Annex B: the binding's expiry).

No ``crit``: TS 119 182-1 5.1.9 wants ``crit: ["sigD"]`` when sigD is present, but TS 119 411-5 Annex B lists
the header parameters a binding may carry and ``crit`` is not among them; Chromium tolerates exactly
``["sigD"]``, a stricter parser may refuse it. ``parse`` accepts it in that one form, as Chromium does.

The JWS signing input is ASCII(BASE64URL(header)) || "." (RFC 7515 5.1 with an empty payload). ES256
signatures are R || S, 64 bytes (RFC 7518 3.4), not DER.

No I/O and no clock: times come in as arguments.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding

from .errors import Kind, QTSPError

__all__ = ["ALGORITHMS", "CTY", "HASH_ALGORITHMS", "MAX_BINDING_BYTES", "MECHANISM", "Binding", "BindingProblem",
           "algorithm_for", "b64url", "b64url_decode", "bound_hash", "build_header", "encode_header", "parse", "sign",
           "signing_input", "verify_signature"]

CTY = "TLS-Certificate-Binding-v1"
MECHANISM = "http://uri.etsi.org/19182/ObjectIdByURIHash"
ALGORITHMS = ("ES256", "RS256", "PS256")  # Chromium's allow-list; "none" and HS* never
HASH_ALGORITHMS: dict[str, Any] = {"S256": hashlib.sha256, "S384": hashlib.sha384, "S512": hashlib.sha512}
# Header parameters a binding may carry (TS 119 411-5 V2.1.1 Annex B; kid and x5t#S256 ignored, as Chromium does).
HEADER_MEMBERS = frozenset({"alg", "kid", "cty", "x5t#S256", "x5c", "iat", "exp", "sigD", "crit"})
SIGD_MEMBERS = frozenset({"mId", "pars", "hashM", "hashV", "ctys"})
MAX_BINDING_BYTES = 64 * 1024  # a chain of three certificates and a hundred hashes fit many times over
MAX_BOUND = 100
_B64URL = re.compile(r"[A-Za-z0-9_-]*")


class BindingProblem(Exception):
    """A binding that cannot be read as one: ``code`` names the check (a reason code of the verifier)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


# --- encodings -----------------------------------------------------------------------------------------


def b64url(data: bytes) -> str:
    """base64url without padding (RFC 7515 2)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Strict base64url without padding: another alphabet, padding or a dangling character is refused."""
    if not _B64URL.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def bound_hash(tls_cert_der: bytes, hash_m: str = "S256") -> str:
    """The ``hashV`` entry for a TLS certificate: base64url(digest(base64url(DER))) (TS 119 182-1 5.2.8.1)."""
    digest = HASH_ALGORITHMS[hash_m](b64url(tls_cert_der).encode("ascii")).digest()
    return b64url(digest)


def signing_input(header_b64: str) -> bytes:
    """RFC 7515 5.1 step 8 with an empty payload: ASCII(BASE64URL(header)) || '.'."""
    return header_b64.encode("ascii") + b"."


# --- signing ---------------------------------------------------------------------------------------------


def algorithm_for(public_key: object, *, rsa_pss: bool = False) -> str:
    """The JWS algorithm for the 2-QWAC's key: ES256 for P-256; RS256 (PS256 with ``rsa_pss``) for RSA."""
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        if public_key.curve.name != "secp256r1":
            raise QTSPError(Kind.POLICY, f"a {public_key.curve.name} key cannot sign a binding browsers verify: "
                            "ES256 needs P-256 (Chromium accepts ES256, RS256, PS256 only)")
        return "ES256"
    if isinstance(public_key, rsa.RSAPublicKey):
        return "PS256" if rsa_pss else "RS256"
    raise QTSPError(Kind.POLICY, "the 2-QWAC key must be P-256 or RSA to sign a binding (ES256, RS256, PS256)")


def build_header(chain: Sequence[x509.Certificate], tls_certs: Sequence[bytes], *, alg: str, iat: dt.datetime,
                 exp: dt.datetime, hash_m: str = "S256") -> dict[str, Any]:
    """The protected header binding ``tls_certs`` (DER) to the 2-QWAC ``chain[0]`` (its CAs after it)."""
    if alg not in ALGORITHMS:
        raise QTSPError(Kind.MALFORMED, f"alg must be one of {', '.join(ALGORITHMS)}")
    if hash_m not in HASH_ALGORITHMS:
        raise QTSPError(Kind.MALFORMED, f"hashM must be one of {', '.join(HASH_ALGORITHMS)}")
    if not chain:
        raise QTSPError(Kind.MALFORMED, "the binding needs the 2-QWAC (x5c)")
    if not 1 <= len(tls_certs) <= MAX_BOUND:
        raise QTSPError(Kind.MALFORMED, f"a binding names 1-{MAX_BOUND} TLS certificates")
    if len(set(tls_certs)) != len(tls_certs):
        raise QTSPError(Kind.MALFORMED, "a TLS certificate is named twice")
    if exp <= iat:
        raise QTSPError(Kind.MALFORMED, "the binding must expire after it is issued")
    return {
        "alg": alg,
        "cty": CTY,
        "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in chain],
        "iat": int(iat.timestamp()),
        "exp": int(exp.timestamp()),
        "sigD": {"mId": MECHANISM, "pars": ["" for _ in tls_certs], "hashM": hash_m,
                 "hashV": [bound_hash(der, hash_m) for der in tls_certs]},
    }


def encode_header(header: dict[str, Any]) -> str:
    return b64url(json.dumps(header, separators=(",", ":"), ensure_ascii=True).encode("ascii"))


def _raw_signature(alg: str, key: Any, data: bytes) -> bytes:
    wanted = ec.EllipticCurvePrivateKey if alg == "ES256" else rsa.RSAPrivateKey
    if alg in ALGORITHMS and not isinstance(key, wanted):
        raise QTSPError(Kind.POLICY, f"alg {alg} does not fit the 2-QWAC's key (TS 119 411-5 Annex B)")
    if alg == "ES256":
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
    if alg == "RS256":
        return bytes(key.sign(data, padding.PKCS1v15(), hashes.SHA256()))
    if alg == "PS256":  # salt as long as the digest (RFC 7518 3.5)
        return bytes(key.sign(data, padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32), hashes.SHA256()))
    raise QTSPError(Kind.MALFORMED, f"cannot sign with {alg!r}")


def sign(header: dict[str, Any], key: Any) -> str:
    """The compact JWS ``header..signature``, signed by ``key`` (the 2-QWAC's; any cryptography private key,
    a Signer included) with the header's ``alg``."""
    header_b64 = encode_header(header)
    return f"{header_b64}..{b64url(_raw_signature(header['alg'], key, signing_input(header_b64)))}"


# --- reading ---------------------------------------------------------------------------------------------


@dataclass
class Binding:
    """A binding read strictly as Chromium reads one (its ``ParseJades2QwacHeader``), not yet verified."""

    header_b64: str
    header: dict[str, Any]
    signature: bytes
    alg: str
    chain: list[x509.Certificate]
    hash_m: str
    hashes: list[bytes]
    iat: dt.datetime | None = None
    exp: dt.datetime | None = None
    notes: list[str] = field(default_factory=list)

    def binds(self, tls_cert_der: bytes) -> bool:
        digest = HASH_ALGORITHMS[self.hash_m](b64url(tls_cert_der).encode("ascii")).digest()
        return digest in self.hashes


def _fail(code: str, message: str) -> BindingProblem:
    return BindingProblem(code, message)


def _time(value: Any, name: str, *, integer: bool) -> dt.datetime | None:
    if value is None:
        return None
    numeric = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not numeric:
        raise _fail(f"header-{name}", f"{name} must be {'an integer' if integer else 'a number'} (seconds since the "
                    "epoch; TS 119 182-1 5.1.11, TS 119 411-5 Annex B)")
    try:
        return dt.datetime.fromtimestamp(value, dt.timezone.utc)
    except (OverflowError, OSError, ValueError):
        raise _fail(f"header-{name}", f"{name} {value!r} is not a time") from None


def _sig_d(value: Any) -> tuple[str, list[bytes]]:
    if not isinstance(value, dict):
        raise _fail("header-sigd", "sigD missing or not an object (TS 119 182-1 5.2.8; TS 119 411-5 Annex B)")
    unknown = sorted(set(value) - SIGD_MEMBERS)
    if unknown:
        raise _fail("header-sigd", f"sigD has members {unknown[:5]} beyond mId, pars, hashM, hashV, ctys")
    if value.get("mId") != MECHANISM:
        raise _fail("header-sigd", f"sigD mId must be {MECHANISM}")
    pars, hash_v, hash_m = value.get("pars"), value.get("hashV"), value.get("hashM")
    if not isinstance(pars, list) or not all(isinstance(p, str) for p in pars):
        raise _fail("header-sigd", "sigD pars missing or not a list of strings")
    if hash_m not in HASH_ALGORITHMS:
        raise _fail("header-sigd", f"sigD hashM must be one of {', '.join(HASH_ALGORITHMS)}")
    if not isinstance(hash_v, list) or len(hash_v) != len(pars) or not hash_v:
        raise _fail("header-sigd", "sigD hashV must list one digest per pars entry, at least one")
    ctys = value.get("ctys")
    if "ctys" in value and (not isinstance(ctys, list) or len(ctys) != len(pars)
                            or not all(isinstance(c, str) for c in ctys)):
        raise _fail("header-sigd", "sigD ctys must be a list of strings, one per pars entry")
    digests = []
    for item in hash_v:
        if not isinstance(item, str):
            raise _fail("header-sigd", "a sigD hashV entry is not a string")
        try:
            digests.append(b64url_decode(item))
        except (ValueError, binascii.Error):
            raise _fail("header-sigd", "a sigD hashV entry is not base64url without padding") from None
    return str(hash_m), digests


def _chain(value: Any) -> list[x509.Certificate]:
    if not isinstance(value, list) or not value:
        raise _fail("header-x5c", "x5c missing or empty: the 2-QWAC must be in the header (RFC 7515 4.1.6)")
    certs = []
    for item in value[:10]:
        if not isinstance(item, str):
            raise _fail("header-x5c", "an x5c entry is not a string")
        try:
            certs.append(x509.load_der_x509_certificate(base64.b64decode(item, validate=True)))
        except (ValueError, binascii.Error):
            raise _fail("header-x5c", "an x5c entry is not base64 of a DER certificate (standard base64, RFC 7515 "
                        "4.1.6)") from None
    if len(value) > 10:
        raise _fail("header-x5c", "x5c lists more than 10 certificates")
    return certs


def parse(compact: str | bytes) -> Binding:
    """The binding in ``compact``, every header member checked; BindingProblem(code, message) if it is not one."""
    if isinstance(compact, bytes):
        try:
            compact = compact.decode("ascii")
        except UnicodeDecodeError:
            raise _fail("malformed", "a compact JWS is ASCII") from None
    compact = compact.strip()
    if len(compact) > MAX_BINDING_BYTES:
        raise _fail("malformed", f"larger than {MAX_BINDING_BYTES} bytes")
    parts = compact.split(".")
    if len(parts) != 3:
        raise _fail("malformed", f"a compact JWS has 3 parts separated by '.', this has {len(parts)} (RFC 7515 7.1)")
    header_b64, payload_b64, signature_b64 = parts
    if payload_b64:
        raise _fail("payload-not-detached", "the payload must be detached and empty: a binding reads header..signature "
                    "(TS 119 182-1 5.2.8: sigD only with a detached payload)")
    try:
        raw = b64url_decode(header_b64)
        signature = b64url_decode(signature_b64)
    except (ValueError, binascii.Error):
        raise _fail("malformed", "header or signature is not base64url without padding (RFC 7515 2)") from None
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _fail("header-json", "the protected header is not UTF-8 JSON (RFC 7515 5.2 step 3)") from None
    if not isinstance(header, dict):
        raise _fail("header-json", "the protected header is not a JSON object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise _fail("header-alg", f"alg {str(alg)[:20]!r} is not one of {', '.join(ALGORITHMS)} (none and HMAC are "
                    "never accepted; Chromium's allow-list)")
    if header.get("cty") != CTY:
        shown = "missing" if "cty" not in header else repr(str(header.get("cty"))[:40])
        raise _fail("header-cty", f"cty is {shown}, not {CTY!r} (TS 119 411-5 Annex B)")
    chain = _chain(header.get("x5c"))
    hash_m, digests = _sig_d(header.get("sigD"))
    if "x5t#S256" in header and not isinstance(header["x5t#S256"], str):
        raise _fail("header-unknown-member", "x5t#S256 must be a string (RFC 7515 4.1.8)")
    if "crit" in header and header["crit"] != ["sigD"]:
        raise _fail("header-crit", "crit, when present, must be exactly [\"sigD\"] (TS 119 182-1 5.1.9)")
    unknown = sorted(set(header) - HEADER_MEMBERS)
    if unknown:
        raise _fail("header-unknown-member", f"header members {unknown[:5]} are not allowed in a binding (TS 119 411-5 "
                    "Annex B; RFC 7515 5.2 step 5)")
    iat = _time(header.get("iat"), "iat", integer=True)
    exp = _time(header.get("exp"), "exp", integer=False)
    return Binding(header_b64, header, signature, str(alg), chain, hash_m, digests, iat, exp)


def verify_signature(binding: Binding) -> str | None:
    """None if the signature verifies with the 2-QWAC's key under ``alg``; else why not."""
    key = binding.chain[0].public_key()
    data = signing_input(binding.header_b64)
    try:
        if binding.alg == "ES256":
            if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp256r1":
                return "alg ES256 does not match the 2-QWAC's key (ES256 needs P-256)"
            if len(binding.signature) != 64:
                return "an ES256 signature is R || S, 64 bytes (RFC 7518 3.4)"
            der = encode_dss_signature(int.from_bytes(binding.signature[:32], "big"),
                                       int.from_bytes(binding.signature[32:], "big"))
            key.verify(der, data, ec.ECDSA(hashes.SHA256()))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                return f"alg {binding.alg} does not match the 2-QWAC's key (not RSA)"
            pad: padding.AsymmetricPadding = (padding.PKCS1v15() if binding.alg == "RS256" else
                                              padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32))
            key.verify(binding.signature, data, pad, hashes.SHA256())
    except InvalidSignature:
        return "the signature does not verify with the 2-QWAC's key"
    return None
