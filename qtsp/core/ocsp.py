"""OCSP (RFC 6960, RFC 5019 profile): parse requests defensively, build and sign responses.

asn1crypto, not cryptography's OCSP builder: we need several SingleResponses in one message,
archiveCutoff and a nonce echo, and the signature goes through any Signer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Callable

from asn1crypto import algos, core, ocsp
from asn1crypto import x509 as ax509

from .errors import Kind, QTSPError

MAX_REQUEST_BYTES = 16 * 1024
MAX_CERT_IDS = 32  # "several requests in one message (bounded)"
NONCE_MIN, NONCE_MAX = 1, 32  # RFC 8954 2.1
HASHES = {"sha1": hashlib.sha1, "sha256": hashlib.sha256}

# RFC 5280 reason names as people type them -> asn1crypto CRLReason names.
REASONS = {
    "unspecified": "unspecified",
    "key-compromise": "key_compromise",
    "affiliation-changed": "affiliation_changed",
    "superseded": "superseded",
    "cessation-of-operation": "cessation_of_operation",
    "privilege-withdrawn": "privilege_withdrawn",
}


def _status_only(status: str) -> bytes:
    return ocsp.OCSPResponse({"response_status": status}).dump()


MALFORMED = _status_only("malformed_request")
INTERNAL_ERROR = _status_only("internal_error")
TRY_LATER = _status_only("try_later")
UNAUTHORIZED = _status_only("unauthorized")


@dataclass(frozen=True)
class CertID:
    hash_algorithm: str  # sha1 | sha256
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int


@dataclass(frozen=True)
class Request:
    cert_ids: tuple[CertID, ...]
    nonce: bytes | None


def _malformed(detail: str) -> QTSPError:
    return QTSPError(Kind.MALFORMED, detail)


def parse_request(der: bytes) -> Request:
    """Parse an OCSPRequest; anything off is MALFORMED (the responder answers malformedRequest)."""
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise _malformed(f"OCSP request of {len(der)} bytes (1..{MAX_REQUEST_BYTES} accepted)")
    if der[0] != 0x30:
        raise _malformed("not a DER OCSPRequest")
    try:
        request = ocsp.OCSPRequest.load(der, strict=True)
        tbs = request["tbs_request"]
        items = tbs["request_list"]
        if len(items) == 0:
            raise _malformed("empty requestList")
        if len(items) > MAX_CERT_IDS:
            raise _malformed(f"{len(items)} CertIDs in one request; at most {MAX_CERT_IDS}")
        cert_ids = []
        for item in items:
            cid = item["req_cert"]
            algorithm = cid["hash_algorithm"]["algorithm"].native
            if algorithm not in HASHES:
                raise _malformed(f"CertID hash {algorithm} not supported (SHA-1 and SHA-256 are)")
            size = HASHES[algorithm]().digest_size
            name_hash, key_hash = cid["issuer_name_hash"].native, cid["issuer_key_hash"].native
            if len(name_hash) != size or len(key_hash) != size:
                raise _malformed("CertID hash lengths do not match the algorithm")
            serial = cid["serial_number"].native
            if not isinstance(serial, int) or serial < 0 or serial.bit_length() > 160:
                raise _malformed("CertID serial out of range")
            cert_ids.append(CertID(algorithm, name_hash, key_hash, serial))
        nonce = None
        for ext in tbs["request_extensions"] or []:
            if ext["extn_id"].dotted == "1.3.6.1.5.5.7.48.1.2":
                raw = ext["extn_value"].parsed
                value = raw.native if isinstance(raw, core.OctetString) else ext["extn_value"].native
                if not isinstance(value, bytes) or not NONCE_MIN <= len(value) <= NONCE_MAX:
                    raise _malformed("nonce must be 1-32 octets (RFC 8954)")
                nonce = value
            elif ext["critical"].native:
                raise _malformed(f"unsupported critical request extension {ext['extn_id'].dotted}")
        return Request(tuple(cert_ids), nonce)
    except QTSPError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        raise _malformed(f"undecodable OCSP request: {type(exc).__name__}") from None


def issuer_hashes(issuer_name_der: bytes, issuer_public_key_bits: bytes) -> dict[str, tuple[bytes, bytes]]:
    """(issuerNameHash, issuerKeyHash) per algorithm, as RFC 6960 4.1.1 defines them."""
    return {name: (h(issuer_name_der).digest(), h(issuer_public_key_bits).digest()) for name, h in HASHES.items()}


@dataclass(frozen=True)
class SingleStatus:
    cert_id: CertID
    status: str  # good | revoked | unknown
    this_update: dt.datetime
    next_update: dt.datetime
    revoked_at: dt.datetime | None = None
    reason: str | None = None  # a key of REASONS; "unspecified" is not written (BR 7.2.2)
    archive_cutoff: dt.datetime | None = None


@dataclass(frozen=True)
class ResponderInfo:
    certificate_der: bytes
    key_id: bytes  # SHA-1 of the responder's public key (ResponderID byKey)
    signature_algorithm: str  # asn1crypto name: sha256_ecdsa, sha384_ecdsa, sha256_rsa
    sign: Callable[[bytes], bytes]  # signs the DER of ResponseData


def _single(s: SingleStatus) -> dict:  # type: ignore[type-arg]
    cid = s.cert_id
    cert_id = {
        "hash_algorithm": {"algorithm": cid.hash_algorithm},
        "issuer_name_hash": cid.issuer_name_hash,
        "issuer_key_hash": cid.issuer_key_hash,
        "serial_number": cid.serial,
    }
    if s.status == "good":
        status = ocsp.CertStatus(name="good", value=core.Null())
    elif s.status == "revoked":
        info: dict = {"revocation_time": s.revoked_at}  # type: ignore[type-arg]
        if s.reason and s.reason != "unspecified":
            info["revocation_reason"] = REASONS[s.reason]
        status = ocsp.CertStatus(name="revoked", value=info)
    else:
        status = ocsp.CertStatus(name="unknown", value=core.Null())
    single: dict = {  # type: ignore[type-arg]
        "cert_id": cert_id,
        "cert_status": status,
        "this_update": s.this_update,
        "next_update": s.next_update,
    }
    if s.archive_cutoff is not None:
        single["single_extensions"] = [{"extn_id": "archive_cutoff", "extn_value": s.archive_cutoff}]
    return single


def build_response(responder: ResponderInfo, statuses: list[SingleStatus], produced_at: dt.datetime,
                   nonce: bytes | None = None) -> bytes:
    """A signed, successful OCSPResponse with the delegated responder certificate included."""
    data: dict = {  # type: ignore[type-arg]
        "responder_id": ocsp.ResponderId(name="by_key", value=responder.key_id),
        "produced_at": produced_at,
        "responses": [_single(s) for s in statuses],
    }
    if nonce is not None:
        data["response_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
    tbs = ocsp.ResponseData(data)
    signature = responder.sign(tbs.dump())
    basic = ocsp.BasicOCSPResponse(
        {
            "tbs_response_data": tbs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": responder.signature_algorithm}),
            "signature": signature,
            "certs": [ax509.Certificate.load(responder.certificate_der)],
        }
    )
    return ocsp.OCSPResponse(
        {"response_status": "successful", "response_bytes": {"response_type": "basic_ocsp_response", "response": basic}}
    ).dump()


def validity_window(now: dt.datetime, hours: int) -> tuple[dt.datetime, dt.datetime]:
    """thisUpdate = now (not back-dated: a revocation time must never lie after thisUpdate)."""
    this_update = now.replace(microsecond=0)
    return this_update, this_update + dt.timedelta(hours=hours)
