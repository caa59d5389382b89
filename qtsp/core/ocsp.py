"""OCSP (RFC 6960, RFC 5019 profile): parse requests defensively, build and sign responses.

asn1crypto, not cryptography's OCSP builder: we need several SingleResponses in one message,
archiveCutoff and a nonce echo, and the signature goes through any Signer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from typing import Callable

from asn1crypto import core, ocsp

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


# --- DER encoding of responses ------------------------------------------------------------
# Responses are assembled from TLVs directly: asn1crypto's object construction cost ~3 ms per
# response, this ~0.1 ms, and nonce requests are signed per request. Every encoded response is
# parsed back by openssl, pkilint and cryptography in the tests.


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def _tlv(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + _len(len(value)) + value


def _seq(*parts: bytes) -> bytes:
    return _tlv(0x30, b"".join(parts))


def _int(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True) if value else b"\0"
    return _tlv(0x02, body)


def _time(moment: dt.datetime) -> bytes:
    return _tlv(0x18, moment.astimezone(dt.timezone.utc).strftime("%Y%m%d%H%M%SZ").encode())


_HASH_ALG = {
    "sha1": bytes.fromhex("300906052b0e03021a0500"),
    "sha256": bytes.fromhex("300d06096086480165030402010500"),
}
SIGNATURE_ALGORITHMS = {
    "sha256_ecdsa": bytes.fromhex("300a06082a8648ce3d040302"),
    "sha384_ecdsa": bytes.fromhex("300a06082a8648ce3d040303"),
    "sha256_rsa": bytes.fromhex("300d06092a864886f70d01010b0500"),
}
_OID_NONCE = bytes.fromhex("06092b0601050507300102")
_OID_ARCHIVE_CUTOFF = bytes.fromhex("06092b0601050507300106")
_OID_BASIC = bytes.fromhex("06092b0601050507300101")
_REASON_CODES = {"key-compromise": 1, "affiliation-changed": 3, "superseded": 4,
                 "cessation-of-operation": 5, "privilege-withdrawn": 9}


def _single(s: SingleStatus) -> bytes:
    cid = s.cert_id
    cert_id = _seq(_HASH_ALG[cid.hash_algorithm], _tlv(0x04, cid.issuer_name_hash), _tlv(0x04, cid.issuer_key_hash),
                   _int(cid.serial))
    if s.status == "good":
        status = b"\x80\x00"
    elif s.status == "revoked":
        assert s.revoked_at is not None
        info = _time(s.revoked_at)
        if s.reason and s.reason != "unspecified":  # BR 7.2.2: no reasonCode for unspecified
            info += _tlv(0xA0, _tlv(0x0A, bytes([_REASON_CODES[s.reason]])))
        status = _tlv(0xA1, info)
    else:
        status = b"\x82\x00"
    parts = [cert_id, status, _time(s.this_update), _tlv(0xA0, _time(s.next_update))]
    if s.archive_cutoff is not None:
        parts.append(_tlv(0xA1, _seq(_seq(_OID_ARCHIVE_CUTOFF, _tlv(0x04, _time(s.archive_cutoff))))))
    return _seq(*parts)


def build_response(responder: ResponderInfo, statuses: list[SingleStatus], produced_at: dt.datetime,
                   nonce: bytes | None = None) -> bytes:
    """A signed, successful OCSPResponse with the delegated responder certificate included."""
    tbs_parts = [_tlv(0xA2, _tlv(0x04, responder.key_id)), _time(produced_at), _seq(*(_single(s) for s in statuses))]
    if nonce is not None:
        tbs_parts.append(_tlv(0xA1, _seq(_seq(_OID_NONCE, _tlv(0x04, _tlv(0x04, nonce))))))
    tbs = _seq(*tbs_parts)
    signature = responder.sign(tbs)
    basic = _seq(tbs, SIGNATURE_ALGORITHMS[responder.signature_algorithm], _tlv(0x03, b"\x00" + signature),
                 _tlv(0xA0, _seq(responder.certificate_der)))
    return _seq(b"\x0a\x01\x00", _tlv(0xA0, _seq(_OID_BASIC, _tlv(0x04, basic))))


def validity_window(now: dt.datetime, hours: int) -> tuple[dt.datetime, dt.datetime]:
    """thisUpdate = now (not back-dated: a revocation time must never lie after thisUpdate)."""
    this_update = now.replace(microsecond=0)
    return this_update, this_update + dt.timedelta(hours=hours)
