"""An OCSP response against RFC 6960, the RFC 5019 profile, RFC 9654 (nonce) and the CA/Browser Forum TLS
Baseline Requirements (4.9.10, 7.3), as a relying party would check one it was handed (stapled, cached,
saved with ``openssl ocsp -respout``).

With ``issuer`` (the CA of the certificates the response is about): who signed it, the issuer itself or a
responder it delegated to (RFC 6960 4.2.2.2: issued by it, id-kp-OCSPSigning), and whether each CertID
names that issuer. With ``request`` (the DER request it answers): the nonce echoed and each CertID asked for
answered. Freshness as of ``at``.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from asn1crypto import ocsp as aocsp  # type: ignore[import-untyped, unused-ignore]  # no stubs, no py.typed
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, OCSPExtensionOID

from ..core.errors import Kind, QTSPError
from .findings import ERROR, INFO, WARNING, Finding, Severity
from .lint_crl import BR
from .revocation import _key_bits, _verify_signature, extension, issued_by

__all__ = ["MAX_INTERVAL", "MIN_INTERVAL", "RFC_5019", "RFC_6960", "RFC_9654", "lint_ocsp_response"]

RFC_6960 = "IETF RFC 6960 (2013-06)"
RFC_5019 = "IETF RFC 5019 (2007-09)"
RFC_9654 = "IETF RFC 9654 (2024-08)"
BR_OCSP = f"{BR} 4.9.10"  # 4.9.9 in later editions, the same interval
MIN_INTERVAL, MAX_INTERVAL = dt.timedelta(hours=8), dt.timedelta(days=10)  # BR 4.9.10 items 1 and 2
SKEW = dt.timedelta(minutes=5)
OCSP_NOCHECK = x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.5")
KNOWN_RESPONSE_EXTENSIONS = frozenset({OCSPExtensionOID.NONCE, x509.ObjectIdentifier("1.3.6.1.5.5.7.48.1.9")})
# BR 7.3 / 7.2.2: a revocationReason must be one a CRL may carry; cACompromise only for a CA's certificate.
_ALLOWED_REASONS = {"key_compromise", "affiliation_changed", "superseded", "cessation_of_operation", "privilege_withdrawn"}
_HASHES: dict[str, type[hashes.SHA1 | hashes.SHA256 | hashes.SHA384 | hashes.SHA512]] = {
    "sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


class _Findings(list[Finding]):
    def add(self, rule: str, source: str, severity: Severity, message: str) -> None:
        self.append(Finding(rule, source, severity, message))


def _when(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _signer(out: _Findings, response: ocsp.OCSPResponse, issuer: x509.Certificate | None,
            at: dt.datetime) -> None:
    candidates = ([issuer] if issuer is not None else []) + list(response.certificates)
    signer = None
    for candidate in candidates:
        if response.responder_key_hash is not None:
            if hashlib.sha1(_key_bits(candidate)).digest() == response.responder_key_hash:
                signer = candidate
                break
        elif response.responder_name == candidate.subject:
            signer = candidate
            break
    if signer is None:
        out.add("ocsp-responder-unknown", RFC_6960 + " 4.2.2.2", ERROR,
                "the responderID names neither the issuer given nor a certificate in the response"
                + ("" if issuer is not None else " (no --issuer given)"))
        return
    try:
        algorithm = response.signature_hash_algorithm
    except UnsupportedAlgorithm:
        out.add("ocsp-signature-algorithm-unknown", RFC_6960 + " 4.3", ERROR,
                f"the signature algorithm {response.signature_algorithm_oid.dotted_string} is not one a client knows")
        return
    if not _verify_signature(signer.public_key(), response.signature, response.tbs_response_bytes, algorithm):
        out.add("ocsp-signature-invalid", RFC_6960 + " 3.2 (2)", ERROR,
                f"the response's signature does not verify with the key of '{signer.subject.rfc4514_string()}'")
    if issuer is None:
        out.add("ocsp-authorisation-not-checked", RFC_6960 + " 3.2 (4)", INFO,
                "no --issuer given: whether the signer may answer for these certificates is not checked")
        return
    if signer is issuer:
        return
    eku = extension(signer, x509.ExtendedKeyUsage.oid)
    name = signer.subject.rfc4514_string()
    if not issued_by(signer, issuer):
        out.add("ocsp-responder-not-authorised", RFC_6960 + " 4.2.2.2", ERROR,
                f"the responder '{name}' is not the issuer and not issued by it")
        return
    if eku is None or ExtendedKeyUsageOID.OCSP_SIGNING not in eku:
        out.add("ocsp-responder-not-authorised", RFC_6960 + " 4.2.2.2", ERROR,
                f"the responder '{name}' is issued by the CA but lacks id-kp-OCSPSigning")
    if extension(signer, OCSP_NOCHECK) is None:
        out.add("ocsp-responder-no-nocheck", f"{RFC_6960} 4.2.2.2.1; {BR} 7.1.2.8", ERROR,
                f"the delegated responder '{name}' lacks id-pkix-ocsp-nocheck")
    if not signer.not_valid_before_utc - SKEW <= at <= signer.not_valid_after_utc + SKEW:
        out.add("ocsp-responder-expired", RFC_6960 + " 3.2 (4)", ERROR,
                f"the responder certificate '{name}' is not valid at {_when(at)}")


def _cert_id_matches(single: ocsp.OCSPSingleResponse, issuer: x509.Certificate) -> bool:
    algorithm = _HASHES.get(single.hash_algorithm.name)
    if algorithm is None:
        return False
    name_hash = hashes.Hash(algorithm())
    name_hash.update(issuer.subject.public_bytes())
    key_hash = hashes.Hash(algorithm())
    key_hash.update(_key_bits(issuer))
    return single.issuer_name_hash == name_hash.finalize() and single.issuer_key_hash == key_hash.finalize()


def _single(out: _Findings, index: int, single: ocsp.OCSPSingleResponse, raw: aocsp.SingleResponse,
            produced_at: dt.datetime, issuer: x509.Certificate | None, at: dt.datetime) -> None:
    what = f"response {index} (serial {single.serial_number:X})"
    if issuer is not None and not _cert_id_matches(single, issuer):
        out.add("ocsp-certid-issuer", RFC_6960 + " 4.1.1", ERROR,
                f"{what}: issuerNameHash/issuerKeyHash do not name the issuer given")
    this_update, next_update = single.this_update_utc, single.next_update_utc
    if this_update > at + SKEW:
        out.add("ocsp-this-update-future", RFC_6960 + " 3.2 (5)", ERROR,
                f"{what}: thisUpdate {_when(this_update)} is after the time of checking {_when(at)}")
    if next_update is None:
        out.add("ocsp-next-update-missing", f"{RFC_5019} 2.2.4; {BR_OCSP}", ERROR,
                f"{what}: no nextUpdate (the BR validity interval is thisUpdate to nextUpdate)")
    else:
        interval = next_update - this_update
        if interval > MAX_INTERVAL:
            out.add("ocsp-validity-too-long", BR_OCSP, ERROR,
                    f"{what}: the validity interval is {interval.total_seconds() / 86400:.2f} days; at most 10 days")
        elif interval < MIN_INTERVAL:
            out.add("ocsp-validity-too-short", BR_OCSP, ERROR,
                    f"{what}: the validity interval is {interval.total_seconds() / 3600:.2f} hours; at least 8 hours")
        if next_update < at - SKEW:
            out.add("ocsp-expired", RFC_6960 + " 3.2 (6)", ERROR,
                    f"{what}: nextUpdate {_when(next_update)} has passed at {_when(at)}")
    if produced_at + SKEW < this_update:
        out.add("ocsp-produced-before-this-update", RFC_6960 + " 4.2.2.1", WARNING,
                f"{what}: producedAt {_when(produced_at)} is before thisUpdate {_when(this_update)}")
    status = single.certificate_status
    revoked_at = single.revocation_time_utc
    if (status == ocsp.OCSPCertStatus.REVOKED) != (revoked_at is not None):
        out.add("ocsp-status-inconsistent", RFC_6960 + " 4.2.1", ERROR,
                f"{what}: revocationTime must be present exactly when the status is revoked")
    if status == ocsp.OCSPCertStatus.REVOKED and revoked_at is not None:
        if revoked_at > produced_at + SKEW:
            out.add("ocsp-revoked-in-future", RFC_6960 + " 4.2.1", ERROR,
                    f"{what}: revocationTime {_when(revoked_at)} is after producedAt {_when(produced_at)}")
        reason = single.revocation_reason
        root_issued = issuer is not None and issuer.subject == issuer.issuer
        if reason is None:
            if root_issued:
                out.add("ocsp-reason-missing-for-ca", f"{BR} 7.3", ERROR,
                        f"{what}: a revoked CA certificate's response must carry a revocationReason")
        elif reason.name not in _ALLOWED_REASONS and not (root_issued and reason.name == "ca_compromise"):
            out.add("ocsp-reason-not-allowed", f"{BR} 7.3; 7.2.2", ERROR,
                    f"{what}: revocationReason {reason.name} is not one a BR CRL may carry"
                    + (" (cACompromise is for CA certificates)" if reason.name == "ca_compromise" else ""))
    elif status == ocsp.OCSPCertStatus.UNKNOWN:
        out.add("ocsp-status-unknown", RFC_6960 + " 2.2", INFO, f"{what}: the responder does not know the certificate")
    if raw.crl_reason_value is not None:
        out.add("ocsp-single-reason-code", f"{BR} 7.3.2", ERROR,
                f"{what}: singleExtensions carry reasonCode (2.5.29.21), which BR 7.3.2 forbids")


def _nonce(out: _Findings, response: ocsp.OCSPResponse, singles: list[ocsp.OCSPSingleResponse],
           request: bytes | None) -> None:
    try:
        nonce: bytes | None = response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        nonce = None
    if nonce is not None:
        out.add("ocsp-nonce", RFC_9654 + " 2.1", INFO, f"nonce {nonce.hex()} ({len(nonce)} octets)")
        if not 1 <= len(nonce) <= 128:
            out.add("ocsp-nonce-length", RFC_9654 + " 2.1", ERROR, f"the nonce is {len(nonce)} octets; 1 to 128 allowed")
    if request is None:
        return
    try:
        parsed = aocsp.OCSPRequest.load(request)
        asked = [(r["req_cert"]["serial_number"].native, r["req_cert"]["issuer_name_hash"].native,
                  r["req_cert"]["issuer_key_hash"].native) for r in parsed["tbs_request"]["request_list"]]
        sent = parsed.nonce_value.native if parsed.nonce_value is not None else None
    except (ValueError, TypeError, KeyError):
        raise QTSPError(Kind.MALFORMED, "the OCSP request (--request) does not parse") from None
    if sent is not None and nonce is None:
        out.add("ocsp-nonce-not-echoed", f"{RFC_9654} 2.1; {RFC_6960} 4.4.1", ERROR,
                "the request carried a nonce; the response does not echo it (a replay cannot be ruled out)")
    elif sent is not None and nonce != sent:
        out.add("ocsp-nonce-mismatch", f"{RFC_9654} 2.1; {RFC_6960} 4.4.1", ERROR,
                f"the response's nonce {nonce.hex() if nonce else ''} is not the request's {bytes(sent).hex()}")
    elif sent is None and nonce is not None:
        out.add("ocsp-nonce-unrequested", RFC_9654 + " 2.1", WARNING, "a nonce in the response, none in the request")
    answered = {(s.serial_number, s.issuer_name_hash, s.issuer_key_hash) for s in singles}
    for serial, name_hash, key_hash in asked:
        if (serial, name_hash, key_hash) not in answered:
            out.add("ocsp-request-unanswered", RFC_6960 + " 4.2.2.3", ERROR,
                    f"the request asked about serial {serial:X}; the response has no answer for that CertID")


def lint_ocsp_response(der: bytes, *, at: dt.datetime, issuer: x509.Certificate | None = None,
                       request: bytes | None = None) -> list[Finding]:
    """Every finding of our OCSP rules on ``der``; QTSPError(MALFORMED) if it does not parse."""
    try:
        response = ocsp.load_der_ocsp_response(der)
        raw = aocsp.OCSPResponse.load(der)
        raw.native  # noqa: B018  # parse it all now: a structure error is unusable input, not a finding
    except (ValueError, TypeError, KeyError, AttributeError) as exc:  # asn1crypto fails in several ways
        raise QTSPError(Kind.MALFORMED, f"the OCSP response does not parse: {str(exc)[:160]}") from None
    out = _Findings()
    if response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
        out.add("ocsp-unsuccessful", RFC_6960 + " 2.3", INFO,
                f"responseStatus {response.response_status.name}: no status to check (and none to rely on)")
        return list(out)
    try:
        singles = list(response.responses)
        raw_singles = list(raw["response_bytes"]["response"].parsed["tbs_response_data"]["responses"])
        produced_at = response.produced_at_utc
        extensions = list(response.extensions)
        return _checks(out, response, singles, raw_singles, produced_at, extensions, issuer, at, request)
    except (ValueError, TypeError, KeyError, UnsupportedAlgorithm) as exc:  # a part the parsers cannot decode
        raise QTSPError(Kind.MALFORMED, f"the OCSP response does not parse: {type(exc).__name__}: {str(exc)[:160]}") from None


def _checks(out: _Findings, response: ocsp.OCSPResponse, singles: list[ocsp.OCSPSingleResponse],
            raw_singles: list[aocsp.SingleResponse], produced_at: dt.datetime, extensions: list[x509.Extension[x509.ExtensionType]],
            issuer: x509.Certificate | None, at: dt.datetime, request: bytes | None) -> list[Finding]:
    _signer(out, response, issuer, at)
    if produced_at > at + SKEW:
        out.add("ocsp-produced-at-future", RFC_6960 + " 4.2.2.1", ERROR,
                f"producedAt {_when(produced_at)} is after the time of checking {_when(at)}")
    for ext in extensions:
        if ext.critical and ext.oid not in KNOWN_RESPONSE_EXTENSIONS:
            out.add("ocsp-unknown-critical-extension", RFC_6960 + " 4.4", ERROR,
                    f"the critical response extension {ext.oid.dotted_string} is not one a client processes")
    for index, (single, raw_single) in enumerate(zip(singles, raw_singles, strict=True), start=1):
        _single(out, index, single, raw_single, produced_at, issuer, at)
    _nonce(out, response, singles, request)
    return list(out)
