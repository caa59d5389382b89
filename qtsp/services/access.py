"""Who may act on what: a caller's scope, checked in the services so that every front end (the REST API
today, the portal tomorrow) gets the same answer.

A scope restricts a token to some PSPs (organizationIdentifier), some certificate kinds (qwac, qsealc,
...) and some issuing CAs; an empty dimension is not restricted. What lies outside the scope answers
exactly as if it did not exist (the same error, the same words as a real miss), so a scoped caller
learns nothing about other PSPs' certificates. CA-wide things (responder behaviours, NCA credentials)
are for callers restricted by CA at most: a token scoped to PSPs or kinds does not see them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from ca_store.models import Certificate

from ..core.errors import Kind, QTSPError
from ..core.names import parse_org_id
from ..core.profiles import CERTIFICATE_KINDS, PROFILES
from ..core.types import IssuerId, SerialHex

MAX_ENTRIES = 100  # per dimension


def kinds_of(profile: str) -> frozenset[str]:
    """The certificate kinds a profile is (its tags that are kinds): qwac-browser is a qwac."""
    found = PROFILES.get(profile)
    return frozenset() if found is None else frozenset(found.tags) & frozenset(CERTIFICATE_KINDS)


@dataclass(frozen=True)
class Scope:
    org_ids: frozenset[str] = field(default_factory=frozenset)
    kinds: frozenset[str] = field(default_factory=frozenset)
    cas: frozenset[str] = field(default_factory=frozenset)

    @property
    def unrestricted(self) -> bool:
        return not (self.org_ids or self.kinds or self.cas)

    def allows_org(self, org_id: str | None) -> bool:
        return not self.org_ids or org_id in self.org_ids

    def allows_profile(self, profile: str) -> bool:
        return not self.kinds or bool(kinds_of(profile) & self.kinds)

    def allows_ca(self, issuer_id: str) -> bool:
        return not self.cas or issuer_id in self.cas

    def allows(self, *, org_id: str | None, profile: str, issuer_id: str) -> bool:
        return self.allows_org(org_id) and self.allows_profile(profile) and self.allows_ca(issuer_id)

    def allows_ca_wide(self, issuer_id: str | None = None) -> bool:
        """CA-wide objects: for a caller not restricted to PSPs or kinds (and, if restricted by CA, that CA)."""
        if self.org_ids or self.kinds:
            return False
        if issuer_id is None:  # not of one CA (an NCA credential): for unrestricted callers only
            return not self.cas
        return self.allows_ca(issuer_id)

    def profiles(self) -> frozenset[str] | None:
        """The profiles a kinds restriction allows (None: every profile)."""
        return None if not self.kinds else frozenset(n for n in PROFILES if kinds_of(n) & self.kinds)

    def as_dict(self) -> dict[str, list[str]]:
        return {"org_ids": sorted(self.org_ids), "kinds": sorted(self.kinds), "cas": sorted(self.cas)}

    def to_json(self) -> str | None:
        return None if self.unrestricted else json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | None) -> Scope:
        """The stored scope; anything unreadable is a scope that allows nothing (fail closed)."""
        if text is None:
            return EVERYTHING
        try:
            data = json.loads(text)
            scope = cls(frozenset(data["org_ids"]), frozenset(data["kinds"]), frozenset(data["cas"]))
        except (ValueError, KeyError, TypeError):
            return NOTHING
        return scope if not scope.unrestricted else NOTHING

    def describe(self) -> str:
        if self.unrestricted:
            return "everything"
        parts = [f"{name} {','.join(sorted(values))}" for name, values in
                 (("PSPs", self.org_ids), ("kinds", self.kinds), ("CAs", self.cas)) if values]
        return "; ".join(parts)


EVERYTHING = Scope()
# What a corrupt stored scope becomes: an organizationIdentifier no PSP can have (the grammar needs a
# type prefix), so nothing is allowed.
NOTHING = Scope(org_ids=frozenset({"-"}))


def make_scope(org_ids: Any = (), kinds: Any = (), cas: Any = ()) -> Scope:
    """A scope from user input, checked: each value well formed, known kinds, at most MAX_ENTRIES each."""
    def strings(values: Any, what: str) -> list[str]:
        if isinstance(values, str) or not all(isinstance(v, str) for v in values):
            raise QTSPError(Kind.MALFORMED, f"scope {what}: a list of strings")
        values = list(values)
        if len(values) > MAX_ENTRIES:
            raise QTSPError(Kind.MALFORMED, f"scope {what}: at most {MAX_ENTRIES}")
        return values

    orgs = [parse_org_id(o).value for o in strings(org_ids, "org ids")]
    kind_list = strings(kinds, "kinds")
    unknown = [k for k in kind_list if k not in CERTIFICATE_KINDS]
    if unknown:
        raise QTSPError(Kind.MALFORMED, f"unknown certificate kind {unknown[0]!r}: one of {', '.join(CERTIFICATE_KINDS)}")
    ca_list = strings(cas, "CAs")
    return Scope(frozenset(orgs), frozenset(kind_list), frozenset(ca_list))


@dataclass(frozen=True)
class Caller:
    """An authenticated API token: who, what role, what scope."""

    token_id: int
    name: str
    role: str
    scope: Scope = EVERYTHING

    @property
    def actor(self) -> str:
        return f"api-token:{self.token_id}:{self.name}"[:128]


def no_certificate(serial: str) -> QTSPError:
    """The answer for a serial never issued, and for one outside the caller's scope: the same."""
    return QTSPError(Kind.NOT_FOUND, f"no certificate with serial {serial}")


def one_certificate(session: Session, serial: SerialHex, issuer_id: IssuerId | None, scope: Scope, *,
                    for_update: bool = False) -> Certificate:
    """The certificate with this serial (of this issuer) within ``scope``; what is outside it is not there."""
    query = select(Certificate).where(Certificate.serial == serial)
    if issuer_id is not None:
        query = query.where(Certificate.issuer_id == issuer_id)
    if for_update:
        query = query.with_for_update()
    found = [c for c in session.execute(query).scalars().all()
             if scope.allows(org_id=c.org_id, profile=c.profile, issuer_id=c.issuer_id)]
    if not found:
        raise no_certificate(serial)
    if len(found) > 1:
        raise QTSPError(Kind.MALFORMED, f"serial {serial} exists under several issuers; name the issuer")
    return found[0]
