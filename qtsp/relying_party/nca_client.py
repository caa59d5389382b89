"""The NCA side, as an NCA's own tool would do it: build and sign the JWS, send it, verify the
QTSP's receipt against the QTSP root (used by ``qtsp nca request-revocation`` and
``qtsp nca publish-authorisation``, and by the tests)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from ..core.audit import canonical_details
from ..core.errors import Kind, QTSPError
from .jose import algorithm_for, jws_registry, unverified_header

__all__ = ["fetch_root", "send", "sign_request", "verify_receipt"]

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def sign_request(nca_id: str, key_pem: bytes, cert_pem: bytes, body: dict[str, Any], *, aud: str,
                 jti: str | None = None, iat: int | None = None, alg: str | None = None) -> str:
    """A compact JWS of the request, x5c with the NCA's certificate. ``aud`` is the URL the request is sent
    to (the QTSP refuses a request naming another endpoint or another QTSP). ``iat`` defaults to the NCA's
    own clock (this runs on the NCA's side, whose clock the QTSP checks it against)."""
    from joserfc import jws
    from joserfc.jwk import ECKey, RSAKey

    key = serialization.load_pem_private_key(key_pem, None)
    cert = x509.load_pem_x509_certificate(cert_pem)
    alg = alg or algorithm_for(key)
    jwk = ECKey.import_key(key) if isinstance(key, ec.EllipticCurvePrivateKey) else RSAKey.import_key(key)  # type: ignore[arg-type]  # joserfc hints omit the cryptography keys it takes
    header = {"alg": alg, "x5c": [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]}
    claims = {"iss": nca_id, "jti": jti or str(uuid.uuid4()), "iat": int(time.time()) if iat is None else iat, "aud": aud,
              "body": body}
    return jws.serialize_compact(header, json.dumps(claims).encode(), jwk, algorithms=[alg])


def send(url: str, path: str, compact: str) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(url.rstrip("/") + path, data=compact.encode(), method="POST",
                                 headers={"Content-Type": "application/jose"})
    try:
        with _OPENER.open(req, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        try:
            return err.code, json.loads(err.read())
        except ValueError:
            return err.code, {"detail": err.reason}
    except urllib.error.URLError as err:
        raise QTSPError(Kind.STORAGE, f"cannot reach {url}: {err.reason}") from None


def verify_receipt(receipt: str, qtsp_root: x509.Certificate, *, request_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Check the receipt's signature, its chain to the QTSP root, and that it is about our request."""
    from joserfc import jws
    from joserfc.jwk import ECKey

    try:
        header = unverified_header(receipt)
        chain = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
        leaf, ca = chain[0], chain[1]
        leaf.verify_directly_issued_by(ca)
        ca.verify_directly_issued_by(qtsp_root)
        token = jws.deserialize_compact(receipt, ECKey.import_key(leaf.public_key()), algorithms=[header["alg"]],  # type: ignore[arg-type]  # joserfc hints omit cryptography keys
                                        registry=jws_registry([header["alg"]]))
        payload: dict[str, Any] = json.loads(token.payload)
    except Exception as exc:  # noqa: BLE001 - any failure means: this is not a receipt we can rely on
        raise QTSPError(Kind.INTEGRITY, f"the QTSP receipt does not verify: {type(exc).__name__}") from None
    if payload.get("request_id") != request_id:
        raise QTSPError(Kind.INTEGRITY, "the receipt is about another request")
    if payload.get("body_sha256") != hashlib.sha256(canonical_details(body).encode()).hexdigest():
        raise QTSPError(Kind.INTEGRITY, "the receipt names another request body")
    return payload


def fetch_root(url: str) -> x509.Certificate:
    with _OPENER.open(url.rstrip("/") + "/ca/root.pem", timeout=30) as response:
        return x509.load_pem_x509_certificate(response.read())
