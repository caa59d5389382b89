"""CRL publication (RFC 5280 5): which CRL a request for ``/crl/<ca>.crl`` gets, in three steps.

1. As of another time (time travel): the full CRL as of then, built on the fly (thisUpdate then, the
   revocations up to then). There is no delta CRL as of another time: that full CRL lists every
   revocation up to it and announces no delta.
2. A CRL fault set on the CA by the simulator (an entry of ``services.behaviours.BEHAVIOURS``): the
   correct CRL's plan, made wrong by the fault, built on the fly.
3. Otherwise the stored CRL (the scheduler keeps it fresh), made on demand when there is none yet or
   it is past its nextUpdate.

What steps 1 and 2 build is never stored, and no cache may keep it (``number`` None).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Callable

from ..clock import utcnow
from ..core.errors import Kind, QTSPError
from ..core.types import IssuerId
from ..services import crl as crl_svc
from ..services.behaviours import BEHAVIOURS, Lookalikes
from ..services.context import Sandbox
from .simulator import BehaviourWatch


@dataclass(frozen=True)
class CrlAnswer:
    der: bytes
    number: int | None = None  # a stored CRL's number; None: built for this request only
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None


class CrlPublisher:
    def __init__(self, sandbox: Sandbox, watch: BehaviourWatch, now: Callable[[], dt.datetime] = utcnow,
                 lookalikes: Lookalikes | None = None) -> None:
        self.sandbox = sandbox
        self.watch = watch
        self.now = now
        self.lookalikes = lookalikes or Lookalikes()  # the wrong-key fault's stranger keys

    def answer(self, ca_id: IssuerId, *, delta: bool = False, at: dt.datetime | None = None) -> CrlAnswer:
        if at is not None:
            if delta:
                raise QTSPError(Kind.NOT_FOUND, f"no delta CRL of {ca_id} as of another time: the full CRL as of "
                                                "then lists every revocation up to it and announces no delta")
            return CrlAnswer(crl_svc.build_unstored(self.sandbox, ca_id, crl_svc.plan_unstored(self.sandbox, ca_id, at)))
        now = self.now()
        if not delta:
            behaviour = self.watch.fresh().crl(ca_id)
            if behaviour is not None:
                fault = BEHAVIOURS[behaviour.behaviour]
                assert fault.crl is not None, f"{behaviour.behaviour} is not a CRL behaviour"
                plan = fault.crl(crl_svc.plan_unstored(self.sandbox, ca_id, now), self.lookalikes)
                return CrlAnswer(crl_svc.build_unstored(self.sandbox, ca_id, plan))
        record = crl_svc.current(self.sandbox, ca_id, now, delta=delta)
        return CrlAnswer(record.der, record.number, record.this_update, record.next_update)
