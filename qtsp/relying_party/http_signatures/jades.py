"""A JAdES detached JWS over HTTP headers, sent as ``x-jws-signature``.

ETSI TS 119 182-1 (JAdES) V1.1.1, 5.2.8: the ``sigD`` header parameter with the mechanism
``http://uri.etsi.org/19182/HttpHeaders`` names the signed HTTP header fields in ``pars`` (lower-case,
``(request-target)`` for the method and path); the JWS payload is then those fields as draft-cavage's
signing string builds them (``name: value`` lines joined by LF), never transmitted (detached), unencoded
(RFC 7797 ``b64: false``, listed in ``crit``). ``sigT`` (5.2.1) is the claimed signing time, ``x5t#S256``
(5.1.7) and ``x5c`` the QSealC. This is the shape of the JAdES request signature in the Berlin Group
openFinance framework and of Open Banking UK's ``x-jws-signature`` (whose 3.1.3 profile also had
``b64: false``); the body is covered through the ``Digest`` header listed in ``pars``.

    x-jws-signature: <base64url(protected header)>..<base64url(signature)>
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .cavage import digest_matches, prepare, signing_string, with_present
from .common import ALGORITHMS, SIGNATURE_CERT_HEADER, Request, SealKey, SignatureProblem, certificate_from_header, \
    der_to_raw, digest_header, raw_to_der, verify_raw
from .verified import Verified

__all__ = ["DEFAULT_PARS", "HEADER", "HTTP_HEADERS", "REQUIRED", "sign", "verify"]

HEADER = "x-jws-signature"
HTTP_HEADERS = "http://uri.etsi.org/19182/HttpHeaders"
DEFAULT_PARS = ("(request-target)", "digest", "x-request-id", "date")
REQUIRED = ("(request-target)", "digest", "x-request-id")
MAX_HEADER_JSON = 32 * 1024
MAX_X5C = 4


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    if any(c in text for c in "=+/ "):
        raise ValueError("not base64url without padding")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _thumbprint(cert: x509.Certificate) -> str:
    return b64url(hashlib.sha256(cert.public_bytes(Encoding.DER)).digest())


def sign(request: Request, key: SealKey, *, now: dt.datetime, pars: Iterable[str] = DEFAULT_PARS,
         digest: str = "sha-256") -> Request:
    """Sign ``request`` in place (and return it) with a JAdES detached JWS in ``x-jws-signature``."""
    alg = ALGORITHMS[key.algorithm]
    prepare(request, key, now)
    request.set("Digest", digest_header(request.body, digest))
    covered = with_present(request, pars)
    header = {
        "alg": alg.jose,
        "x5t#S256": _thumbprint(key.certificate),
        "x5c": [base64.b64encode(c.public_bytes(Encoding.DER)).decode("ascii") for c in (key.certificate, *key.chain)],
        "sigT": now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "sigD": {"mId": HTTP_HEADERS, "pars": covered},
        "b64": False,
        "crit": ["sigT", "sigD", "b64"],
    }
    protected = b64url(json.dumps(header, separators=(",", ":")).encode())
    signing_input = protected.encode("ascii") + b"." + signing_string(request, covered)
    signature = der_to_raw(key.sign(signing_input), alg)
    request.set("x-jws-signature", f"{protected}..{b64url(signature)}")
    return request


def _header(protected: str) -> dict[str, Any]:
    if len(protected) > MAX_HEADER_JSON:
        raise SignatureProblem("FORMAT_ERROR", f"JWS header longer than {MAX_HEADER_JSON} characters")
    try:
        header = json.loads(b64url_decode(protected))
    except ValueError:
        raise SignatureProblem("FORMAT_ERROR", "the JWS protected header is not base64url JSON (RFC 7515 7.1)") from None
    if not isinstance(header, dict):
        raise SignatureProblem("FORMAT_ERROR", "the JWS protected header is not a JSON object")
    return header


def _certificate(request: Request, header: dict[str, Any]) -> tuple[x509.Certificate, list[x509.Certificate]]:
    x5c = header.get("x5c")
    if x5c is None:
        return certificate_from_header(request.get(SIGNATURE_CERT_HEADER)), []
    if not isinstance(x5c, list) or not x5c or len(x5c) > MAX_X5C or not all(isinstance(c, str) for c in x5c):
        raise SignatureProblem("FORMAT_ERROR", f"x5c must be a list of 1 to {MAX_X5C} base64 certificates")
    try:
        certs = [x509.load_der_x509_certificate(base64.b64decode(c, validate=True)) for c in x5c]
    except ValueError:
        raise SignatureProblem("CERTIFICATE_INVALID", "x5c holds something that is not a DER certificate") from None
    thumb = header.get("x5t#S256")
    if thumb is not None and thumb != _thumbprint(certs[0]):
        raise SignatureProblem("SIGNATURE_INVALID", "x5t#S256 is not the thumbprint of the x5c certificate")
    return certs[0], certs[1:]


def verify(request: Request, *, allowed: Iterable[str]) -> Verified:
    """Check the JWS's form and JAdES header parameters, the algorithm (``allowed``), the Digest against
    the body and the signature with the QSealC's key (x5c, or TPP-Signature-Certificate)."""
    value = request.get(HEADER)
    if value is None:
        raise SignatureProblem("SIGNATURE_MISSING", "no x-jws-signature header")
    parts = value.strip().split(".")
    if len(parts) != 3 or parts[1]:
        raise SignatureProblem("FORMAT_ERROR", "x-jws-signature must be a detached compact JWS (header..signature)")
    protected, _, encoded_signature = parts
    header = _header(protected)
    crit = header.get("crit", [])
    if not isinstance(crit, list) or any(c not in ("sigT", "sigD", "b64") for c in crit) or \
            any(k in header and k not in crit for k in ("b64", "sigD")):
        raise SignatureProblem("SIGNATURE_INVALID", "crit must list b64 and sigD and nothing this verifier does not "
                               "process (RFC 7515 4.1.11, RFC 7797 6)")
    if header.get("b64") is not False:
        raise SignatureProblem("SIGNATURE_INVALID", "b64 must be false: the HTTP-headers payload is unencoded (RFC 7797)")
    sig_d = header.get("sigD")
    if not isinstance(sig_d, dict) or sig_d.get("mId") != HTTP_HEADERS or not isinstance(sig_d.get("pars"), list) or \
            not all(isinstance(p, str) for p in sig_d["pars"]) or not sig_d["pars"]:
        raise SignatureProblem("SIGNATURE_INVALID", f"sigD must name the mechanism {HTTP_HEADERS} with the signed "
                               "header names in pars (ETSI TS 119 182-1 5.2.8)")
    alg = ALGORITHMS.get(str(header.get("alg")))
    if alg is None:
        raise SignatureProblem("SIGNATURE_INVALID", f"signature algorithm {str(header.get('alg'))[:20]!r} is not "
                               f"supported (accepted: {', '.join(ALGORITHMS)})")
    if alg.jose not in set(allowed):
        raise SignatureProblem("SIGNATURE_INVALID", f"signature algorithm {alg.jose} is not accepted by this bank")
    certificate, chain = _certificate(request, header)
    covered = [p.lower() for p in sig_d["pars"]]
    digest = request.get("digest")
    if digest is not None and not digest_matches(digest, request.body):
        raise SignatureProblem("SIGNATURE_INVALID", "the Digest header does not match the body (RFC 3230)")
    try:
        der = raw_to_der(b64url_decode(encoded_signature), alg)
    except ValueError:
        raise SignatureProblem("SIGNATURE_INVALID", "the JWS signature is not base64url of the algorithm's size") from None
    signing_input = protected.encode("ascii") + b"." + signing_string(request, covered)
    if not verify_raw(certificate.public_key(), alg, der, signing_input):
        raise SignatureProblem("SIGNATURE_INVALID", "the JWS signature does not verify with the QSealC's key")
    signed_at = None
    if "sigT" in header:
        try:
            signed_at = dt.datetime.strptime(str(header["sigT"]), "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.timezone.utc)
        except ValueError:
            raise SignatureProblem("FORMAT_ERROR", "sigT is not YYYY-MM-DDThh:mm:ssZ (ETSI TS 119 182-1 5.2.1)") from None
    return Verified("jades", certificate, alg.jose, covered, signed_at,
                    body_covered="digest" in covered and digest is not None, chain=chain)
