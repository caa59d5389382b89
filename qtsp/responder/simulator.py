"""The simulator's OCSP faults (issue 7), as a decorator over the rest of the chain.

When the operator set a behaviour for the CA a request is about, or for one of its certificates
(``qtsp scenarios responder set``), the answer is that behaviour's fault, an entry of
``services.behaviours.BEHAVIOURS``: signed on demand, never cached, never pre-signed. Otherwise the
request goes on, untouched. With no behaviour set anywhere (every real deployment) this costs one
truth test per request.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable

from ..clock import utcnow
from ..core import ocsp as core_ocsp
from ..services import simulator
from ..services.behaviours import BEHAVIOURS, Lookalikes, OcspTruth
from ..services.context import Sandbox
from ..services.ocsp import IssuerEntry
from ..services.simulator import Behaviour, Behaviours
from .freshness import Freshness
from .issuers import IssuerIndex
from .source import Answer, Source, parse
from .statuses import Statuses


class BehaviourWatch:
    """The behaviours in force in this worker: a snapshot, reloaded when the freshness watch moves
    (every change to a behaviour bumps the generation counter after its commit)."""

    def __init__(self, sandbox: Sandbox, freshness: Freshness) -> None:
        self.sandbox = sandbox
        self.freshness = freshness
        self.current: Behaviours = simulator.load(sandbox)
        freshness.on_reload(self.reload)

    def reload(self) -> None:
        self.current = simulator.load(self.sandbox)

    def fresh(self) -> Behaviours:
        """The snapshot, as fresh as the OCSP answers (for the CRL publisher and /healthz)."""
        self.freshness.poll(time.monotonic())
        return self.current


class SimulatorSource:
    def __init__(self, inner: Source, watch: BehaviourWatch, index: IssuerIndex, statuses: Statuses,
                 max_delay_seconds: float, now: Callable[[], dt.datetime] = utcnow,
                 sleep: Callable[[float], None] = time.sleep, lookalikes: Lookalikes | None = None) -> None:
        self.inner = inner
        self.watch = watch
        self.index = index
        self.statuses = statuses
        self.max_delay_seconds = max_delay_seconds
        self.now = now
        self.sleep = sleep
        self.lookalikes = lookalikes or Lookalikes()  # the wrong-key fault's look-alike responders

    def answer(self, request_der: bytes, at: dt.datetime | None = None) -> Answer:
        behaviours = self.watch.current
        if not behaviours:
            return self.inner.answer(request_der, at)
        request = parse(request_der)
        entry = None if request is None else self.index.issuer_of(request)
        if request is None or entry is None:
            return self.inner.answer(request_der, at)  # malformed or unauthorized, as without a behaviour
        behaviour = behaviours.ocsp(entry.ca_id, [c.serial for c in request.cert_ids])
        if behaviour is None:
            return self.inner.answer(request_der, at)
        return self._fault(behaviour, entry, request, at)

    def _fault(self, behaviour: Behaviour, entry: IssuerEntry, request: core_ocsp.Request,
               at: dt.datetime | None) -> Answer:
        """A deliberately wrong answer, as the operator asked: signed now (or as of ``at``), never kept."""
        fault = BEHAVIOURS[behaviour.behaviour]
        assert fault.ocsp is not None, f"{behaviour.behaviour} is not an OCSP behaviour"
        if fault.takes_delay and behaviour.delay_ms:
            self.sleep(min(behaviour.delay_ms / 1000, self.max_delay_seconds))
        now = self.now() if at is None else at
        truth = OcspTruth(self.index.responder_at(entry, at), now.replace(microsecond=0), request.nonce,
                          self.statuses.validity_hours, lambda: self.statuses.for_request(entry, request, now, at),
                          self.lookalikes)
        return Answer(fault.ocsp(truth), "simulated", no_store=True)
