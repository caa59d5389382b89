"""The simulator (issue 7): responder misbehaviours on demand, and answers as of another time.

A behaviour is a stored row (``responder_behaviours``): per CA or per certificate for OCSP, per
CA for CRLs. Nothing misbehaves unless an operator set it, every change is in the audit log, and
every change bumps the shared generation counter so that each OCSP worker drops its caches and
reloads the behaviours before its next answer (other hosts see the audit head move).

Here is the store side only: set, clear, list, and the snapshot the web workers consult. What each
behaviour does is an entry of ``behaviours.BEHAVIOURS``; the responder (``qtsp.responder``) applies
it, signed on demand and served with no-store.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from dataclasses import dataclass
from collections.abc import Iterable, Sequence

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import Certificate, CertificateAuthority, ResponderBehaviour

from ..clock import utcnow
from ..core.errors import Kind, QTSPError
from ..core.types import canonical_serial
from .access import EVERYTHING, Scope
from .behaviours import BEHAVIOURS, CRL as CRL, OCSP as OCSP
from .context import Sandbox
from .generation import Generation

WHOLE_CA = "*"
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
    serial = canonical_serial(text)
    found = session.execute(select(Certificate.id).where(Certificate.issuer_id == ca_id, Certificate.serial == serial)).first()
    if found is None:
        raise QTSPError(Kind.NOT_FOUND, f"CA {ca_id} issued no certificate with serial {serial}")
    return serial


def _delay_ms(sandbox: Sandbox, behaviour: str, delay_seconds: object) -> int | None:
    if not BEHAVIOURS[behaviour].takes_delay:
        if delay_seconds is not None:
            delayed = " or ".join(repr(name) for name, fault in BEHAVIOURS.items() if fault.takes_delay)
            raise QTSPError(Kind.MALFORMED, f"a delay applies to {delayed} only, not to {behaviour!r}")
        return None
    if delay_seconds is None:
        raise QTSPError(Kind.MALFORMED, f"{behaviour!r} needs a delay in seconds")
    if isinstance(delay_seconds, bool) or not isinstance(delay_seconds, (int, float)) or not math.isfinite(delay_seconds):
        raise QTSPError(Kind.MALFORMED, "the delay must be a finite number of seconds")
    limit = sandbox.config.simulator_max_delay_seconds
    if not 0 <= delay_seconds <= limit:
        raise QTSPError(Kind.POLICY, f"the delay must be 0-{limit:g} seconds (simulator_max_delay_seconds)")
    return round(delay_seconds * 1000)


def set_behaviour(sandbox: Sandbox, behaviour: str, ca_id: str, *, serial: str | None = None, target: str | None = None,
                  delay_seconds: float | None = None, actor: str = "cli", now: dt.datetime | None = None,
                  scope: Scope = EVERYTHING) -> Behaviour:
    """Make ``ca_id``'s responder (or one certificate's answers) misbehave; replaces what that CA or
    certificate had for the same target. Refuses bad input before anything is written. A CA the caller's
    ``scope`` does not reach (access.Scope.allows_ca_wide) is answered as a CA that does not exist."""
    if not isinstance(behaviour, str) or behaviour not in BEHAVIOURS:
        raise QTSPError(Kind.MALFORMED, f"unknown behaviour {str(behaviour)[:40]!r}: one of {', '.join(BEHAVIOURS)}")
    wanted = BEHAVIOURS[behaviour].target
    if target is not None and target != wanted:
        raise QTSPError(Kind.MALFORMED, f"{behaviour!r} is a behaviour of the {wanted.upper()} publisher, not of {str(target)[:8]!r}")
    if wanted == CRL and serial is not None:
        raise QTSPError(Kind.MALFORMED, "CRL behaviours are per CA (one CRL covers every certificate of a CA): drop the serial")
    delay_ms = _delay_ms(sandbox, behaviour, delay_seconds)
    now = now or utcnow()
    try:
        with sandbox.transaction() as session:
            ca = _ca(session, ca_id)
            if not scope.allows_ca_wide(ca.id):
                raise QTSPError(Kind.NOT_FOUND, f"no CA {ca_id!r}")
            if wanted == OCSP and ca.ocsp_responder_der is None:
                raise QTSPError(Kind.POLICY, f"CA {ca.id} has no OCSP responder (its status is published by CRL only)")
            applies_to = WHOLE_CA if serial is None else _serial_of(session, ca.id, serial)
            row = session.execute(select(ResponderBehaviour).where(
                ResponderBehaviour.issuer_id == ca.id, ResponderBehaviour.target == wanted,
                ResponderBehaviour.scope == applies_to).with_for_update()).scalar_one_or_none()
            replaced = None if row is None else row.behaviour
            if row is None:
                row = ResponderBehaviour(issuer_id=ca.id, target=wanted, scope=applies_to)
                session.add(row)
            row.behaviour, row.delay_ms, row.created_at, row.created_by = behaviour, delay_ms, now, actor[:128]
            session.flush()
            repo.append_audit(session, at=now, actor=actor, action="simulator.behaviour.set", subject=f"behaviour:{row.id}",
                              details={"ca": ca.id, "target": wanted, "scope": applies_to, "behaviour": behaviour,
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


def clear_by_id(sandbox: Sandbox, behaviour_id: int, *, actor: str = "cli", now: dt.datetime | None = None,
                scope: Scope = EVERYTHING) -> Behaviour:
    now = now or utcnow()
    with sandbox.transaction() as session:
        row = session.execute(select(ResponderBehaviour).where(ResponderBehaviour.id == behaviour_id)
                              .with_for_update()).scalar_one_or_none()
        if row is None or not scope.allows_ca_wide(row.issuer_id):
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
