"""Signed heads of the audit chain: what anchors the chain outside the database.

The hash chain (``audit.py``) shows an edit only to someone who trusts the head the store keeps;
whoever can write the database can re-hash every event after an edit and the head with them, or
cut the tail and reset the head. So the head (sequence number and hash) is signed from time to
time by a key the database does not hold, and each signed head is appended, one JSON line, to an
export file that is only ever appended to. ``check_heads`` then asks of the chain: does it still
hold every signed head at its sequence number (a prefix of the chain), and is it not shorter than
the last one?

Each line also carries the SHA-256 of the line before it, so a line removed or changed inside the
export shows too. A line cut from the end of the export does not: keep a copy elsewhere (the
export is a few hundred bytes per head) and verify against it.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from .audit import GENESIS
from .errors import Kind, QTSPError
from .keys import PrivateKey, PublicKey, signature_hash

VERSION = 1
MAX_LINE_BYTES = 4096  # a signed head is ~400 bytes (RSA-4096: ~900); anything longer is not ours
_FIELDS = {"v", "seq", "hash", "at", "key", "key_sha256", "prev", "sig"}
_HEX64 = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class SignedHead:
    line: int  # 1-based line number in the export
    seq: int  # the chain's last event when signed (0: an empty chain)
    hash: str  # that event's hash (GENESIS for an empty chain)
    at: dt.datetime
    key: str  # the signing key's reference (file:, vault-transit:, pkcs11:)
    key_sha256: str  # SHA-256 of the key's SubjectPublicKeyInfo
    prev: str  # SHA-256 of the export's line before this one (GENESIS for the first)
    signature: bytes
    raw: bytes  # the line as written, without its newline

    def payload(self) -> bytes:
        return payload(self.seq, self.hash, self.at, self.key, self.key_sha256, self.prev)


@dataclass(frozen=True)
class HeadProblem:
    line: int  # the export's line (0: the export as a whole)
    problem: str


def payload(seq: int, head_hash: str, at: dt.datetime, key: str, key_sha256: str, prev: str) -> bytes:
    """The bytes signed: canonical JSON of everything in the line but the signature."""
    body = {"v": VERSION, "seq": seq, "hash": head_hash, "at": at.astimezone(dt.timezone.utc).isoformat(),
            "key": key, "key_sha256": key_sha256, "prev": prev}
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def line_digest(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def encode_line(seq: int, head_hash: str, at: dt.datetime, key: str, key_sha256: str, prev: str,
                signature: bytes) -> bytes:
    """One export line (no newline): the signed fields and the signature, base64."""
    body = json.loads(payload(seq, head_hash, at, key, key_sha256, prev))
    body["sig"] = base64.b64encode(signature).decode()
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


def _is_hash(value: Any) -> bool:
    return isinstance(value, str) and len(value) == 64 and set(value) <= _HEX64


def parse_line(raw: bytes, line: int) -> SignedHead:
    """A line of the export, checked for shape (not yet for its signature); MALFORMED otherwise."""
    def bad(why: str) -> QTSPError:
        return QTSPError(Kind.MALFORMED, f"line {line} of the export is not a signed head: {why}")

    if len(raw) > MAX_LINE_BYTES:
        raise bad(f"{len(raw)} bytes (at most {MAX_LINE_BYTES})")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not JSON") from None
    if not isinstance(data, dict) or set(data) != _FIELDS:
        raise bad("wrong fields")
    if data["v"] != VERSION:
        raise bad(f"version {data['v']!r}")
    seq = data["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise bad("seq is not a sequence number")
    if not (_is_hash(data["hash"]) and _is_hash(data["prev"]) and _is_hash(data["key_sha256"])):
        raise bad("hash, prev or key_sha256 is not a SHA-256 in hex")
    if not isinstance(data["key"], str) or not 1 <= len(data["key"]) <= 256:
        raise bad("key is not a key reference")
    try:
        at = dt.datetime.fromisoformat(data["at"])
        signature = base64.b64decode(data["sig"], validate=True)
    except (TypeError, ValueError, binascii.Error):
        raise bad("at or sig does not parse") from None
    if at.tzinfo is None:
        raise bad("at has no time zone")
    return SignedHead(line, seq, data["hash"], at, data["key"], data["key_sha256"], data["prev"], signature, raw)


def sign(key: PrivateKey, data: bytes) -> bytes:
    """Sign with the anchor key: ECDSA with the curve's hash, RSA PKCS#1 v1.5, or Ed25519."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(signature_hash(key)))
    return key.sign(data, padding.PKCS1v15(), signature_hash(key))


def signature_valid(public_key: PublicKey, data: bytes, signature: bytes) -> bool:
    try:
        if isinstance(public_key, ed25519.Ed25519PublicKey):
            public_key.verify(signature, data)
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(signature, data, ec.ECDSA(signature_hash(public_key)))
        elif isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), signature_hash(public_key))
        else:
            return False
    except (InvalidSignature, ValueError):
        return False
    return True


def check_heads(heads: Sequence[SignedHead], chain: Mapping[int, str], chain_end: int, *,
                expected_key: str, expected_key_sha256: str,
                valid: Callable[[SignedHead], bool]) -> list[HeadProblem]:
    """Every problem with the signed heads against the chain ``chain`` (seq -> hash, events
    1..chain_end): lines out of order in the export, a key that is not the anchor key, a bad
    signature, a chain that no longer holds a signed head, or one shorter than the last."""
    problems: list[HeadProblem] = []
    prev = GENESIS
    for head in heads:
        if head.prev != prev:
            problems.append(HeadProblem(head.line, "does not follow the line before it in the export "
                                                   "(a line was removed or changed)"))
        prev = line_digest(head.raw)
        if head.key != expected_key or head.key_sha256 != expected_key_sha256:
            problems.append(HeadProblem(head.line, f"signed by {head.key}, not by the anchor key {expected_key}"))
            continue
        if not valid(head):
            problems.append(HeadProblem(head.line, "its signature does not verify with the anchor key"))
            continue
        if head.seq > chain_end:
            problems.append(HeadProblem(head.line, f"the chain ends at event {chain_end} but event {head.seq} was "
                                                   f"signed at {head.at:%Y-%m-%d %H:%M:%S}Z (events were removed)"))
        elif (GENESIS if head.seq == 0 else chain.get(head.seq)) != head.hash:
            problems.append(HeadProblem(head.line, f"event {head.seq} is not the one signed at "
                                                   f"{head.at:%Y-%m-%d %H:%M:%S}Z (the chain was rewritten)"))
    return problems
