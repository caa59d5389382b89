"""OCSP (RFC 6960, RFC 5019 profile): parse requests defensively, build and sign responses.

asn1crypto, not cryptography's OCSP builder: we need several SingleResponses in one message,
archiveCutoff and a nonce echo, and the signature goes through any Signer.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass
from collections.abc import Callable

from asn1crypto import ocsp

from .errors import Kind, QTSPError

MAX_REQUEST_BYTES = 16 * 1024
MAX_CERT_IDS = 32  # "several requests in one message (bounded)"
# RFC 9654 2.1 (obsoletes RFC 8954, which allowed 32): Nonce ::= OCTET STRING (SIZE(1..128)); a
# responder MUST refuse 0 or more than 128 octets with malformedRequest. We echo every accepted length
# (the RFC lets a responder drop nonces outside 16-32; echoing them is what clients check for).
NONCE_MIN, NONCE_MAX = 1, 128
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
# A CA certificate's (BR 7.2.2, pkilint's ARL rules): a subscriber's reasons plus cACompromise.
CA_REASONS = (*REASONS, "ca-compromise")
# The RFC 5280 reasons BR 7.2.2 keeps off subscriber certificates: only the simulator's scenarios carry
# them (a validator must still treat such a certificate as revoked); `qtsp revoke` never accepts them.
SIMULATOR_REASONS = {
    "ca-compromise": "ca_compromise",
    "certificate-hold": "certificate_hold",
    "aa-compromise": "aa_compromise",
}


def _status_only(status: str) -> bytes:
    der: bytes = ocsp.OCSPResponse({"response_status": status}).dump()
    return der


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


class _DER:
    """A strict reader for the few DER shapes an OCSPRequest uses (definite, minimal lengths).

    asn1crypto parses a request in ~200 us; this in ~15 us, and nonce requests are parsed on
    every call. ``tests/test_ocsp_parser.py`` checks it against asn1crypto on generated input.
    """

    __slots__ = ("buf",)

    def __init__(self, buf: bytes) -> None:
        self.buf = buf

    def tlv(self, pos: int, end: int) -> tuple[int, int, int]:
        """(tag, value start, value end) of the element at ``pos``; raises on anything off."""
        buf = self.buf
        if pos + 2 > end:
            raise _malformed("truncated DER")
        tag, first = buf[pos], buf[pos + 1]
        if tag & 0x1F == 0x1F:
            raise _malformed("multi-byte DER tags are not used in OCSP requests")
        pos += 2
        if first < 0x80:
            length = first
        else:
            count = first & 0x7F
            if count == 0 or count > 3 or pos + count > end:
                raise _malformed("bad DER length")
            length = int.from_bytes(buf[pos : pos + count], "big")
            if length < 0x80 or buf[pos] == 0:
                raise _malformed("non-minimal DER length")
            pos += count
        if pos + length > end:
            raise _malformed("DER length runs past its container")
        return tag, pos, pos + length

    def children(self, start: int, end: int) -> list[tuple[int, int, int]]:
        out, pos = [], start
        while pos < end:
            tag, vstart, vend = self.tlv(pos, end)
            out.append((tag, vstart, vend))
            pos = vend
            if len(out) > MAX_CERT_IDS + 8:
                raise _malformed(f"more than {MAX_CERT_IDS} CertIDs in one request")
        return out


_HASH_OIDS = {bytes.fromhex("2b0e03021a"): "sha1", bytes.fromhex("608648016503040201"): "sha256"}
_NONCE_OID = bytes.fromhex("2b0601050507300102")


def parse_request(der: bytes) -> Request:
    """Parse an OCSPRequest; anything off is MALFORMED (the responder answers malformedRequest)."""
    if not der or len(der) > MAX_REQUEST_BYTES:
        raise _malformed(f"OCSP request of {len(der)} bytes (1..{MAX_REQUEST_BYTES} accepted)")
    r = _DER(der)
    tag, start, end = r.tlv(0, len(der))
    if tag != 0x30 or end != len(der):
        raise _malformed("not a DER OCSPRequest")
    outer = r.children(start, end)
    if not outer or outer[0][0] != 0x30 or len(outer) > 2 or (len(outer) == 2 and outer[1][0] != 0xA0):
        raise _malformed("malformed OCSPRequest")
    tbs = r.children(outer[0][1], outer[0][2])
    idx = 0
    if idx < len(tbs) and tbs[idx][0] == 0xA0:  # version: only v1 (0) exists
        vtag, vs, ve = r.tlv(tbs[idx][1], tbs[idx][2])
        if vtag != 0x02 or der[vs:ve] != b"\x00":
            raise _malformed("unsupported OCSP request version")
        idx += 1
    if idx < len(tbs) and tbs[idx][0] == 0xA1:  # requestorName: accepted, not used
        idx += 1
    if idx >= len(tbs) or tbs[idx][0] != 0x30:
        raise _malformed("missing requestList")
    items = r.children(tbs[idx][1], tbs[idx][2])
    idx += 1
    extensions = None
    if idx < len(tbs) and tbs[idx][0] == 0xA2:
        extensions = tbs[idx]
        idx += 1
    if idx != len(tbs):
        raise _malformed("unexpected fields in TBSRequest")
    if not items:
        raise _malformed("empty requestList")
    if len(items) > MAX_CERT_IDS:
        raise _malformed(f"{len(items)} CertIDs in one request; at most {MAX_CERT_IDS}")
    cert_ids = [_cert_id(r, item) for item in items]
    nonce = _nonce(r, extensions) if extensions is not None else None
    return Request(tuple(cert_ids), nonce)


def _cert_id(r: _DER, item: tuple[int, int, int]) -> CertID:
    der = r.buf
    if item[0] != 0x30:
        raise _malformed("Request is not a SEQUENCE")
    parts = r.children(item[1], item[2])
    if not parts or parts[0][0] != 0x30 or len(parts) > 2 or (len(parts) == 2 and parts[1][0] != 0xA0):
        raise _malformed("malformed Request")
    fields = r.children(parts[0][1], parts[0][2])
    if [f[0] for f in fields] != [0x30, 0x04, 0x04, 0x02]:
        raise _malformed("malformed CertID")
    alg = r.children(fields[0][1], fields[0][2])
    if not alg or alg[0][0] != 0x06 or len(alg) > 2 or (len(alg) == 2 and der[alg[1][1] - 2 : alg[1][2]] != b"\x05\x00"):
        raise _malformed("malformed CertID hash algorithm")
    algorithm = _HASH_OIDS.get(der[alg[0][1] : alg[0][2]])
    if algorithm is None:
        raise _malformed("CertID hash not supported (SHA-1 and SHA-256 are)")
    size = HASHES[algorithm]().digest_size
    name_hash, key_hash = der[fields[1][1] : fields[1][2]], der[fields[2][1] : fields[2][2]]
    if len(name_hash) != size or len(key_hash) != size:
        raise _malformed("CertID hash lengths do not match the algorithm")
    raw = der[fields[3][1] : fields[3][2]]
    if not raw or len(raw) > 21 or (len(raw) > 1 and (raw[0] == 0 and raw[1] < 0x80 or raw[0] == 0xFF and raw[1] >= 0x80)):
        raise _malformed("CertID serial is not a minimal INTEGER of at most 20 octets")
    serial = int.from_bytes(raw, "big", signed=True)
    if serial < 0:
        raise _malformed("CertID serial is negative")
    return CertID(algorithm, bytes(name_hash), bytes(key_hash), serial)


def _nonce(r: _DER, extensions: tuple[int, int, int]) -> bytes | None:
    der = r.buf
    inner = r.children(extensions[1], extensions[2])
    if len(inner) != 1 or inner[0][0] != 0x30:
        raise _malformed("malformed requestExtensions")
    nonce = None
    for tag, start, end in r.children(inner[0][1], inner[0][2]):
        if tag != 0x30:
            raise _malformed("malformed Extension")
        fields = r.children(start, end)
        if len(fields) not in (2, 3) or fields[0][0] != 0x06 or fields[-1][0] != 0x04:
            raise _malformed("malformed Extension")
        critical = len(fields) == 3 and der[fields[1][1] : fields[1][2]] == b"\xff"
        if len(fields) == 3 and (fields[1][0] != 0x01 or fields[1][2] - fields[1][1] != 1):
            raise _malformed("malformed Extension criticality")
        value = der[fields[-1][1] : fields[-1][2]]
        if der[fields[0][1] : fields[0][2]] == _NONCE_OID:
            if nonce is not None:
                raise _malformed("nonce given twice")
            # RFC 9654 2.1: extnValue holds the Nonce, an OCTET STRING; some clients put the raw bytes there.
            if len(value) >= 2 and value[0] == 0x04:
                try:
                    vtag, vs, ve = _DER(value).tlv(0, len(value))
                    if ve == len(value):
                        value = value[vs:ve]
                except QTSPError:
                    pass
            if not NONCE_MIN <= len(value) <= NONCE_MAX:
                raise _malformed(f"nonce must be {NONCE_MIN}-{NONCE_MAX} octets (RFC 9654)")
            nonce = bytes(value)
        elif critical:
            raise _malformed("unsupported critical request extension")
    return nonce


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
    sign_many: Callable[[list[bytes]], list[bytes]] | None = None  # batch signing, where the custodian has it


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
                 "cessation-of-operation": 5, "privilege-withdrawn": 9,
                 "ca-compromise": 2, "certificate-hold": 6, "aa-compromise": 10}  # the last three: simulator only


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


def response_data(responder: ResponderInfo, statuses: list[SingleStatus], produced_at: dt.datetime,
                  nonce: bytes | None = None) -> bytes:
    """The DER of ResponseData: what the responder key signs."""
    tbs_parts = [_tlv(0xA2, _tlv(0x04, responder.key_id)), _time(produced_at), _seq(*(_single(s) for s in statuses))]
    if nonce is not None:
        tbs_parts.append(_tlv(0xA1, _seq(_seq(_OID_NONCE, _tlv(0x04, _tlv(0x04, nonce))))))
    return _seq(*tbs_parts)


def assemble(responder: ResponderInfo, tbs: bytes, signature: bytes) -> bytes:
    """A successful OCSPResponse around a signed ResponseData, the responder certificate included."""
    basic = _seq(tbs, SIGNATURE_ALGORITHMS[responder.signature_algorithm], _tlv(0x03, b"\x00" + signature),
                 _tlv(0xA0, _seq(responder.certificate_der)))
    return _seq(b"\x0a\x01\x00", _tlv(0xA0, _seq(_OID_BASIC, _tlv(0x04, basic))))


def build_response(responder: ResponderInfo, statuses: list[SingleStatus], produced_at: dt.datetime,
                   nonce: bytes | None = None) -> bytes:
    """A signed, successful OCSPResponse with the delegated responder certificate included."""
    tbs = response_data(responder, statuses, produced_at, nonce)
    return assemble(responder, tbs, responder.sign(tbs))


def validity_window(now: dt.datetime, hours: int) -> tuple[dt.datetime, dt.datetime]:
    """thisUpdate = now (not back-dated: a revocation time must never lie after thisUpdate)."""
    this_update = now.replace(microsecond=0)
    return this_update, this_update + dt.timedelta(hours=hours)
