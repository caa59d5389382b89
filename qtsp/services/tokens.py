"""API tokens: bearer secrets for the REST API, kept only as a SHA-256 of the secret.

A secret is ``qtsp_`` + 32 random bytes in URL-safe base64 (no padding). It is returned once, by
``create``, and never stored, logged or put into the audit log. Looking a presented secret up by
its hash is the comparison: the database index compares digests of a 256-bit random value, so
nothing about the secret leaks through timing.
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

from ..clock import utcnow
from ..core.errors import Kind, QTSPError
from .context import Sandbox

PREFIX = "qtsp_"
SECRET_BYTES = 32
ROLES = ("operator", "auditor")
MAX_NAME = 64
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

    def as_dict(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "role": self.role, "created_at": self.created_at.isoformat(),
                "revoked_at": None if self.revoked_at is None else self.revoked_at.isoformat()}


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


def create(sandbox: Sandbox, name: str, role: str, *, actor: str = "cli",
           now: dt.datetime | None = None) -> tuple[int, str]:
    """A new token: returns (id, secret). The secret is not kept; show it to the caller once."""
    _check_name(name)
    _check_role(role)
    now = now or utcnow()
    secret = PREFIX + secrets.token_urlsafe(SECRET_BYTES)
    with sandbox.transaction() as session:
        token = ApiToken(name=name, role=role, token_hash=_digest(secret), created_at=now, revoked_at=None)
        session.add(token)
        session.flush()
        repo.append_audit(session, at=now, actor=actor, action="api_token.create", subject=f"token:{token.id}",
                          details={"name": name, "role": role, "secret_sha256": token.token_hash})
        token_id = token.id
    return token_id, secret


def authenticate(sandbox: Sandbox, secret: str) -> tuple[int, str, str]:
    """(id, name, role) for a valid, unrevoked token; otherwise QTSPError(UNAUTHORISED)."""
    if not isinstance(secret, str) or not _SECRET_RE.fullmatch(secret):
        raise QTSPError(Kind.UNAUTHORISED, "invalid API token")
    digest = _digest(secret)
    with sandbox.transaction() as session:
        token = session.execute(select(ApiToken).where(ApiToken.token_hash == digest)).scalar_one_or_none()
        if token is None or token.revoked_at is not None or token.role not in ROLES:
            raise QTSPError(Kind.UNAUTHORISED, "invalid or revoked API token")
        return token.id, token.name, token.role


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
    return TokenInfo(token.id, token.name, token.role, token.created_at, token.revoked_at)
