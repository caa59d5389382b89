"""Store-less pieces for the responder's unit tests: a responder key and certificate made in memory,
an issuer entry, requests, and fakes of the index, the statuses and the store."""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asn1crypto import ocsp as aocsp
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtsp.core import ocsp as core_ocsp
from qtsp.responder.freshness import Freshness
from qtsp.responder.source import Answer, malformed, parse, unauthorized
from qtsp.services.generation import Generation
from qtsp.services.ocsp import IssuerEntry

UTC = dt.timezone.utc
NOW = dt.datetime(2027, 6, 1, 12, 0, tzinfo=UTC)
NAME_HASH, KEY_HASH = b"\x01" * 20, b"\x02" * 20
OTHER_KEY_HASH = b"\x03" * 20


def responder(not_before: dt.datetime = NOW - dt.timedelta(days=30), days: int = 60) -> core_ocsp.ResponderInfo:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test OCSP Responder")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_before)
            .not_valid_after(not_before + dt.timedelta(days=days))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    der = cert.public_bytes(serialization.Encoding.DER)
    return core_ocsp.ResponderInfo(der, ax509.Certificate.load(der).public_key.sha1, "sha256_ecdsa",
                                   lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))


def entry(info: core_ocsp.ResponderInfo | None = None) -> IssuerEntry:
    info = info or responder()
    cert = x509.load_der_x509_certificate(info.certificate_der)
    return IssuerEntry("qwac-ca", NOW - dt.timedelta(days=365), {"sha1": (NAME_HASH, KEY_HASH)}, info,
                       (cert.not_valid_before_utc, cert.not_valid_after_utc))


def request(*serials: int, nonce: bytes | None = None, key_hash: bytes = KEY_HASH) -> bytes:
    """An OCSPRequest about ``serials`` (several: cryptography's builder takes one, asn1crypto any)."""
    tbs: dict[str, Any] = {"request_list": [
        {"req_cert": {"hash_algorithm": {"algorithm": "sha1"}, "issuer_name_hash": NAME_HASH,
                      "issuer_key_hash": key_hash, "serial_number": serial}} for serial in serials or (1,)]}
    if nonce is not None:
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": nonce}]
    return aocsp.OCSPRequest({"tbs_request": tbs}).dump()


class FakeIndex:
    def __init__(self, the_entry: IssuerEntry) -> None:
        self.the_entry = the_entry
        self.asked_at: list[dt.datetime | None] = []

    def issuer_of(self, req: core_ocsp.Request) -> IssuerEntry | None:
        return self.the_entry if all(c.issuer_key_hash == KEY_HASH for c in req.cert_ids) else None

    def responder_at(self, the_entry: IssuerEntry, at: dt.datetime | None) -> core_ocsp.ResponderInfo:
        self.asked_at.append(at)
        return the_entry.responder


@dataclass
class FakeStatuses:
    """Every serial good, except those listed as never issued; counts the reads."""

    validity_hours: int = 96
    unissued: set[int] = field(default_factory=set)
    reads: int = 0

    def for_request(self, the_entry: IssuerEntry, req: core_ocsp.Request, now: dt.datetime,
                    at: dt.datetime | None) -> list[core_ocsp.SingleStatus]:
        self.reads += 1
        this_update, next_update = core_ocsp.validity_window(now, self.validity_hours)
        return [core_ocsp.SingleStatus(cid, "unknown" if cid.serial in self.unissued else "good", this_update,
                                       next_update) for cid in req.cert_ids]


class FakeStore:
    """Stands for StoreSource: a "pre-signed" answer for single no-nonce requests, else on demand."""

    def __init__(self, index: FakeIndex, on_demand: Any, now: dt.datetime = NOW) -> None:
        self.index, self.on_demand, self.now = index, on_demand, now
        self.calls = 0
        self.presigned: dict[int, bytes] = {}

    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer:
        assert at is None, "the present only"
        self.calls += 1
        req = parse(request_der)
        if req is None:
            return malformed(None)
        the_entry = self.index.issuer_of(req)
        if the_entry is None:
            return unauthorized(None)
        if len(req.cert_ids) == 1 and req.nonce is None:
            serial = req.cert_ids[0].serial
            answer = self.on_demand.answer(the_entry, req)
            if answer.outcome == "good":
                body = self.presigned.setdefault(serial, answer.body)
                return Answer(body, "good", answer.this_update, answer.next_update, True,
                              hashlib.sha1(body).hexdigest(), reusable=True)
        return self.on_demand.answer(the_entry, req)


class Counter:
    """The store's change counter, as a number a test moves."""

    def __init__(self) -> None:
        self.value = 0

    def __call__(self) -> int:
        return self.value


def freshness(tmp_path: Path, counter: Counter | None = None, interval: float = 3600.0) -> tuple[Freshness, Generation]:
    generation = Generation(tmp_path)
    return Freshness(generation, counter or Counter(), interval), generation
