"""The NCA requests' JWS (TS 119 495 6.2.6; the flow is ``qtsp.services.nca``): verifying a request, and
signing the receipt the answer carries.

A request is a compact JWS by a registered NCA credential (ES256, ES384, PS256 or RS256; ``x5c`` or ``kid``
names the certificate), verified with joserfc restricted to the one algorithm the credential's key allows;
the credential itself is checked on every request (withdrawn, revoked, expired, not yet valid, or no longer
chaining to its anchor: refused). Claims are exactly ``iss``, ``jti``, ``iat``, ``aud`` (this endpoint's
URL under the QTSP's base_url) and ``body``; JSON with duplicate keys or non-finite numbers is refused.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import time
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from sqlalchemy.orm import Session

from ca_store.models import NcaCredential

from ..core.errors import Kind, QTSPError
# One JWS registry for the requests verified here and the receipts the NCA's client verifies.
from ..relying_party.jose import MAX_JWS_BYTES
from ..relying_party.jose import jws_registry as _registry
from . import nca_identity
from .context import Sandbox

__all__ = ["ALGORITHMS", "Verified", "endpoint_url", "sign_receipt", "verify"]

ALGORITHMS = {"ES256": ("ec", "secp256r1"), "ES384": ("ec", "secp384r1"), "PS256": ("rsa", None), "RS256": ("rsa", None)}
_HEADER_FIELDS = {"alg", "typ", "kid", "x5c"}
_JTI_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def _b64d(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _strict_json(data: bytes, what: str) -> Any:
    def no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in pairs]
        if len(keys) != len(set(keys)):
            raise ValueError("duplicate key")
        return dict(pairs)

    try:
        return json.loads(data.decode("utf-8"), object_pairs_hook=no_dupes,
                          parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise QTSPError(Kind.MALFORMED, f"the JWS {what} is not valid JSON") from None


@dataclass(frozen=True)
class Verified:
    nca_id: str
    jti: str
    iat: dt.datetime
    body: dict[str, Any]
    compact: str
    credential_fingerprint: str


def endpoint_url(sandbox: Sandbox, path: str) -> str:
    """The URL a request to ``path`` must name in ``aud``: this QTSP's base URL and the path."""
    return sandbox.config.base + path


def verify(sandbox: Sandbox, compact: bytes | str, now: dt.datetime, *, path: str) -> Verified:
    """Authenticate an NCA request sent to ``path``; every failure is a QTSPError with a clear, secret-free message."""
    from joserfc import jws
    from joserfc.errors import JoseError
    from joserfc.jwk import ECKey, RSAKey

    raw = compact.encode() if isinstance(compact, str) else compact
    if len(raw) > MAX_JWS_BYTES:
        raise QTSPError(Kind.MALFORMED, f"request larger than {MAX_JWS_BYTES} bytes")
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise QTSPError(Kind.MALFORMED, "the request is not a compact JWS (ASCII expected)") from None
    parts = text.split(".")
    if len(parts) != 3 or not all(re.fullmatch(r"[A-Za-z0-9_-]*", p) for p in parts) or not parts[0] or not parts[1]:
        raise QTSPError(Kind.MALFORMED, "the request is not a signed compact JWS (header.payload.signature)")
    if not parts[2]:
        raise QTSPError(Kind.UNAUTHENTICATED, "the request is not signed")
    try:
        header = _strict_json(_b64d(parts[0]), "header")
    except ValueError:
        raise QTSPError(Kind.MALFORMED, "the JWS header is not base64url") from None
    if not isinstance(header, dict):
        raise QTSPError(Kind.MALFORMED, "the JWS header is not a JSON object")
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise QTSPError(Kind.UNAUTHENTICATED, f"JWS algorithm {alg!r} is not accepted; use one of {', '.join(ALGORITHMS)}")
    extra = set(header) - _HEADER_FIELDS
    if extra:
        raise QTSPError(Kind.MALFORMED, f"unsupported JWS header fields: {', '.join(sorted(extra))}")
    with sandbox.transaction() as session:
        credential = _credential(session, header)
        if credential is None:
            raise QTSPError(Kind.UNAUTHENTICATED, "the signing certificate is not registered for any NCA")
        nca_identity.check_credential(session, credential, now)
        cred_nca, cred_der, cred_fp = credential.nca_id, credential.cert_der, credential.fingerprint_sha256
    cert = x509.load_der_x509_certificate(cred_der)
    public = cert.public_key()
    kind, curve = ALGORITHMS[alg]
    if kind == "ec" and not (isinstance(public, ec.EllipticCurvePublicKey) and public.curve.name == curve):
        raise QTSPError(Kind.UNAUTHENTICATED, f"{alg} does not match the key of the registered certificate")
    if kind == "rsa" and not isinstance(public, rsa.RSAPublicKey):
        raise QTSPError(Kind.UNAUTHENTICATED, f"{alg} does not match the key of the registered certificate")
    key = ECKey.import_key(public) if kind == "ec" else RSAKey.import_key(public)  # type: ignore[arg-type]  # joserfc hints omit the cryptography keys it takes
    try:
        token = jws.deserialize_compact(text, key, algorithms=[alg], registry=_registry([alg]))
    except (JoseError, ValueError, TypeError):
        raise QTSPError(Kind.UNAUTHENTICATED, "the JWS signature does not verify") from None
    claims = _strict_json(token.payload, "payload")
    if not isinstance(claims, dict) or set(claims) != {"iss", "jti", "iat", "aud", "body"}:
        raise QTSPError(Kind.MALFORMED, "claims must be exactly iss, jti, iat, aud and body")
    expected = endpoint_url(sandbox, path)
    if claims["aud"] != expected:
        raise QTSPError(Kind.UNAUTHENTICATED, f"aud must be {expected}, the URL this request is sent to; "
                                              "the request was signed for another endpoint or another QTSP")
    if claims["iss"] != cred_nca:
        raise QTSPError(Kind.UNAUTHORISED, f"signed with a credential of {cred_nca}, but claims to be {claims['iss']!r}")
    if not isinstance(claims["jti"], str) or not _JTI_RE.fullmatch(claims["jti"]):
        raise QTSPError(Kind.MALFORMED, "jti must be 1-128 characters of [A-Za-z0-9._:-]")
    if not isinstance(claims["iat"], int) or isinstance(claims["iat"], bool):
        raise QTSPError(Kind.MALFORMED, "iat must be an integer (seconds since the epoch)")
    window = sandbox.config.nca_request_window_seconds
    if abs(claims["iat"] - now.timestamp()) > window:
        raise QTSPError(Kind.UNAUTHENTICATED, f"issued-at is more than {window} s from now (stale, replayed or clock skew)")
    if not isinstance(claims["body"], dict):
        raise QTSPError(Kind.MALFORMED, "body must be a JSON object")
    return Verified(cred_nca, claims["jti"], dt.datetime.fromtimestamp(claims["iat"], dt.timezone.utc), claims["body"],
                    text, cred_fp)


def _credential(session: Session, header: dict[str, Any]) -> NcaCredential | None:
    x5c, kid = header.get("x5c"), header.get("kid")
    if x5c is not None:
        if not isinstance(x5c, list) or not x5c or not all(isinstance(c, str) for c in x5c) or len(x5c) > 4:
            raise QTSPError(Kind.MALFORMED, "x5c must be a list of base64 certificates")
        try:
            der = base64.b64decode(x5c[0], validate=True)
        except ValueError:
            raise QTSPError(Kind.MALFORMED, "x5c is not base64") from None
        return nca_identity.credential_for(session, der=der)
    if isinstance(kid, str) and re.fullmatch(r"[0-9a-f]{64}", kid):
        return nca_identity.credential_for(session, kid=kid)
    raise QTSPError(Kind.UNAUTHENTICATED, "the JWS names no registered certificate (x5c or kid)")


def sign_receipt(signer: Any, chain: list[x509.Certificate], result: dict[str, Any]) -> str:
    """A compact JWS by the QTSP's receipt key, x5c with its chain, so the NCA holds evidence."""
    public = signer.public_key()
    size = (public.curve.key_size + 7) // 8
    alg, hash_alg = ("ES384", hashes.SHA384()) if public.curve.key_size == 384 else ("ES256", hashes.SHA256())
    header = {"alg": alg, "typ": "qtsp-receipt+jwt",
              "x5c": [base64.b64encode(c.public_bytes(serialization.Encoding.DER)).decode() for c in chain[:2]]}
    signing_input = f"{_b64e(json.dumps(header, separators=(',', ':')).encode())}." \
                    f"{_b64e(json.dumps({**result, 'iat': int(time.time())}, separators=(',', ':')).encode())}"
    r, s = decode_dss_signature(signer.sign(signing_input.encode(), ec.ECDSA(hash_alg)))
    return f"{signing_input}.{_b64e(r.to_bytes(size, 'big') + s.to_bytes(size, 'big'))}"

