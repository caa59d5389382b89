"""Signing a 2-QWAC TLS certificate binding (issue 18): the subscriber's side, no store involved.

``qtsp binding sign --signer DIR`` takes what ``qtsp issue two-qwac --out DIR`` wrote (cert.pem, chain.pem,
key.pem) and the site's TLS certificates, and writes the compact JWS (``qtsp.core.tls_binding``). The signer
must be a 2-QWAC (EKU id-kp-tls-binding, TS 119 411-5 V2.1.1 4.2.2) on a key browsers verify (P-256, RSA); the
binding expires after ``valid_days``, and never after the 2-QWAC or a TLS certificate it names.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import Encoding

from .. import files
from ..core import oids, tls_binding
from ..core.errors import Kind, QTSPError

MAX_FILE = 1024 * 1024
MAX_VALID_DAYS = 398  # no longer than a TLS certificate could live (CA/B BR 6.3.2 before SC-081)


def read_limited(path: Path, what: str, limit: int = MAX_FILE) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise QTSPError(Kind.NOT_FOUND, f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise QTSPError(Kind.MALFORMED, f"{what} {path} is larger than {limit} bytes")
    return data


def load_certificates(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"{what} is not a PEM or DER certificate") from None


def load_one(path: Path, what: str) -> x509.Certificate:
    certs = load_certificates(read_limited(path, what), f"{what} {path}")
    if len(certs) != 1 and what != "TLS certificate":
        raise QTSPError(Kind.MALFORMED, f"{path} holds {len(certs)} certificates; give one")
    return certs[0]  # a TLS certificate file with its chain after it: the leaf is what is bound


@dataclass(frozen=True)
class Signer2Qwac:
    cert: x509.Certificate
    chain: list[x509.Certificate]  # its CAs, issuing CA first
    key: Any


def load_signer(directory: Path) -> Signer2Qwac:
    """cert.pem, chain.pem and key.pem of a 2-QWAC, as ``qtsp issue two-qwac --generate-key`` wrote them."""
    cert = load_one(directory / "cert.pem", "2-QWAC certificate")
    chain_path = directory / "chain.pem"
    chain = load_certificates(read_limited(chain_path, "chain"), str(chain_path)) if chain_path.exists() else []
    try:
        key = serialization.load_pem_private_key(read_limited(directory / "key.pem", "2-QWAC key"), password=None)
    except (ValueError, TypeError):
        raise QTSPError(Kind.MALFORMED, f"{directory / 'key.pem'} is not an unencrypted PEM private key") from None
    if key.public_key() != cert.public_key():
        raise QTSPError(Kind.MALFORMED, "key.pem is not the key of cert.pem")
    return Signer2Qwac(cert, chain, key)


def _is_two_qwac(cert: x509.Certificate) -> bool:
    try:
        return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [oids.KP_TLS_BINDING]
    except x509.ExtensionNotFound:
        return False


def sign_binding(signer: Signer2Qwac, tls_certs: list[x509.Certificate], *, now: dt.datetime, valid_days: int = 90,
                 hash_m: str = "S256", rsa_pss: bool = False) -> str:
    """The compact JWS binding ``tls_certs`` to the 2-QWAC."""
    if not _is_two_qwac(signer.cert):
        raise QTSPError(Kind.POLICY, "the signer is not a 2-QWAC: its only EKU must be id-kp-tls-binding "
                        "(ETSI TS 119 411-5 V2.1.1 4.2.2); a 1-QWAC (a TLS certificate) never signs a binding")
    if not 1 <= valid_days <= MAX_VALID_DAYS:
        raise QTSPError(Kind.MALFORMED, f"--valid-days must be 1-{MAX_VALID_DAYS}")
    iat = now.replace(microsecond=0)
    if not signer.cert.not_valid_before_utc <= iat <= signer.cert.not_valid_after_utc:
        raise QTSPError(Kind.POLICY, f"the 2-QWAC is not valid at {iat:%Y-%m-%d %H:%M:%S}Z")
    exp = min([iat + dt.timedelta(days=valid_days), signer.cert.not_valid_after_utc]
              + [c.not_valid_after_utc for c in tls_certs])
    if exp <= iat:
        raise QTSPError(Kind.POLICY, "a TLS certificate named has expired: nothing to bind")
    alg = tls_binding.algorithm_for(signer.cert.public_key(), rsa_pss=rsa_pss)
    header = tls_binding.build_header([signer.cert, *signer.chain], [c.public_bytes(Encoding.DER) for c in tls_certs],
                                      alg=alg, iat=iat, exp=exp, hash_m=hash_m)
    return tls_binding.sign(header, signer.key)


def write_binding(path: Path, jws: str) -> Path:
    """The binding, written new (never over an existing file)."""
    return files.write_new(path, jws.encode("ascii") + b"\n")
