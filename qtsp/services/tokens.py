"""API tokens: bearer secrets for the REST API, kept only as a SHA-256 of the secret.

A secret is ``qtsp_`` + 32 random bytes in URL-safe base64 (no padding). It is returned once, by
``create``, and never stored, logged or put into the audit log. Looking a presented secret up by
its hash is the comparison: the database index compares digests of a 256-bit random value, so
nothing about the secret leaks through timing.

Every token expires (90 days unless told otherwise, at most MAX_VALID_DAYS) and may carry a scope
(``access.Scope``: PSPs, certificate kinds, CAs) that the services enforce.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import select

from ca_store import repositories as repo
from ca_store.models import ApiToken

from ..clock import real_utcnow, utcnow
from ..core.errors import Kind, QTSPError
from .access import EVERYTHING, Caller, Scope
from .context import Sandbox

PREFIX = "qtsp_"
SECRET_BYTES = 32
ROLES = ("operator", "auditor")
MAX_NAME = 64
DEFAULT_VALID_DAYS = 90
MAX_VALID_DAYS = 730
# What a well-formed secret looks like; anything else is refused before any hashing or lookup.
_SECRET_RE = re.compile(r"qtsp_[A-Za-z0-9_-]{43}")
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ._@:+-]{0,63}")


@dataclass(frozen=True)
class TokenInfo:
    id: int
    name: str
    role: str
    created_at: dt.datetime
    revoked_at: dt.datetime | None
    expires_at: dt.datetime
    scope: Scope = EVERYTHING

    def status(self, now: dt.datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if self.expires_at <= now else "active"

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role, "created_at": self.created_at.isoformat(),
                "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat(),
                "expires_at": self.expires_at.isoformat(), "status": self.status(real_utcnow()),
                "scope": None if self.scope.unrestricted else self.scope.as_dict()}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
        raise QTSPError(Kind.MALFORMED, f"token name must be 1-{MAX_NAME} characters: letters, digits, "
                                        "space and ._@:+- (starting with a letter or digit)")
    return name


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise QTSPError(Kind.MALFORMED, f"unknown token role {role!r}: one of {', '.join(ROLES)}")
    return role


def expiry(now: dt.datetime, *, valid_days: int | None = None, expires: dt.datetime | None = None) -> dt.datetime:
    """When a token made ``now`` expires: ``expires``, or ``valid_days`` from now (default 90); within
    MAX_VALID_DAYS and in the future, or QTSPError(MALFORMED)."""
    if valid_days is not None and expires is not None:
        raise QTSPError(Kind.MALFORMED, "give the expiry as a number of days or as a date, not both")
    if expires is None:
        days = DEFAULT_VALID_DAYS if valid_days is None else valid_days
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_VALID_DAYS:
            raise QTSPError(Kind.MALFORMED, f"a token is valid 1-{MAX_VALID_DAYS} days")
        return now.replace(microsecond=0) + dt.timedelta(days=days)
    if expires.tzinfo is None:
        raise QTSPError(Kind.MALFORMED, "the expiry needs a time zone (e.g. 2027-03-01T00:00:00Z)")
    if expires <= now:
        raise QTSPError(Kind.MALFORMED, "the expiry is in the past")
    if expires > now + dt.timedelta(days=MAX_VALID_DAYS):
        raise QTSPError(Kind.MALFORMED, f"a token is valid at most {MAX_VALID_DAYS} days")
    return expires.astimezone(dt.timezone.utc)


def create(sandbox: Sandbox, name: str, role: str, *, actor: str = "cli", now: dt.datetime | None = None,
           valid_days: int | None = None, expires: dt.datetime | None = None,
           scope: Scope = EVERYTHING) -> tuple[int, str]:
    """A new token: returns (id, secret). The secret is not kept; show it to the caller once."""
    _check_name(name)
    _check_role(role)
    now = now or real_utcnow()  # expiry is measured on the real clock (see authenticate)
    expires_at = expiry(now, valid_days=valid_days, expires=expires)
    secret = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    with sandbox.transaction() as session:
        token = ApiToken(name=name, role=role, token_hash=_digest(secret), created_at=now, revoked_at=None,
                         expires_at=expires_at, scope=scope.to_json())
        session.add(token)
        session.flush()
        repo.append_audit(session, at=now, actor=actor, action="api_token.create", subject=f"token:{token.id}",
                          details={"name": name, "role": role, "secret_sha256": token.token_hash, "expires_at": expires_at.isoformat(),
                                   "scope": None if scope.unrestricted else scope.as_dict()})
        token_id = token.id
    return token_id, secret


def authenticate(sandbox: Sandbox, secret: str, *, now: dt.datetime | None = None) -> Caller:
    """The caller a valid, unrevoked, unexpired token names; otherwise QTSPError(UNAUTHORISED)."""
    if not isinstance(secret, str) or not _SECRET_RE.fullmatch(secret):
        raise QTSPError(Kind.UNAUTHORISED, "invalid API token")
    digest = _digest(secret)
    # The real clock: time travel (X-QTSP-Time) must not bring an expired token back.
    now = now or real_utcnow()
    with sandbox.transaction() as session:
        token = session.execute(select(ApiToken).where(ApiToken.token_hash == digest)).scalar_one_or_none()
        if token is None or token.revoked_at is not None or token.role not in ROLES:
            raise QTSPError(Kind.UNAUTHORISED, "invalid or revoked API token")
        if token.expires_at is None or token.expires_at <= now:
            raise QTSPError(Kind.UNAUTHORISED, "expired API token")
        return Caller(token.id, token.name, token.role, Scope.from_json(token.scope))


def revoke_token(sandbox: Sandbox, token_id: int, *, actor: str = "cli", now: dt.datetime | None = None) -> TokenInfo:
    now = now or utcnow()
    with sandbox.transaction() as session:
        token = session.execute(select(ApiToken).where(ApiToken.id == token_id).with_for_update()).scalar_one_or_none()
        if token is None:
            raise QTSPError(Kind.NOT_FOUND, f"no API token {token_id}")
        if token.revoked_at is not None:
            raise QTSPError(Kind.ALREADY_REVOKED, f"API token {token_id} was revoked at {token.revoked_at:%Y-%m-%d %H:%M:%S}Z")
        token.revoked_at = now
        session.flush()
        repo.append_audit(session, at=now, actor=actor, action="api_token.revoke", subject=f"token:{token.id}",
                          details={"name": token.name, "role": token.role})
        return _info(token)


def list_tokens(sandbox: Sandbox) -> list[TokenInfo]:
    with sandbox.transaction() as session:
        return [_info(t) for t in session.execute(select(ApiToken).order_by(ApiToken.id)).scalars()]


def _info(token: ApiToken) -> TokenInfo:
    return TokenInfo(token.id, token.name, token.role, token.created_at, token.revoked_at, token.expires_at,
                     Scope.from_json(token.scope))
