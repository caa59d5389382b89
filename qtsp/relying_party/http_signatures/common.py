"""What the three request-signature schemes share: the request as signed, the seal key, algorithms, digests.

A ``SealKey`` is a QSealC's certificate with a ``sign(data) -> bytes`` callable and an algorithm name. The
callable can be a private key file's key, or any of the sandbox's key custodians (``qtsp.signers``: file,
Vault/OpenBao Transit, PKCS#11), adapted by the CLI; this module never imports them (it is the bank's side).

Algorithm names are the JOSE ones (RFC 7518 3.1): RS256, RS512, PS256, PS512, ES256, ES384. ``sign``
returns what cryptography's private keys return: PKCS#1 v1.5 or PSS bytes for RSA, a DER ECDSA-Sig-Value
for EC; each scheme converts to its own encoding (RFC 9421 3.3.4 and RFC 7518 3.4 want r||s).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Callable, Sequence
from urllib.parse import quote, unquote

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from ...core.errors import Kind, QTSPError

__all__ = ["ALGORITHMS", "Algorithm", "Request", "SealKey", "SignatureProblem", "algorithm_for_key", "b64", "der_to_raw",
           "digest_header", "key_id", "key_id_names", "raw_to_der", "verify_raw"]

SIGNATURE_CERT_HEADER = "tpp-signature-certificate"


class SignatureProblem(Exception):  # noqa: N818  (a verdict, not a bug)
    """Why a request's signature is not accepted. ``code`` is a Berlin Group tppMessages code (NextGenPSD2
    XS2A Framework Implementation Guidelines V1.3.x, 14.11): SIGNATURE_MISSING, SIGNATURE_INVALID,
    CERTIFICATE_MISSING, CERTIFICATE_INVALID or FORMAT_ERROR."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(text)
        self.code, self.text = code, text


@dataclass(frozen=True)
class Algorithm:
    jose: str
    kind: str  # "rsa" | "rsa-pss" | "ec"
    hash: type[hashes.HashAlgorithm]
    curve: type[ec.EllipticCurve] | None = None

    def padding(self) -> padding.AsymmetricPadding:
        if self.kind == "rsa-pss":  # RFC 7518 3.5 and RFC 9421 3.3.1: salt length = hash length
            return padding.PSS(mgf=padding.MGF1(self.hash()), salt_length=self.hash().digest_size)
        return padding.PKCS1v15()


ALGORITHMS: dict[str, Algorithm] = {a.jose: a for a in (
    Algorithm("RS256", "rsa", hashes.SHA256), Algorithm("RS512", "rsa", hashes.SHA512),
    Algorithm("PS256", "rsa-pss", hashes.SHA256), Algorithm("PS512", "rsa-pss", hashes.SHA512),
    Algorithm("ES256", "ec", hashes.SHA256, ec.SECP256R1), Algorithm("ES384", "ec", hashes.SHA384, ec.SECP384R1),
)}


def algorithm_for_key(public_key: Any, preferred: str | None = None) -> Algorithm:
    """The algorithm for a key: ``preferred`` if the key can make it, else RS256 for RSA, ES256/ES384 by curve."""
    if preferred is not None:
        alg = ALGORITHMS.get(preferred)
        if alg is None:
            raise QTSPError(Kind.MALFORMED, f"unknown signature algorithm {preferred!r}; known: {', '.join(ALGORITHMS)}")
        if not _fits(alg, public_key):
            raise QTSPError(Kind.MALFORMED, f"algorithm {preferred} does not fit the key ({type(public_key).__name__})")
        return alg
    if isinstance(public_key, rsa.RSAPublicKey):
        return ALGORITHMS["RS256"]
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        for alg in ALGORITHMS.values():
            if alg.curve is not None and isinstance(public_key.curve, alg.curve):
                return alg
    raise QTSPError(Kind.MALFORMED, f"no request-signature algorithm for a {type(public_key).__name__} key")


def _fits(alg: Algorithm, public_key: Any) -> bool:
    if alg.kind == "ec":
        return isinstance(public_key, ec.EllipticCurvePublicKey) and alg.curve is not None and \
            isinstance(public_key.curve, alg.curve)
    return isinstance(public_key, rsa.RSAPublicKey)


@dataclass(frozen=True)
class SealKey:
    """A QSealC and a way to sign with its key. ``sign(data)`` signs with ``algorithm`` (JOSE name)."""

    certificate: x509.Certificate
    sign: Callable[[bytes], bytes] = field(repr=False)
    algorithm: str
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_private_key(cls, key: Any, certificate: x509.Certificate, algorithm: str | None = None,
                         chain: Sequence[x509.Certificate] = ()) -> SealKey:
        """Any cryptography private key, a ``qtsp.signers`` Signer included (they are private-key subclasses)."""
        alg = algorithm_for_key(certificate.public_key(), algorithm)

        def sign(data: bytes) -> bytes:
            if alg.kind == "ec":
                return bytes(key.sign(data, ec.ECDSA(alg.hash())))
            return bytes(key.sign(data, alg.padding(), alg.hash()))

        return cls(certificate, sign, alg.jose, tuple(chain))


def der_to_raw(der: bytes, alg: Algorithm) -> bytes:
    if alg.kind != "ec":
        return der
    assert alg.curve is not None
    size = (alg.curve().key_size + 7) // 8
    r, s = decode_dss_signature(der)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def raw_to_der(raw: bytes, alg: Algorithm) -> bytes:
    if alg.kind != "ec":
        return raw
    assert alg.curve is not None
    size = (alg.curve().key_size + 7) // 8
    if len(raw) != 2 * size:
        raise ValueError("wrong length for r||s")
    return encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))


def verify_raw(public_key: Any, alg: Algorithm, signature_der_or_rsa: bytes, data: bytes) -> bool:
    """True if ``signature`` (DER for ECDSA) verifies over ``data`` with ``public_key`` under ``alg``."""
    if not _fits(alg, public_key):
        return False
    try:
        if alg.kind == "ec":
            public_key.verify(signature_der_or_rsa, data, ec.ECDSA(alg.hash()))
        else:
            public_key.verify(signature_der_or_rsa, data, alg.padding(), alg.hash())
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


DIGESTS = {"sha-256": hashlib.sha256, "sha-512": hashlib.sha512}


def digest_header(body: bytes, algorithm: str = "sha-256") -> str:
    """RFC 3230 ``Digest`` value as the Berlin Group writes it: ``SHA-256=<base64>``."""
    return f"{algorithm.upper()}={b64(DIGESTS[algorithm](body).digest())}"


def key_id(certificate: x509.Certificate) -> str:
    """The Berlin Group keyId: ``SN=<serial, hex>,CA=<issuer DN, RFC 4514, percent-encoded>`` (NextGenPSD2
    Implementation Guidelines V1.3.x, 12.2: the certificate's serial number and issuer, as in its example
    ``SN=9FA1,CA=CN=D-TRUST%20CA%202-1%202015,O=D-Trust%20GmbH,C=DE``)."""
    return f"SN={certificate.serial_number:X},CA={quote(certificate.issuer.rfc4514_string(), safe='=,-.')}"


def key_id_names(value: str, certificate: x509.Certificate) -> bool:
    """Does a keyId name ``certificate`` (serial in hex, any case or leading zeros; issuer DN)?"""
    if not value.startswith("SN=") or ",CA=" not in value:
        return False
    serial, ca = value[3:].split(",CA=", 1)
    try:
        if int(serial, 16) != certificate.serial_number:
            return False
    except ValueError:
        return False
    issuer = certificate.issuer.rfc4514_string()
    named = unquote(ca)
    return named == issuer or named.split(",") == list(reversed(issuer.split(",")))


@dataclass
class Request:
    """An HTTP request as signed and verified: ``target`` is the path and query as sent (``/v1/accounts?x=1``),
    ``headers`` the field lines in order (names as sent)."""

    method: str
    target: str
    authority: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    scheme: str = "https"

    def get(self, name: str) -> str | None:
        """The field's value, several lines joined with ", " (RFC 9110 5.3); None if absent."""
        values = [v for n, v in self.headers if n.lower() == name.lower()]
        return ", ".join(v.strip() for v in values) if values else None

    def set(self, name: str, value: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != name.lower()] + [(name, value)]

    def remove(self, name: str) -> None:
        self.headers = [(n, v) for n, v in self.headers if n.lower() != name.lower()]

    @property
    def target_uri(self) -> str:
        return f"{self.scheme}://{self.authority}{self.target}"


def http_date(at: dt.datetime) -> str:
    """IMF-fixdate (RFC 9110 5.6.7)."""
    return at.astimezone(dt.timezone.utc).strftime("%a, %d %b %Y %H:%M:%S GMT")


def parse_http_date(value: str) -> dt.datetime:
    try:
        return dt.datetime.strptime(value.strip(), "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise SignatureProblem("FORMAT_ERROR", f"Date {value[:64]!r} is not an HTTP date (RFC 9110 5.6.7)") from None


def certificate_from_header(value: str | None) -> x509.Certificate:
    """The TPP-Signature-Certificate header: base64 DER (Berlin Group), or PEM on one or several lines."""
    if value is None or not value.strip():
        raise SignatureProblem("CERTIFICATE_MISSING", "no TPP-Signature-Certificate header: the QSealC the request "
                               "is signed with must come with it (NextGenPSD2 IG 12)")
    text = value.strip()
    if text.startswith("-----BEGIN CERTIFICATE-----"):
        text = text.removeprefix("-----BEGIN CERTIFICATE-----").removesuffix("-----END CERTIFICATE-----")
    try:
        return x509.load_der_x509_certificate(base64.b64decode("".join(text.split()), validate=True))
    except ValueError:
        raise SignatureProblem("CERTIFICATE_INVALID", "TPP-Signature-Certificate is not a base64 DER or PEM "
                               "certificate") from None


def certificate_header(certificate: x509.Certificate) -> str:
    from cryptography.hazmat.primitives.serialization import Encoding

    return b64(certificate.public_bytes(Encoding.DER))
