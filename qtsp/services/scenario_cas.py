"""The simulator's CAs (issue 7), made on first use under the sandbox root: ``scenarios-ca`` (a service of
the sandbox Trusted List), ``scenarios-unlisted-ca`` (not listed) and ``scenarios-sub-ca`` (the
intermediate the missing-intermediate scenario leaves out). Normal issuance never uses them."""

from __future__ import annotations

import datetime as dt

from ..core import profiles
from ..core.errors import Kind, QTSPError
from ..core.types import IssuerId
from . import authorities
from .authorities import ROOT_ID, Issuer, LoadedCA, NewCA, Plan
from .context import Sandbox
from ..clock import utcnow
from .revocation import published

SCENARIOS_CA, UNLISTED_CA, SUB_CA = IssuerId("scenarios-ca"), IssuerId("scenarios-unlisted-ca"), IssuerId("scenarios-sub-ca")
CA_ROLES = {SCENARIOS_CA: "scenarios", UNLISTED_CA: "scenarios-unlisted", SUB_CA: "scenarios-sub"}
CA_NAMES = {
    SCENARIOS_CA: "qtsp Sandbox Scenarios CA",
    UNLISTED_CA: "qtsp Sandbox Unlisted Scenarios CA",
    SUB_CA: "qtsp Sandbox Scenarios Sub-CA",
}
PARENTS = {SCENARIOS_CA: ROOT_ID, UNLISTED_CA: ROOT_ID, SUB_CA: SCENARIOS_CA}
BACKDATE = dt.timedelta(days=2 * 365)  # so that expired scenarios still fall inside their CA's validity
ACTOR = "simulator"

ScenarioCA = LoadedCA  # a simulator CA: its row, certificate and Signer


def ensure_cas(sandbox: Sandbox, now: dt.datetime | None = None) -> dict[IssuerId, ScenarioCA]:
    """The simulator's CAs, made on first use (signed by the sandbox root, which must be online)."""
    now = now or utcnow()
    cas = authorities.load_many(sandbox, CA_ROLES)
    if len(cas) == len(CA_ROLES):
        return cas
    if cas:
        raise QTSPError(Kind.CONFLICT, f"the simulator CAs are half there ({', '.join(sorted(cas))}); the store is inconsistent")
    authorities.ensure_ca_status(sandbox, now, actor=ACTOR)  # their certificates name the root's responder
    made: list[NewCA] = []
    issuers: dict[str, Issuer] = {ROOT_ID: authorities.load(sandbox, ROOT_ID).issuer}
    for ca_id, parent in PARENTS.items():
        profile = profiles.SCENARIOS_SUB_CA if ca_id == SUB_CA else profiles.SCENARIOS_CA
        plan = Plan(ca_id, CA_ROLES[ca_id], profile, CA_NAMES[ca_id], issuers[parent], backdate=BACKDATE)
        new, issuers[ca_id] = authorities.make_ca(sandbox, plan, now)
        made.append(new)
    authorities.insert_once(sandbox, made, now, actor=ACTOR, extra={"simulator": True})
    authorities.presign_status(sandbox, now)
    cas = authorities.load_many(sandbox, CA_ROLES)
    authorities.publish(sandbox, {ca_id: ca.cert for ca_id, ca in cas.items() if ca_id != SUB_CA})
    published(sandbox)  # OCSP workers pick up the new issuers
    return cas
