"""Requests signed wrongly on purpose, one defect each: the request side of the negative catalogue
(``qtsp.services.scenario_requests``), and ``qtsp tpp request --tamper NAME`` for testing a bank's verifier.

=====================  =========================================================================
digest-mismatch        the body changed after signing: Digest / Content-Digest no longer match it
header-not-signed      X-Request-ID sent but left out of the signature
other-key              signed by another key than the certificate's
clock-skew             signed (Date, created, sigT) 15 minutes before now
replay                 the same signed request twice (the same X-Request-ID)
unsupported-algorithm  declares hmac-sha256 / HS256, a shared-secret algorithm no QSealC can make
unsigned               no signature at all
no-certificate         signed, but TPP-Signature-Certificate left out
=====================  =========================================================================
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import json
import re
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from . import cavage, jades, rfc9421
from .common import Request, SealKey

__all__ = ["SKEWED_BY", "TAMPERS", "signed"]

SKEWED_BY = dt.timedelta(minutes=15)
TAMPERS = ("digest-mismatch", "header-not-signed", "other-key", "clock-skew", "replay", "unsupported-algorithm",
           "unsigned", "no-certificate")

_SIGNERS: dict[str, Callable[..., Request]] = {"berlin-group": cavage.sign, "rfc9421": rfc9421.sign, "jades": jades.sign}
_COVERED = {"berlin-group": ("headers", cavage.DEFAULT_HEADERS), "rfc9421": ("components", rfc9421.DEFAULT_COMPONENTS),
            "jades": ("pars", jades.DEFAULT_PARS)}


def _other_key(key: SealKey) -> SealKey:
    public = key.certificate.public_key()
    other = (ec.generate_private_key(public.curve) if isinstance(public, ec.EllipticCurvePublicKey)
             else rsa.generate_private_key(65537, 2048))
    return SealKey.from_private_key(other, key.certificate, key.algorithm, key.chain)


def _declare_hmac(request: Request, scheme: str) -> None:
    if scheme == "berlin-group":
        value = request.get("signature") or ""
        request.set("Signature", re.sub(r'algorithm="[^"]*"', 'algorithm="hmac-sha256"', value))
    elif scheme == "rfc9421":
        value = request.get("signature-input") or ""
        request.set("Signature-Input", re.sub(r';alg="[^"]*"', ';alg="hmac-sha256"', value))
    else:
        protected, _, signature = (request.get(jades.HEADER) or "").split(".")
        header = json.loads(jades.b64url_decode(protected))
        header["alg"] = "HS256"
        encoded = base64.urlsafe_b64encode(json.dumps(header, separators=(",", ":")).encode()).rstrip(b"=").decode()
        request.set(jades.HEADER, f"{encoded}..{signature}")


def signed(request: Request, key: SealKey, scheme: str, *, now: dt.datetime, tamper: str | None = None) -> list[Request]:
    """The request(s) to send, in order: ``request`` signed with ``scheme``, spoiled by ``tamper``."""
    if tamper is not None and tamper not in TAMPERS:
        raise ValueError(f"tamper must be one of {', '.join(TAMPERS)}")
    sign = _SIGNERS[scheme]
    if tamper == "unsigned":
        cavage.prepare(request, key, now)
        return [request]
    if tamper == "header-not-signed":
        option, covered = _COVERED[scheme]
        sign(request, key, now=now, **{option: [c for c in covered if c != "x-request-id"]})
        return [request]
    sign(request, _other_key(key) if tamper == "other-key" else key,
         now=now - SKEWED_BY if tamper == "clock-skew" else now)
    if tamper == "digest-mismatch":
        request.body = request.body + b"\n" if request.body else b"{}"
    elif tamper == "unsupported-algorithm":
        _declare_hmac(request, scheme)
    elif tamper == "no-certificate":
        request.remove("TPP-Signature-Certificate")
    elif tamper == "replay":
        return [request, copy.deepcopy(request)]
    return [request]
