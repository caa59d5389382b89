"""A relying party's revocation client: HTTP fetching (bounded, no proxy), OCSP with a nonce and CRLs,
each answer checked before it is believed. ``qtsp.relying_party.validator`` decides what to do with the results.

Every status function raises ``QTSPError`` saying why an answer is unusable; a status is only returned
from an answer whose signature, signer authorisation, subject and freshness all check out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from asn1crypto import keys as akeys  # type: ignore[import-untyped, unused-ignore]  # no stubs, no py.typed
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID

from ..core.errors import Kind, QTSPError
from ..core.http import TIME_HEADER

MAX_OCSP_BYTES = 64 * 1024
MAX_CRL_BYTES = 32 * 1024 * 1024
SKEW = dt.timedelta(minutes=5)


class Fetcher:
    """HTTP GET/POST for OCSP and CRLs: bounded in size and time, never through a proxy.

    ``connect_to`` ("127.0.0.1:8080") sends every request there while keeping the URL's Host header
    (curl's --connect-to), for a sandbox whose public name does not resolve here. ``at``: ask the
    sandbox's time travel mode for answers as of that time (the X-QTSP-Time header)."""

    def __init__(self, *, connect_to: str | None = None, at: dt.datetime | None = None, timeout: float = 10.0) -> None:
        self.connect_to, self.at, self.timeout = connect_to, at, timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def fetch(self, url: str, *, body: bytes | None = None, content_type: str | None = None, limit: int) -> bytes:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise QTSPError(Kind.MALFORMED, f"not an http(s) URL: {url[:200]!r}")
        headers = {"Host": parts.netloc, "User-Agent": "qtsp-validate"}
        target = url if self.connect_to is None else urlunsplit(parts._replace(netloc=self.connect_to))
        if content_type:
            headers["Content-Type"] = content_type
        if self.at is not None:
            headers[TIME_HEADER] = self.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        request = urllib.request.Request(target, data=body, headers=headers, method="POST" if body is not None else "GET")
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                data: bytes = response.read(limit + 1)
        except urllib.error.HTTPError as exc:
            raise QTSPError(Kind.NOT_FOUND, f"{url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise QTSPError(Kind.NOT_FOUND, f"{url}: {getattr(exc, 'reason', exc)}") from None
        if len(data) > limit:
            raise QTSPError(Kind.MALFORMED, f"{url}: answer larger than {limit} bytes")
        return data


def extension(cert: x509.Certificate | x509.CertificateRevocationList, oid: x509.ObjectIdentifier) -> Any:
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def issued_by(cert: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _verify_signature(public_key: Any, signature: bytes, data: bytes, algorithm: hashes.HashAlgorithm | None) -> bool:
    try:
        if isinstance(public_key, ec.EllipticCurvePublicKey) and algorithm is not None:
            public_key.verify(signature, data, ec.ECDSA(algorithm))
        elif isinstance(public_key, rsa.RSAPublicKey) and algorithm is not None:
            public_key.verify(signature, data, padding.PKCS1v15(), algorithm)
        else:
            return False
        return True
    except (InvalidSignature, ValueError, TypeError):
        return False


def _key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING's bytes (what RFC 6960 hashes for issuerKeyHash and byKey)."""
    spki = cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return bytes(akeys.PublicKeyInfo.load(spki)["public_key"].contents[1:])


def _ocsp_signer(response: ocsp.OCSPResponse, issuer: x509.Certificate, at: dt.datetime) -> x509.Certificate:
    """Who signed it: the issuer itself, or a responder the issuer delegated to (RFC 6960 4.2.2.2)."""
    signer = None
    for candidate in [issuer, *response.certificates]:
        if response.responder_key_hash is not None:
            if hashlib.sha1(_key_bits(candidate)).digest() != response.responder_key_hash:
                continue
        elif response.responder_name != candidate.subject:
            continue
        signer = candidate
        break
    if signer is None:
        raise QTSPError(Kind.UNAUTHORISED, "OCSP: the response is signed by a responder that is not the issuer and not "
                        "in the response")
    if signer is not issuer:
        eku = extension(signer, ExtensionOID.EXTENDED_KEY_USAGE)
        if not issued_by(signer, issuer) or eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
            raise QTSPError(Kind.UNAUTHORISED, f"OCSP: the responder '{signer.subject.rfc4514_string()}' is not "
                            "authorised by the issuer (not issued by it with id-kp-OCSPSigning)")
        if not signer.not_valid_before_utc - SKEW <= at <= signer.not_valid_after_utc + SKEW:
            raise QTSPError(Kind.UNAUTHORISED, "OCSP: the responder certificate is not valid at the time of checking")
    return signer


def ocsp_status(fetcher: Fetcher, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> dict[str, Any]:
    """{"source": "ocsp", "status": good|revoked, ...}; raises QTSPError saying why the answer is unusable."""
    aia = extension(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS) or []
    urls = [d.access_location.value for d in aia if d.access_method == AuthorityInformationAccessOID.OCSP]
    if not urls:
        raise QTSPError(Kind.NOT_FOUND, "no OCSP URL in the certificate")
    nonce = os.urandom(16)
    request = (ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA256())
               .add_extension(x509.OCSPNonce(nonce), critical=False).build())
    body = fetcher.fetch(urls[0], body=request.public_bytes(serialization.Encoding.DER),
                         content_type="application/ocsp-request", limit=MAX_OCSP_BYTES)
    try:
        response = ocsp.load_der_ocsp_response(body)
    except ValueError as exc:
        raise QTSPError(Kind.MALFORMED, f"OCSP: not an OCSP response ({exc})") from None
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        raise QTSPError(Kind.NOT_FOUND, f"OCSP: responder says {response.response_status.name}")
    signer = _ocsp_signer(response, issuer, at)
    if not _verify_signature(signer.public_key(), response.signature, response.tbs_response_bytes,
                             response.signature_hash_algorithm):
        raise QTSPError(Kind.UNAUTHORISED, "OCSP: the response signature does not verify")
    singles = list(response.responses)
    if len(singles) != 1:
        raise QTSPError(Kind.MALFORMED, f"OCSP: {len(singles)} answers to a one-certificate request")
    single = singles[0]
    hash_cls = type(single.hash_algorithm)
    name_hash = hashes.Hash(hash_cls())
    name_hash.update(issuer.subject.public_bytes())
    name_hash_v = name_hash.finalize()
    key_hash = hashes.Hash(hash_cls())
    key_hash.update(_key_bits(issuer))
    key_hash_v = key_hash.finalize()
    if (single.serial_number != cert.serial_number or single.issuer_name_hash != name_hash_v
            or single.issuer_key_hash != key_hash_v):
        raise QTSPError(Kind.MALFORMED, f"OCSP: the response is about another certificate (serial "
                        f"{single.serial_number:X}, asked {cert.serial_number:X})")
    if single.this_update_utc > at + SKEW:
        raise QTSPError(Kind.MALFORMED, f"OCSP: thisUpdate {single.this_update_utc:%Y-%m-%d %H:%M:%S}Z is in the future")
    if single.next_update_utc is None or single.next_update_utc < at - SKEW:
        raise QTSPError(Kind.MALFORMED, "OCSP: the response is stale (nextUpdate passed or absent)")
    try:
        echoed = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        echoed = None
    if echoed != nonce:
        raise QTSPError(Kind.MALFORMED, "OCSP: the nonce sent is not in the response (a replay cannot be ruled out)")
    result: dict[str, Any] = {"source": "ocsp", "url": urls[0], "status": single.certificate_status.name.lower(),
                              "this_update": single.this_update_utc.isoformat()}
    if single.certificate_status == ocsp.OCSPCertStatus.REVOKED:
        revoked_at = single.revocation_time_utc
        result.update(revoked_at=revoked_at.isoformat() if revoked_at else None,
                      reason=single.revocation_reason.name if single.revocation_reason else "unspecified")
        if revoked_at is not None and revoked_at > at:
            result["status"] = "good"  # revoked only after the time of checking
    elif single.certificate_status == ocsp.OCSPCertStatus.UNKNOWN:
        raise QTSPError(Kind.NOT_FOUND, "OCSP: the responder does not know the certificate (unknown)")
    return result


def crl_status(fetcher: Fetcher, cert: x509.Certificate, issuer: x509.Certificate, at: dt.datetime) -> dict[str, Any]:
    points = extension(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS) or []
    urls = [n.value for p in points for n in (p.full_name or []) if isinstance(n, x509.UniformResourceIdentifier)]
    if not urls:
        raise QTSPError(Kind.NOT_FOUND, "no CRL distribution point in the certificate")
    der = fetcher.fetch(urls[0], limit=MAX_CRL_BYTES)
    try:
        crl = x509.load_der_x509_crl(der)
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"CRL: {urls[0]} is not a DER CRL") from None
    if crl.issuer != issuer.subject or not crl.is_signature_valid(issuer.public_key()):  # type: ignore[arg-type]  # any issuer key: cryptography refuses a non-signing one
        raise QTSPError(Kind.UNAUTHORISED, "CRL: not signed by the certificate's issuer")
    if crl.last_update_utc > at + SKEW:
        raise QTSPError(Kind.MALFORMED, f"CRL: thisUpdate {crl.last_update_utc:%Y-%m-%d %H:%M:%S}Z is in the future")
    if crl.next_update_utc is None or crl.next_update_utc < at - SKEW:
        raise QTSPError(Kind.MALFORMED, "CRL: expired (nextUpdate passed or absent)")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    result: dict[str, Any] = {"source": "crl", "url": urls[0], "status": "good",
                              "this_update": crl.last_update_utc.isoformat()}
    if entry is not None and entry.revocation_date_utc <= at:
        try:
            reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason.name
        except x509.ExtensionNotFound:
            reason = "unspecified"
        result.update(status="revoked", revoked_at=entry.revocation_date_utc.isoformat(), reason=reason)
    elif cert.not_valid_after_utc < crl.last_update_utc:
        expired_kept = extension(crl, x509.ObjectIdentifier("2.5.29.60"))  # ExpiredCertsOnCRL (X.509 9.6.2.6)
        if expired_kept is None:
            raise QTSPError(Kind.NOT_FOUND, "CRL: the certificate expired before this CRL, which does not keep "
                            "expired entries (no ExpiredCertsOnCRL): its absence proves nothing")
    return result
