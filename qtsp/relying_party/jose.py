"""JWS helpers shared by the NCA's client (signing requests, verifying the QTSP's receipts) and the
QTSP's NCA endpoint (verifying requests): one restricted joserfc registry, key-to-algorithm mapping,
base64url. joserfc is imported on first use, so importing this module stays cheap."""

from __future__ import annotations

import base64
import json
from typing import TYPE_CHECKING, Any
from collections.abc import Sequence

from cryptography.hazmat.primitives.asymmetric import ec, rsa

from ..core.errors import Kind, QTSPError

if TYPE_CHECKING:
    from joserfc.jws import JWSRegistry

__all__ = ["MAX_JWS_BYTES", "algorithm_for", "b64url_decode", "jws_registry", "unverified_header"]

MAX_JWS_BYTES = 64 * 1024  # an NCA request or a receipt, x5c chain included


def jws_registry(algorithms: Sequence[str]) -> JWSRegistry:
    """joserfc's registry, restricted to ``algorithms``, admitting an x5c certificate in the header
    (its default header limit of 512 bytes is smaller than one certificate)."""
    from joserfc.jws import JWSRegistry

    registry = JWSRegistry(algorithms=list(algorithms))
    registry.max_header_length = 8192
    registry.max_payload_length = MAX_JWS_BYTES
    return registry


def algorithm_for(key: Any) -> str:
    """The JWS algorithm an NCA signs with, for its private key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return {"secp256r1": "ES256", "secp384r1": "ES384"}[key.curve.name]
    if isinstance(key, rsa.RSAPrivateKey):
        return "PS256"
    raise QTSPError(Kind.POLICY, "NCA keys are P-256, P-384 or RSA")


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def unverified_header(compact: str) -> Any:
    """The protected header of a compact JWS, not yet verified: only to learn which key and algorithm to
    verify with. Raises ValueError (or IndexError) when it is not one."""
    return json.loads(b64url_decode(compact.split(".")[0]))
