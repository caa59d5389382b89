"""OCSP answers and CRLs as composed sources (RFC 6960, RFC 5019; RFC 5280): above services, below web.

A request flows down the OCSP chain until a piece answers it:

    CachingSource      the in-process cache keyed by request bytes (freshness: generation counter
      Guarded            and store change counter); a failure below becomes internalError
        SimulatorSource  a behaviour set for this CA or certificate: its fault, never cached
          AsOfSource     as of another time (time travel): signed on demand with then's statuses and responder
            StoreSource  now: the pre-signed answer, the static one for a serial never issued (IssuedSerials
                         says so without the store), or one signed on demand (nonce, several certificates)

The web layer (``qtsp.web.ocsp``, ``qtsp.web.crl``) is HTTP in, bytes out around ``Responder``. The
store is reached through services only (``services.ocsp``, ``services.ocsp_status``, ``services.crl``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from collections.abc import Callable

from ..clock import utcnow
from ..services import ocsp_status
from ..services.context import Sandbox
from ..services.generation import ISSUED, Generation
from ..services.behaviours import Lookalikes
from ..services.simulator import Behaviours
from .caching import CachingSource
from .crl import CrlAnswer, CrlPublisher
from .freshness import Freshness
from .issued import IssuedSerials
from .issuers import IssuerIndex
from .simulator import BehaviourWatch, SimulatorSource
from .source import Answer, Guarded, Source
from .statuses import Statuses
from .store import AsOfSource, OnDemand, StoreSource

__all__ = ["Answer", "CrlAnswer", "Responder", "Source", "build"]


@dataclass(frozen=True)
class Responder:
    """What a web worker keeps for the whole process: the OCSP chain, the CRL publisher, the behaviours."""

    ocsp: Source
    crl: CrlPublisher
    behaviours: Callable[[], Behaviours]  # the snapshot in force, as fresh as the answers (/healthz)


def build(sandbox: Sandbox, now: Callable[[], dt.datetime] = utcnow) -> Responder:
    cfg = sandbox.config
    freshness = Freshness(Generation(sandbox.data_dir), lambda: ocsp_status.change_counter(sandbox))
    index = IssuerIndex(sandbox)
    freshness.on_reload(index.reload)  # first: the behaviours' CAs and the answers' responders
    watch = BehaviourWatch(sandbox, freshness)
    statuses = Statuses(sandbox, cfg.ocsp_validity_hours)
    freshness.on_drop(statuses.clear)
    on_demand = OnDemand(index, statuses, now)
    issued = IssuedSerials(sandbox, Generation(sandbox.data_dir, ISSUED))
    freshness.on_reload(issued.refresh)  # certificates issued on another host sharing the store
    lookalikes = Lookalikes()  # the wrong-key faults' keys, made once for this worker
    chain = CachingSource(
        Guarded(SimulatorSource(AsOfSource(StoreSource(sandbox, index, on_demand, now, issued), index, on_demand),
                                watch, index, statuses, cfg.simulator_max_delay_seconds, now,
                                lookalikes=lookalikes)),
        freshness, now)
    return Responder(chain, CrlPublisher(sandbox, watch, now, lookalikes), watch.fresh)
