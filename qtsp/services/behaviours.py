"""The simulator's behaviours (issue 7): one table, behaviour name -> what it does; everyone reads it.

The names are the public interface: the argument and help of ``qtsp scenarios responder set``, the
REST API's enum (OpenAPI), /healthz. The store keeps a name (``simulator.set_behaviour`` validates
against this table); the responder applies the entry's function (``qtsp.responder.simulator`` for
OCSP, ``qtsp.responder.crl`` for CRLs). No other code names a behaviour.

An OCSP fault turns what a correct answer is made of into a deliberately wrong body; a CRL fault
turns the plan of a correct CRL into a wrong plan. Both are pure: no store, no clock (the answer's
time comes in), and what they build is never stored (the responder serves it with no-store).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from collections.abc import Callable

from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from ..core import ocsp as core_ocsp
from ..core.keys import PrivateKey, generate_private_key, parse_key_type

if TYPE_CHECKING:
    from .crl import CrlPlan

OCSP = "ocsp"
CRL = "crl"


class Lookalikes:
    """The keys of the wrong-key faults: a look-alike of each responder and a stranger key of each key
    type, made once per holder (the web worker's Responder) and never stored."""

    def __init__(self) -> None:
        self._impostors: dict[bytes, core_ocsp.ResponderInfo] = {}
        self._strangers: dict[str, PrivateKey] = {}
        self._lock = threading.Lock()

    def impostor(self, responder: core_ocsp.ResponderInfo) -> core_ocsp.ResponderInfo:
        """A look-alike of ``responder``: same subject, validity and extensions, but self-signed by an
        ephemeral P-256 key the CA never certified."""
        with self._lock:
            found = self._impostors.get(responder.certificate_der)
            if found is None:
                found = self._impostors[responder.certificate_der] = _impostor(responder)
            return found

    def stranger(self, key_type: str) -> PrivateKey:
        """A key of the CA's type that the CA never had."""
        with self._lock:
            if key_type not in self._strangers:
                self._strangers[key_type] = generate_private_key(parse_key_type(key_type))
            return self._strangers[key_type]


@dataclass(frozen=True)
class OcspTruth:
    """What the correct answer is made of, as of ``produced_at`` (whole seconds)."""

    responder: core_ocsp.ResponderInfo
    produced_at: dt.datetime
    nonce: bytes | None
    validity_hours: int
    statuses: Callable[[], list[core_ocsp.SingleStatus]]  # the true statuses: a query, made only if asked
    lookalikes: Lookalikes = field(default_factory=Lookalikes, compare=False)  # the responder's, for wrong-key


@dataclass(frozen=True)
class ResponseStatus:
    """A fault answered by an OCSPResponse with no status at all (RFC 6960 4.2.1 responseStatus)."""

    body: bytes

    def __call__(self, _truth: OcspTruth) -> bytes:
        return self.body


@dataclass(frozen=True)
class Fault:
    target: str  # ocsp | crl
    description: str  # what a correct relying party must conclude; the CLI's help and the API's description
    ocsp: Callable[[OcspTruth], bytes] | None = None
    crl: Callable[[CrlPlan, Lookalikes], CrlPlan] | None = None
    takes_delay: bool = False  # the answer is held back by the delay stored with the behaviour


# --- OCSP -------------------------------------------------------------------------------------------


def _correct(truth: OcspTruth) -> bytes:
    return core_ocsp.build_response(truth.responder, truth.statuses(), truth.produced_at, truth.nonce)


def _wrong_key(truth: OcspTruth) -> bytes:
    return core_ocsp.build_response(truth.lookalikes.impostor(truth.responder), truth.statuses(), truth.produced_at,
                                    truth.nonce)


def _stale(truth: OcspTruth) -> bytes:
    # Only the times are wrong: the window ended an hour ago (RFC 5019 4: a client must reject it).
    next_update = truth.produced_at - dt.timedelta(hours=1)
    this_update = next_update - dt.timedelta(hours=truth.validity_hours)
    statuses = [dataclasses.replace(s, this_update=this_update, next_update=next_update) for s in truth.statuses()]
    return core_ocsp.build_response(truth.responder, statuses, this_update, truth.nonce)


def _wrong_serial(truth: OcspTruth) -> bytes:
    statuses = [core_ocsp.SingleStatus(dataclasses.replace(s.cert_id, serial=s.cert_id.serial + 1), "good",
                                       s.this_update, s.next_update, archive_cutoff=s.archive_cutoff)
                for s in truth.statuses()]
    return core_ocsp.build_response(truth.responder, statuses, truth.produced_at, truth.nonce)


def _no_nonce(truth: OcspTruth) -> bytes:
    return core_ocsp.build_response(truth.responder, truth.statuses(), truth.produced_at, None)


def _impostor(responder: core_ocsp.ResponderInfo) -> core_ocsp.ResponderInfo:
    real = x509.load_der_x509_certificate(responder.certificate_der)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(real.subject).issuer_name(real.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(real.not_valid_before_utc).not_valid_after(real.not_valid_after_utc))
    for ext in real.extensions:
        if isinstance(ext.value, x509.SubjectKeyIdentifier):
            builder = builder.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), ext.critical)
        elif not isinstance(ext.value, (x509.AuthorityKeyIdentifier, x509.AuthorityInformationAccess)):
            builder = builder.add_extension(ext.value, ext.critical)
    der = builder.sign(key, hashes.SHA256()).public_bytes(Encoding.DER)
    return core_ocsp.ResponderInfo(der, ax509.Certificate.load(der).public_key.sha1, "sha256_ecdsa",
                                   lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))


# --- CRL --------------------------------------------------------------------------------------------


def _expired_crl(plan: CrlPlan, _lookalikes: Lookalikes) -> CrlPlan:
    # Every revocation up to now, so only the time is wrong: nextUpdate passed an hour ago.
    return dataclasses.replace(plan, this_update=plan.entries_at - dt.timedelta(hours=1) - plan.validity)


def _crl_wrong_key(plan: CrlPlan, lookalikes: Lookalikes) -> CrlPlan:
    return dataclasses.replace(plan, signer=lookalikes.stranger(plan.key_type))


# --- the table ----------------------------------------------------------------------------------------

BEHAVIOURS: dict[str, Fault] = {
    "try-later": Fault(OCSP, "responseStatus tryLater (3): no status; a hard-fail validator must fail",
                       ocsp=ResponseStatus(core_ocsp.TRY_LATER)),
    "internal-error": Fault(OCSP, "responseStatus internalError (2)", ocsp=ResponseStatus(core_ocsp.INTERNAL_ERROR)),
    "unauthorized": Fault(OCSP, "responseStatus unauthorized (6), as for a CA the responder does not serve",
                          ocsp=ResponseStatus(core_ocsp.UNAUTHORIZED)),
    "wrong-key": Fault(OCSP, "a well-formed answer signed by a key the CA never authorised (self-signed look-alike "
                             "responder)", ocsp=_wrong_key),
    "stale": Fault(OCSP, "thisUpdate and nextUpdate in the past", ocsp=_stale),
    "wrong-serial": Fault(OCSP, "a good answer about another serial number", ocsp=_wrong_serial),
    "no-nonce": Fault(OCSP, "the nonce is left out although the request had one", ocsp=_no_nonce),
    "slow": Fault(OCSP, "a correct answer after a delay in seconds (at most simulator_max_delay_seconds)",
                  ocsp=_correct, takes_delay=True),
    "expired-crl": Fault(CRL, "the CA's CRL with nextUpdate in the past, signed by the CA key", crl=_expired_crl),
    "crl-wrong-key": Fault(CRL, "a CRL with the CA's name, signed by another key", crl=_crl_wrong_key),
}
# The faults that answer with a responseStatus only: no certificate status is read for them.
STATUS_ONLY = frozenset(name for name, fault in BEHAVIOURS.items() if isinstance(fault.ocsp, ResponseStatus))
