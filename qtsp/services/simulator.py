"""The simulator (issue 7): responder misbehaviours on demand, and answers as of another time.

A behaviour is a stored row (``responder_behaviours``): per CA or per certificate for OCSP, per
CA for CRLs. Nothing misbehaves unless an operator set it, every change is in the audit log, and
every change bumps the shared generation counter so that each OCSP worker drops its caches and
reloads the behaviours before its next answer (other hosts see the audit head move).

What is built here is never stored: misbehaving OCSP answers and CRLs, and the answers "as of"
another time (the ``X-QTSP-Time`` header), are signed on demand and served with no-store.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import re
import threading
from dataclasses import dataclass
from typing import Iterable, Sequence

from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, CertificateAuthority, CrlRecord, ResponderBehaviour, Revocation

from ..clock import utcnow
from ..core import crl as core_crl
from ..core import ocsp as core_ocsp
from ..core.errors import Kind, QTSPError
from ..core.keys import PrivateKey, generate_private_key
from ..core.types import parse_serial, serial_hex
from . import crl as crl_svc
from .context import Sandbox
from .generation import Generation

OCSP = "ocsp"
CRL = "crl"
WHOLE_CA = "*"
# name -> (target, what a correct relying party must conclude). The names are the public interface
# (CLI, API, /healthz); the texts are the CLI's help.
BEHAVIOURS: dict[str, tuple[str, str]] = {
    "try-later": (OCSP, "responseStatus tryLater (3): no status; a hard-fail validator must fail"),
    "internal-error": (OCSP, "responseStatus internalError (2)"),
    "unauthorized": (OCSP, "responseStatus unauthorized (6), as for a CA the responder does not serve"),
    "wrong-key": (OCSP, "a well-formed answer signed by a key the CA never authorised (self-signed look-alike responder)"),
    "stale": (OCSP, "thisUpdate and nextUpdate in the past"),
    "wrong-serial": (OCSP, "a good answer about another serial number"),
    "no-nonce": (OCSP, "the nonce is left out although the request had one"),
    "slow": (OCSP, "a correct answer after a delay in seconds (at most simulator_max_delay_seconds)"),
    "expired-crl": (CRL, "the CA's CRL with nextUpdate in the past, signed by the CA key"),
    "crl-wrong-key": (CRL, "a CRL with the CA's name, signed by another key"),
}
STATUS_ONLY = {"try-later": core_ocsp.TRY_LATER, "internal-error": core_ocsp.INTERNAL_ERROR,
               "unauthorized": core_ocsp.UNAUTHORIZED}
_CA_ID = re.compile(r"[a-z0-9-]{1,64}")


@dataclass(frozen=True)
class Behaviour:
    id: int
    issuer_id: str
    target: str  # ocsp | crl
    scope: str  # "*" or a serial in upper-case hex
    behaviour: str
    delay_ms: int | None
    created_at: dt.datetime
    created_by: str

    @property
    def serial(self) -> str | None:
        return None if self.scope == WHOLE_CA else self.scope

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "ca": self.issuer_id, "target": self.target, "serial": self.serial,
                "behaviour": self.behaviour, "delay_seconds": None if self.delay_ms is None else self.delay_ms / 1000,
                "created_at": self.created_at.isoformat(), "created_by": self.created_by}


def _of(row: ResponderBehaviour) -> Behaviour:
    return Behaviour(row.id, row.issuer_id, row.target, row.scope, row.behaviour, row.delay_ms, row.created_at,
                     row.created_by)


class Behaviours:
    """An immutable snapshot of every behaviour, as the web workers consult it per request."""

    __slots__ = ("rows", "_ocsp_ca", "_ocsp_serial", "_crl")

    def __init__(self, rows: Iterable[Behaviour] = ()) -> None:
        self.rows = tuple(rows)
        self._ocsp_ca = {b.issuer_id: b for b in self.rows if b.target == OCSP and b.scope == WHOLE_CA}
        self._ocsp_serial = {(b.issuer_id, int(b.scope, 16)): b for b in self.rows if b.target == OCSP and b.scope != WHOLE_CA}
        self._crl = {b.issuer_id: b for b in self.rows if b.target == CRL}

    def __bool__(self) -> bool:
        return bool(self.rows)

    def ocsp(self, ca_id: str, serials: Sequence[int]) -> Behaviour | None:
        """The behaviour for a request about ``serials``: a per-certificate one (the first in the
        request's order) beats the CA's."""
        for serial in serials:
            found = self._ocsp_serial.get((ca_id, serial))
            if found is not None:
                return found
        return self._ocsp_ca.get(ca_id)

    def crl(self, ca_id: str) -> Behaviour | None:
        return self._crl.get(ca_id)


def load(sandbox: Sandbox) -> Behaviours:
    return Behaviours(list_behaviours(sandbox))


def list_behaviours(sandbox: Sandbox) -> list[Behaviour]:
    with sandbox.transaction() as session:
        return [_of(r) for r in session.execute(select(ResponderBehaviour).order_by(ResponderBehaviour.id)).scalars()]


# --- changes: validated first, audited in the same transaction, then every worker told -------


def _ca(session: Session, ca_id: object) -> CertificateAuthority:
    if not isinstance(ca_id, str) or not _CA_ID.fullmatch(ca_id):
        raise QTSPError(Kind.MALFORMED, "a CA id is 1-64 characters of a-z 0-9 - (such as qwac-ca)")
    ca = session.get(CertificateAuthority, ca_id)
    if ca is None:
        raise QTSPError(Kind.NOT_FOUND, f"no CA {ca_id!r}")
    return ca


def _serial_of(session: Session, ca_id: str, text: object) -> str:
    if not isinstance(text, str):
        raise QTSPError(Kind.MALFORMED, "a serial is hex text, as openssl prints it")
    try:
        serial = serial_hex(parse_serial(text))
    except ValueError as exc:
        raise QTSPError(Kind.MALFORMED, str(exc)) from None
    found = session.execute(select(Certificate.id).where(Certificate.issuer_id == ca_id, Certificate.serial == serial)).first()
    if found is None:
        raise QTSPError(Kind.NOT_FOUND, f"CA {ca_id} issued no certificate with serial {serial}")
    return serial


def _delay_ms(sandbox: Sandbox, behaviour: str, delay_seconds: object) -> int | None:
    if behaviour != "slow":
        if delay_seconds is not None:
            raise QTSPError(Kind.MALFORMED, f"a delay applies to 'slow' only, not to {behaviour!r}")
        return None
    if delay_seconds is None:
        raise QTSPError(Kind.MALFORMED, "'slow' needs a delay in seconds")
    if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, (int, float)) or not math.isfinite(delay_seconds):
        raise QTSPError(Kind.MALFORMED, "the delay must be a finite number of seconds")
    limit = sandbox.config.simulator_max_delay_seconds
    if not 0 <= delay_seconds <= limit:
        raise QTSPError(Kind.POLICY, f"the delay must be 0-{limit:g} seconds (simulator_max_delay_seconds)")
    return round(delay_seconds * 1000)


def set_behaviour(sandbox: Sandbox, behaviour: str, ca_id: str, *, serial: str | None = None, target: str | None = None,
                  delay_seconds: float | None = None, actor: str = "cli", now: dt.datetime | None = None) -> Behaviour:
    """Make ``ca_id``'s responder (or one certificate's answers) misbehave; replaces what that CA or
    certificate had for the same target. Refuses bad input before anything is written."""
    if not isinstance(behaviour, str) or behaviour not in BEHAVIOURS:
        raise QTSPError(Kind.MALFORMED, f"unknown behaviour {str(behaviour)[:40]!r}: one of {', '.join(BEHAVIOURS)}")
    wanted = BEHAVIOURS[behaviour][0]
    if target is not None and target != wanted:
        raise QTSPError(Kind.MALFORMED, f"{behaviour!r} is a behaviour of the {wanted.upper()} publisher, not of {str(target)[:8]!r}")
    if wanted == CRL and serial is not None:
        raise QTSPError(Kind.MALFORMED, "CRL behaviours are per CA (one CRL covers every certificate of a CA): drop the serial")
    delay_ms = _delay_ms(sandbox, behaviour, delay_seconds)
    now = now or utcnow()
    try:
        with sandbox.transaction() as session:
            ca = _ca(session, ca_id)
            if wanted == OCSP and ca.ocsp_responder_der is None:
                raise QTSPError(Kind.POLICY, f"CA {ca.id} has no OCSP responder (its status is published by CRL only)")
            scope = WHOLE_CA if serial is None else _serial_of(session, ca.id, serial)
            row = session.execute(select(ResponderBehaviour).where(
                ResponderBehaviour.issuer_id == ca.id, ResponderBehaviour.target == wanted,
                ResponderBehaviour.scope == scope).with_for_update()).scalar_one_or_none()
            replaced = None if row is None else row.behaviour
            if row is None:
                row = ResponderBehaviour(issuer_id=ca.id, target=wanted, scope=scope)
                session.add(row)
            row.behaviour, row.delay_ms, row.created_at, row.created_by = behaviour, delay_ms, now, actor[:128]
            session.flush()
            repo.append_audit(session, at=now, actor=actor, action="simulator.behaviour.set", subject=f"behaviour:{row.id}",
                              details={"ca": ca.id, "target": wanted, "scope": scope, "behaviour": behaviour,
                                       "delay_ms": delay_ms, "replaced": replaced})
            result = _of(row)
    except IntegrityError:  # the same CA/target/scope set concurrently
        raise QTSPError(Kind.CONFLICT, "another change to the same behaviour happened at the same time; retry") from None
    _publish(sandbox)
    return result


def clear(sandbox: Sandbox, *, ca_id: str | None = None, serial: str | None = None, everything: bool = False,
          actor: str = "cli", now: dt.datetime | None = None) -> list[Behaviour]:
    """Remove every behaviour (``everything``), a CA's (all targets, all scopes), or one certificate's."""
    if everything == (ca_id is not None):
        raise QTSPError(Kind.MALFORMED, "clear either one CA's behaviours (a CA, optionally a serial) or all of them")
    if serial is not None and ca_id is None:
        raise QTSPError(Kind.MALFORMED, "a serial needs its CA")
    now = now or utcnow()
    with sandbox.transaction() as session:
        query = select(ResponderBehaviour).order_by(ResponderBehaviour.id).with_for_update()
        if ca_id is not None:
            ca = _ca(session, ca_id)
            query = query.where(ResponderBehaviour.issuer_id == ca.id)
            if serial is not None:
                query = query.where(ResponderBehaviour.scope == _serial_of(session, ca.id, serial))
        rows = list(session.execute(query).scalars())
        removed = _remove(session, rows, actor, now)
    if removed:
        _publish(sandbox)
    return removed


def clear_by_id(sandbox: Sandbox, behaviour_id: int, *, actor: str = "cli", now: dt.datetime | None = None) -> Behaviour:
    now = now or utcnow()
    with sandbox.transaction() as session:
        row = session.execute(select(ResponderBehaviour).where(ResponderBehaviour.id == behaviour_id)
                              .with_for_update()).scalar_one_or_none()
        if row is None:
            raise QTSPError(Kind.NOT_FOUND, f"no behaviour {behaviour_id}")
        removed = _remove(session, [row], actor, now)[0]
    _publish(sandbox)
    return removed


def _remove(session: Session, rows: list[ResponderBehaviour], actor: str, now: dt.datetime) -> list[Behaviour]:
    removed = [_of(r) for r in rows]
    if rows:
        session.execute(delete(ResponderBehaviour).where(ResponderBehaviour.id.in_([r.id for r in rows])))
        repo.append_audit_many(session, now, [
            (actor, "simulator.behaviour.clear", f"behaviour:{b.id}",
             {"ca": b.issuer_id, "target": b.target, "scope": b.scope, "behaviour": b.behaviour}) for b in removed])
    return removed


def _publish(sandbox: Sandbox) -> None:
    """After the commit: every worker on this host drops its caches and reloads the behaviours."""
    Generation(sandbox.data_dir).bump()


# --- OCSP: statuses as of another time, and misbehaving answers ------------------------------

StatusRow = tuple[str, dt.datetime | None, str | None]  # status, revoked_at, reason


def _aware(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def statuses_as_of(sandbox: Sandbox, ca_id: str, serials: Sequence[int], at: dt.datetime) -> dict[int, StatusRow | None]:
    """What the store said at ``at``: None (never issued) for a certificate that did not exist yet (recorded
    after ``at`` and valid only from after it: the simulator's backdated scenarios exist from notBefore),
    "good" for one revoked after it."""
    wanted = {serial_hex(s): s for s in serials}
    query = (
        select(Certificate.serial, Certificate.created_at, Certificate.not_before, Revocation.revoked_at,
               Revocation.reason)
        .outerjoin(Revocation, Revocation.certificate_id == Certificate.id)
        .where(Certificate.issuer_id == ca_id, Certificate.serial.in_(list(wanted)))
    )
    with sandbox.engine.connect() as conn:
        rows = {r.serial: r for r in conn.execute(query)}
    result: dict[int, StatusRow | None] = {}
    for text, serial in wanted.items():
        row = rows.get(text)
        if row is None or min(_aware(row.created_at), _aware(row.not_before)) > at:
            result[serial] = None
        elif row.revoked_at is None or _aware(row.revoked_at) > at:
            result[serial] = ("good", None, None)
        else:
            result[serial] = ("revoked", _aware(row.revoked_at), row.reason)
    return result


_impostors: dict[bytes, core_ocsp.ResponderInfo] = {}
_impostor_lock = threading.Lock()


def impostor(responder: core_ocsp.ResponderInfo) -> core_ocsp.ResponderInfo:
    """A look-alike of ``responder``: same subject, validity and extensions, but self-signed by an
    ephemeral P-256 key the CA never certified. Made once per process and responder, never stored."""
    with _impostor_lock:
        found = _impostors.get(responder.certificate_der)
        if found is not None:
            return found
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
        found = core_ocsp.ResponderInfo(der, ax509.Certificate.load(der).public_key.sha1, "sha256_ecdsa",
                                        lambda data: key.sign(data, ec.ECDSA(hashes.SHA256())))
        _impostors[responder.certificate_der] = found
        return found


def ocsp_response(behaviour: str, responder: core_ocsp.ResponderInfo, statuses: list[core_ocsp.SingleStatus],
                  now: dt.datetime, nonce: bytes | None, validity_hours: int) -> bytes:
    """The body of a misbehaving OCSP answer; ``statuses`` are the true ones as of ``now``."""
    if behaviour in STATUS_ONLY:
        return STATUS_ONLY[behaviour]
    produced_at = now.replace(microsecond=0)
    if behaviour == "wrong-key":
        responder = impostor(responder)
    elif behaviour == "stale":
        # Only the times are wrong: the window ended an hour ago.
        next_update = produced_at - dt.timedelta(hours=1)
        this_update = produced_at = next_update - dt.timedelta(hours=validity_hours)
        statuses = [dataclasses.replace(s, this_update=this_update, next_update=next_update) for s in statuses]
    elif behaviour == "wrong-serial":
        statuses = [core_ocsp.SingleStatus(dataclasses.replace(s.cert_id, serial=s.cert_id.serial + 1), "good",
                                           s.this_update, s.next_update, archive_cutoff=s.archive_cutoff) for s in statuses]
    elif behaviour == "no-nonce":
        nonce = None
    elif behaviour != "slow":
        raise QTSPError(Kind.MALFORMED, f"{behaviour!r} is not an OCSP behaviour")
    return core_ocsp.build_response(responder, statuses, produced_at, nonce)


# --- CRLs: misbehaving, and as of another time; built on the fly, never stored ----------------


def _entries(session: Session, ca: CertificateAuthority, at: dt.datetime, this_update: dt.datetime) -> list[crl_svc.Row]:
    query = (
        select(Certificate.serial, Revocation.revoked_at, Revocation.reason)
        .join_from(Revocation, Certificate, Revocation.certificate_id == Certificate.id)
        .where(Certificate.issuer_id == ca.id, Revocation.revoked_at <= at)
    )
    if not crl_svc.is_qualified_issuing_ca(ca):
        query = query.where(Certificate.not_after >= this_update)  # as crl_svc: only qualified CAs keep expired entries
    return [(int(serial, 16), _aware(revoked_at), reason) for serial, revoked_at, reason in session.execute(query)]


_wrong_keys: dict[str, PrivateKey] = {}


def _wrong_key(key_type: str) -> PrivateKey:
    with _impostor_lock:
        if key_type not in _wrong_keys:
            _wrong_keys[key_type] = generate_private_key(key_type)
        return _wrong_keys[key_type]


def _build(sandbox: Sandbox, ca_id: str, at: dt.datetime, this_update: dt.datetime, *, wrong_key: bool = False) -> bytes:
    """A full CRL of ``ca_id`` listing what was revoked at ``at``, numbered like the newest stored
    one, announcing no delta (there is none to match it)."""
    with sandbox.transaction() as session:
        ca = _ca(session, ca_id)
        number = session.execute(select(func.max(CrlRecord.number)).where(CrlRecord.issuer_id == ca.id)).scalar_one()
        this_update = this_update.astimezone(dt.timezone.utc).replace(microsecond=0)
        entries = _entries(session, ca, at, this_update)
        params = core_crl.CrlParams(
            number=number or 0, this_update=this_update, next_update=this_update + crl_svc.validity(sandbox, ca),
            expired_certs_on_crl=ca.not_before if crl_svc.is_qualified_issuing_ca(ca) else None)
        cert_der, key_type, key_ref = ca.cert_der, ca.key.key_type, ca.key.ref
    signer = _wrong_key(key_type) if wrong_key else sandbox.backend(key_ref).signer(key_ref)  # type: ignore[arg-type]
    return core_crl.build_crl(cert_der, signer, params, entries)  # type: ignore[arg-type]


def crl_as_of(sandbox: Sandbox, ca_id: str, at: dt.datetime) -> bytes:
    """The CA's CRL as it would have been (or will be) at ``at``: thisUpdate ``at``, the entries revoked by then."""
    return _build(sandbox, ca_id, at, at)


def misbehaving_crl(sandbox: Sandbox, ca_id: str, behaviour: str, now: dt.datetime) -> bytes:
    if behaviour == "expired-crl":
        # Every revocation up to now, so only the time is wrong: nextUpdate passed an hour ago.
        with sandbox.transaction() as session:
            validity = crl_svc.validity(sandbox, _ca(session, ca_id))
        return _build(sandbox, ca_id, now, now - dt.timedelta(hours=1) - validity)
    if behaviour == "crl-wrong-key":
        return _build(sandbox, ca_id, now, now, wrong_key=True)
    raise QTSPError(Kind.MALFORMED, f"{behaviour!r} is not a CRL behaviour")
