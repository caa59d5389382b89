"""The 2-QWAC issuing CA (issue 18), made on first need under the sandbox root, as ``browser_hierarchy`` makes
the browser hierarchy: the first ``qtsp issue two-qwac`` (CLI, API) makes ``two-qwac-ca`` with a new key from
the sandbox's key backend, its delegated OCSP responder, its certificate registered with the root (OCSP and
the root's ARL answer for it), stored in one transaction with its audit event (``ca.create``,
``first_need: true``), and published (AIA ``/ca/two-qwac-ca.der``, CRL ``/crl/two-qwac-ca.crl``). Two
processes racing: the unique CA id lets one commit win, the other uses the winner's.

It is listed on the sandbox Trusted List as a CA/QC service (TS 119 612 5.5.1 ``Svctype/CA/QC``) with the
additional service information ForWebSiteAuthentication (5.5.9.4): a 2-QWAC is a qualified certificate for
website authentication (Regulation (EU) No 910/2014 art. 45 as amended by (EU) 2024/1183; TS 119 411-5
V2.1.1 clause 4), which is what a relying party checks the service for (TS 119 411-5 6.2.2 step 4 asks that
the 2-QWAC be a QWAC under the Trusted List). TS 119 612 V2.x has no URI that tells 1-QWAC and 2-QWAC services
apart; the certificate's EKU (id-kp-tls-binding) and policy (QNCP-w-gen) do.

Made on the real clock whatever ``--at`` says (CA rows serve every client afterwards).
"""

from __future__ import annotations


from ca_store import repositories as repo

from ..clock import real_utcnow
from ..core import profiles
from ..core.errors import Kind, QTSPError
from ..core.types import IssuerId
from . import authorities
from .authorities import ROOT_ID, Plan
from .context import Sandbox
from .revocation import published

TWO_QWAC_CA_ID = IssuerId("two-qwac-ca")
TWO_QWAC_ROLE = "two-qwac"
COMMON_NAME = "qtsp Sandbox 2-QWAC CA"
VALIDITY_DAYS = 10 * 365  # as the other issuing CAs (qtsp.toml's qwac_ca/qseal_ca default)
ACTOR = "cli"


def two_qwac_ca(sandbox: Sandbox, *, actor: str = ACTOR) -> IssuerId:
    """The newest 2-QWAC issuing CA; made first if this sandbox has none."""
    found = _newest(sandbox)
    if found is not None:
        return found
    now = real_utcnow()
    authorities.ensure_ca_status(sandbox, now, actor=actor)  # the new CA certificate names the root's responder
    root = authorities.load(sandbox, ROOT_ID)
    days = min(VALIDITY_DAYS, (root.cert.not_valid_after_utc - now).days - 1)
    plan = Plan(TWO_QWAC_CA_ID, TWO_QWAC_ROLE, profiles.TWO_QWAC_ISSUING_CA.with_validity(days), COMMON_NAME,
                root.issuer)
    made, _ = authorities.make_ca(sandbox, plan, now)
    authorities.store_first_need(sandbox, [made], now, actor=actor, what="the 2-QWAC CA")
    authorities.presign_status(sandbox, now)  # its certificate's OCSP answer, by the root's responder
    published(sandbox)  # OCSP workers pick up the new issuer
    found = _newest(sandbox)
    if found is None:  # pragma: no cover - just stored above
        raise QTSPError(Kind.STORAGE, "the 2-QWAC CA was made but cannot be read back")
    return found


def _newest(sandbox: Sandbox) -> IssuerId | None:
    with sandbox.transaction() as session:
        try:
            ca = repo.ca_for_role(session, TWO_QWAC_ROLE)
        except QTSPError as exc:
            if exc.kind is Kind.NOT_FOUND:
                return None
            raise
        revoked = authorities.revocation_of(session, ca)
        if revoked is not None:
            raise QTSPError(Kind.POLICY, f"the 2-QWAC CA {ca.id} was revoked ({revoked.reason}): roll it over "
                            f"(`qtsp keys rotate --ca {ca.id}`) first")
        return ca.id
