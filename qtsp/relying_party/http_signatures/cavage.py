"""The Berlin Group NextGenPSD2 request signature: draft-cavage-http-signatures-10 with a ``Digest`` header.

NextGenPSD2 XS2A Framework Implementation Guidelines V1.3.x, section 12 ("Signing messages at application
layer"): the TPP sends ``Digest: SHA-256=<base64>`` (RFC 3230) of the body, ``X-Request-ID``, ``Date``,
``TPP-Signature-Certificate`` (its QSealC, base64 DER) and

    Signature: keyId="SN=<serial hex>,CA=<issuer DN>",algorithm="rsa-sha256",
               headers="digest x-request-id date tpp-signature-certificate",signature="<base64>"

The signing string is draft-cavage-http-signatures-10 2.3: one ``name: value`` line per listed header,
lower-case names, joined by LF; ``(request-target)`` is ``<method lower-case> <path and query>``.
Algorithms (draft-cavage-10 7 and its registry): rsa-sha256, rsa-sha512, ecdsa-sha256 (DER signature);
``hs2019`` leaves the algorithm to the key's metadata, here the certificate's key (RS256 for RSA, ES256/ES384 by
curve).
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import uuid
from collections.abc import Iterable, Sequence

from .common import (ALGORITHMS, DIGESTS, SIGNATURE_CERT_HEADER, Algorithm, Request, SealKey, SignatureProblem,
                     algorithm_for_key, b64, certificate_from_header, certificate_header, digest_header, http_date,
                     key_id, key_id_names, parse_http_date, verify_raw)
from .verified import Verified

__all__ = ["DEFAULT_HEADERS", "NAMES", "REQUIRED", "digest_matches", "prepare", "sign", "signing_string", "verify",
           "with_present"]

NAMES = {"rsa-sha256": "RS256", "rsa-sha512": "RS512", "ecdsa-sha256": "ES256"}
DEFAULT_HEADERS = ("(request-target)", "digest", "x-request-id", "date", SIGNATURE_CERT_HEADER)
# What the Berlin Group requires covered (IG 12.2: Digest, X-Request-ID, and PSU-ID, PSU-Corporate-ID,
# TPP-Redirect-URI when present); Date too, or the bank's clock-skew window would check an unsigned value.
REQUIRED = ("digest", "x-request-id", "date")
IF_PRESENT = ("psu-id", "psu-corporate-id", "tpp-redirect-uri")
MAX_SIGNATURE_HEADER = 16 * 1024
_PARAM = re.compile(r'\s*([A-Za-z]+)\s*=\s*"((?:[^"\\]|\\.)*)"\s*(?:,|$)')


def _name_for(alg: Algorithm) -> str:
    for name, jose in NAMES.items():
        if jose == alg.jose:
            return name
    raise SignatureProblem("SIGNATURE_INVALID", f"{alg.jose} has no draft-cavage algorithm name")


def signing_string(request: Request, headers: Sequence[str]) -> bytes:
    lines = []
    for name in headers:
        name = name.lower()
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {request.target}")
            continue
        value = request.get(name)
        if value is None:
            raise SignatureProblem("SIGNATURE_INVALID", f"the signature covers the header {name!r}, which the request "
                                   "does not have")
        lines.append(f"{name}: {value}")
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise SignatureProblem("FORMAT_ERROR", "a signed header is not ASCII") from None


def with_present(request: Request, names: Iterable[str]) -> list[str]:
    """``names`` (lower-cased) and the PSU and redirect headers the request carries (IG 12.2: signed when present)."""
    covered = [n.lower() for n in names]
    return covered + [h for h in IF_PRESENT if h not in covered and request.get(h) is not None]


def prepare(request: Request, key: SealKey, now: dt.datetime) -> None:
    """The headers every scheme's NextGenPSD2 request carries: X-Request-ID, Date, the certificate."""
    if request.get("x-request-id") is None:
        request.set("X-Request-ID", str(uuid.uuid4()))
    if request.get("date") is None:
        request.set("Date", http_date(now))
    request.set("TPP-Signature-Certificate", certificate_header(key.certificate))


def sign(request: Request, key: SealKey, *, now: dt.datetime, headers: Iterable[str] = DEFAULT_HEADERS,
         digest: str = "sha-256") -> Request:
    """Sign ``request`` in place (and return it) with the Berlin Group's draft-cavage scheme."""
    alg = ALGORITHMS[key.algorithm]
    name = _name_for(alg)
    prepare(request, key, now)
    request.set("Digest", digest_header(request.body, digest))
    covered = with_present(request, headers)
    signature = key.sign(signing_string(request, covered))
    request.set("Signature", f'keyId="{key_id(key.certificate)}",algorithm="{name}",headers="{" ".join(covered)}",'
                f'signature="{b64(signature)}"')
    return request


def parse_signature_header(value: str) -> dict[str, str]:
    if len(value) > MAX_SIGNATURE_HEADER:
        raise SignatureProblem("FORMAT_ERROR", f"Signature header longer than {MAX_SIGNATURE_HEADER} characters")
    params: dict[str, str] = {}
    pos = 0
    while pos < len(value):
        match = _PARAM.match(value, pos)
        if match is None or match.end() == pos:
            raise SignatureProblem("FORMAT_ERROR", "the Signature header is not a list of name=\"value\" parameters "
                                   "(draft-cavage-http-signatures-10 4.1)")
        if match.group(1) in params:
            raise SignatureProblem("FORMAT_ERROR", f"the Signature header repeats {match.group(1)}")
        params[match.group(1)] = match.group(2)
        pos = match.end()
    return params


def digest_matches(value: str, body: bytes) -> bool:
    """A Digest value (RFC 3230: comma-separated algorithm=base64) whose every known entry matches ``body``."""
    checked = False
    for part in value.split(","):
        algorithm, _, encoded = part.strip().partition("=")
        hasher = DIGESTS.get(algorithm.lower())
        if hasher is None:
            continue
        try:
            if base64.b64decode(encoded, validate=True) != hasher(body).digest():
                return False
        except ValueError:
            return False
        checked = True
    return checked


def verify(request: Request, *, allowed: Iterable[str]) -> Verified:
    """Check the Signature header's form, the algorithm (``allowed``: JOSE names), the Digest against the
    body, and the signature with the TPP-Signature-Certificate's key. Policy (which headers must be covered,
    the Date window, the certificate's validity) is the caller's."""
    value = request.get("signature")
    if value is None:
        raise SignatureProblem("SIGNATURE_MISSING", "no Signature header")
    params = parse_signature_header(value)
    for needed in ("keyId", "signature"):
        if needed not in params:
            raise SignatureProblem("FORMAT_ERROR", f"the Signature header has no {needed}")
    certificate = certificate_from_header(request.get(SIGNATURE_CERT_HEADER))
    name = params.get("algorithm", "hs2019").lower()
    if name == "hs2019":
        alg = algorithm_for_key(certificate.public_key())
    elif name in NAMES:
        alg = ALGORITHMS[NAMES[name]]
    else:
        raise SignatureProblem("SIGNATURE_INVALID", f"signature algorithm {name!r} is not supported (accepted: "
                               f"{', '.join(NAMES)}, hs2019)")
    if alg.jose not in set(allowed):
        raise SignatureProblem("SIGNATURE_INVALID", f"signature algorithm {name!r} is not accepted by this bank")
    if not key_id_names(params["keyId"], certificate):
        raise SignatureProblem("SIGNATURE_INVALID", "keyId does not name the TPP-Signature-Certificate (serial and "
                               "issuer, NextGenPSD2 IG 12.2)")
    covered = params.get("headers", "date").lower().split()
    digest = request.get("digest")
    if digest is not None and not digest_matches(digest, request.body):
        raise SignatureProblem("SIGNATURE_INVALID", "the Digest header does not match the body (RFC 3230)")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except ValueError:
        raise SignatureProblem("FORMAT_ERROR", "the signature is not base64") from None
    if not verify_raw(certificate.public_key(), alg, signature, signing_string(request, covered)):
        raise SignatureProblem("SIGNATURE_INVALID", "the signature does not verify with the key of the "
                               "TPP-Signature-Certificate")
    date = request.get("date")
    return Verified("berlin-group", certificate, alg.jose, covered, parse_http_date(date) if date else None,
                    body_covered="digest" in covered and digest is not None)
