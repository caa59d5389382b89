"""Signed PSD2 API requests: a TPP signs with its QSealC, a bank verifies. Three schemes:

``berlin-group``  NextGenPSD2 (draft-cavage-http-signatures-10, ``Digest``, ``Signature``)   ``cavage.py``
``rfc9421``       RFC 9421 HTTP Message Signatures with RFC 9530 ``Content-Digest``          ``rfc9421.py``
``jades``         JAdES detached JWS over HTTP headers in ``x-jws-signature`` (TS 119 182-1)  ``jades.py``

    key = SealKey.from_private_key(private_key, qsealc)          # or SealKey(cert, sign_callable, "ES256")
    request = Request("POST", "/v1/payments/sepa-credit-transfers", "bank.example", [("Content-Type", ...)], body)
    sign(request, key, "rfc9421", now=now)                         # headers added to request.headers
    verified = verify(request, allowed=("RS256", "PS512", "ES256"))  # raises SignatureProblem(code, text)

Like the rest of ``qtsp.relying_party``, it imports only ``qtsp.core`` and cryptography, and reads no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

from . import cavage, jades, rfc9421
from .common import ALGORITHMS, Request, SealKey, SignatureProblem, digest_header, key_id
from .verified import Verified

__all__ = ["ALGORITHMS", "REQUIRED", "SCHEMES", "Request", "SealKey", "SignatureProblem", "Verified", "detect",
           "digest_header", "key_id", "sign", "verify"]

SCHEMES = ("berlin-group", "rfc9421", "jades")
_MODULES = {"berlin-group": cavage, "rfc9421": rfc9421, "jades": jades}
# What each scheme's signature must cover for a bank to rely on it (the module docstrings say why).
REQUIRED = {"berlin-group": cavage.REQUIRED, "rfc9421": rfc9421.REQUIRED, "jades": jades.REQUIRED}
IF_PRESENT = cavage.IF_PRESENT


def sign(request: Request, key: SealKey, scheme: str, *, now: dt.datetime) -> Request:
    if scheme not in _MODULES:
        raise ValueError(f"scheme must be one of {', '.join(SCHEMES)}")
    return _MODULES[scheme].sign(request, key, now=now)  # type: ignore[no-any-return]


def detect(request: Request) -> str:
    """Which scheme the request is signed with, from its headers (JAdES, then RFC 9421, then draft-cavage)."""
    if request.get(jades.HEADER) is not None:
        return "jades"
    if request.get("signature-input") is not None:
        return "rfc9421"
    if request.get("signature") is not None:
        return "berlin-group"
    raise SignatureProblem("SIGNATURE_MISSING", "the request carries no signature (Signature, Signature-Input or "
                           "x-jws-signature)")


def verify(request: Request, *, allowed: Iterable[str], scheme: str | None = None) -> Verified:
    scheme = scheme or detect(request)
    return _MODULES[scheme].verify(request, allowed=allowed)  # type: ignore[no-any-return]
