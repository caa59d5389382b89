"""The browser QWAC hierarchy in a data dir made before there were two (issue 16): made on first need.

``qtsp init`` makes both hierarchies. A data dir from before has one root, whose QWAC CA (``qwac-ca``)
asserts serverAuth and clientAuth: it stays the non-browser (mutual-TLS) hierarchy, untouched. The first
request for a browser QWAC (``--purpose server``, ``--browser``, from the CLI, the API or a bulk line) makes
the browser root and its serverAuth-only issuing CA, new keys in the sandbox's key backend, stored in one
transaction with an audit event each (``ca.create``, ``first_need: true``). Two processes racing to make
them: one commit wins (unique CA ids), the other uses the winner's.

They are made on the real clock whatever ``--at`` or ``X-QTSP-Time`` says: CA rows and files serve every
client afterwards, and what is made as of another time is never stored where real-clock clients read it.
"""

from __future__ import annotations


from ca_store import repositories as repo

from ..clock import real_utcnow
from ..core.errors import Kind, QTSPError
from ..core.types import IssuerId
from . import authorities
from .authorities import QWAC_BROWSER_ROLE
from .context import Sandbox
from .revocation import published

ACTOR = "cli"


def browser_ca(sandbox: Sandbox, *, actor: str = ACTOR) -> IssuerId:
    """The newest browser QWAC issuing CA; the browser hierarchy made first if this data dir has none."""
    found = _newest(sandbox)
    if found is not None:
        return found
    now = real_utcnow()
    made = authorities.make_browser_hierarchy(sandbox, now)
    authorities.store_first_need(sandbox, made, now, actor=actor, what="the browser hierarchy")
    published(sandbox)  # OCSP workers pick up the new issuer
    found = _newest(sandbox)
    if found is None:  # pragma: no cover - just stored above
        raise QTSPError(Kind.STORAGE, "the browser QWAC CA was made but cannot be read back")
    return found


def _newest(sandbox: Sandbox) -> IssuerId | None:
    with sandbox.transaction() as session:
        try:
            return repo.ca_for_role(session, QWAC_BROWSER_ROLE).id
        except QTSPError as exc:
            if exc.kind is Kind.NOT_FOUND:
                return None
            raise
