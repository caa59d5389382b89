"""``qtsp audit verify``: walk the hash chain and report the first event that does not hold."""

from __future__ import annotations

from ca_store import repositories as repo

from ..core.audit import ChainProblem, verify_chain
from .context import Sandbox


def verify(sandbox: Sandbox) -> tuple[int, ChainProblem | None]:
    with sandbox.transaction() as session:
        events, head = repo.audit_chain(session)
    return len(events), verify_chain(events, head=head)
