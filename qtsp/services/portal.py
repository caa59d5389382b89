"""The browser portal's accounts, sessions and who may act on what (issue 20).

The portal issues, lists and revokes through the same services as the CLI and the REST API
(``issuance.issue``, ``revocation.revoke``, ``search``), handing them the signed-in principal's
``Scope``: a PSP account's scope is the organisations it registered, and an account that has
registered none gets ``access.NOTHING`` (never the empty, unrestricted scope), so authorisation fails
closed. Certificates outside the scope answer as if they did not exist (``access.no_certificate``).

Passwords are kept as scrypt hashes (the standard library's ``hashlib.scrypt``, RFC 7914 parameters in
the stored string); a session is a random 256-bit id in the browser's cookie and its SHA-256 here.
A session ends when it expires, when its user signs out, when its account is suspended or when the
API token it was opened with is revoked or expires: each request looks it up again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
import secrets
from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import ApiToken, PortalAccount, PortalAccountOrg, PortalSession

from .. import files
from ..clock import real_utcnow
from ..core.errors import Kind, QTSPError
from ..core.names import parse_org_id
from ..core.ncas import EBA_NCAS
from ..core.psd2 import parse_roles
from ..core.types import OrgId
from . import register, tokens
from .access import NOTHING, Scope
from .context import Sandbox
from .register import PSPView

ROLES = ("psp", "operator")
STATUSES = ("active", "suspended")
SESSION_HOURS = 8
MIN_PASSWORD = 12
MAX_PASSWORD = 256
_USERNAME_RE = re.compile(r"[a-z0-9][a-z0-9._@-]{2,63}")
_SESSION_RE = re.compile(r"[A-Za-z0-9_-]{43}")
# scrypt (RFC 7914) with N=2^17, r=8, p=1: the minimum of OWASP's Password Storage Cheat Sheet (2023) when
# Argon2id is not at hand (the standard library has scrypt). 128 MiB and about 0.5 s a hash on the 2-core test
# machine; the sign-in limits bound how often a client can make the server pay it. Each stored hash names
# its parameters, so raising them later leaves old hashes verifiable.
_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**17, 8, 1
_SCRYPT_MAXMEM = 256 * 1024 * 1024
# Signing in as an unknown user costs the same scrypt as a wrong password: no user enumeration by timing.
_DUMMY_HASH = f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${'00' * 16}${'00' * 32}"


@dataclass(frozen=True)
class KindChoice:
    """A certificate kind the portal offers: the one list its request form and its filters read."""

    kind: str  # an issue_request kind
    label: str
    domains: bool  # asks for DNS names
    purpose: bool = False  # asks for the TLS purpose (server, client, both): QWACs only


# The kinds a PSP can request in the portal. A new kind is one more line here.
PORTAL_KINDS: tuple[KindChoice, ...] = (
    KindChoice("qwac", "1-QWAC (website authentication, the TLS certificate itself)", True, purpose=True),
    KindChoice("qsealc", "QSealC (electronic seal)", False),
    KindChoice("two-qwac", "2-QWAC (signs TLS certificate bindings; TS 119 411-5)", True),
)


@dataclass(frozen=True)
class Principal:
    """Who is signed in: an account (PSP or operator) or an API token (operator or auditor role)."""

    kind: str  # account | token
    id: int
    name: str
    role: str  # psp | operator | auditor
    scope: Scope

    @property
    def actor(self) -> str:
        """As the audit log records what this principal did."""
        if self.kind == "token":
            return f"api-token:{self.id}:{self.name}"[:128]
        return f"portal:{self.name}"[:128]

    @property
    def is_operator(self) -> bool:
        return self.role == "operator" and self.scope.unrestricted

    @property
    def can_register(self) -> bool:
        return self.kind == "account" and self.role == "psp"


@dataclass(frozen=True)
class AccountView:
    id: int
    username: str
    role: str
    status: str
    created_at: dt.datetime
    org_ids: tuple[str, ...]


# --- the key that signs the portal's cookies and CSRF tokens ------------------------------------------------

SECRET_FILE = "portal-secret.key"  # in the data dir, 0600


def cookie_secret(sandbox: Sandbox) -> bytes:
    """The key Flask signs the session cookie (and flask-wtf its CSRF tokens) with: 32 random bytes in the data
    dir, made on first need (O_EXCL, so workers starting together agree on one), never in the store. Several
    hosts serving one sandbox need the same file."""
    path = sandbox.data_dir / SECRET_FILE
    try:
        files.write_new(path, secrets.token_hex(32).encode("ascii"), private=True, sync=True)
    except QTSPError as exc:
        if exc.kind is not Kind.CONFLICT:
            raise
    try:  # there already (another worker made it first): read it, never through a symlink
        with os.fdopen(files.open_read(path), "rb") as handle:
            value = handle.read(256).strip()
    except OSError as exc:
        raise QTSPError(Kind.STORAGE, f"cannot read the portal secret {path}: {exc.strerror}") from None
    if len(value) != 64:
        raise QTSPError(Kind.STORAGE, f"{path} is not a portal secret (64 hex digits); remove it to make a new one")
    return value


# --- passwords ------------------------------------------------------------------------------------------


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32)


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt" or int(n) > 2**20 or int(r) > 16 or int(p) > 4:
            return False
        return hmac.compare_digest(_scrypt(password, bytes.fromhex(salt), int(n), int(r), int(p)), bytes.fromhex(digest))
    except (ValueError, TypeError):
        return False


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise QTSPError(Kind.MALFORMED, f"a password has {MIN_PASSWORD}-{MAX_PASSWORD} characters")
    return password


def check_username(username: str) -> str:
    if not isinstance(username, str) or not _USERNAME_RE.fullmatch(username):
        raise QTSPError(Kind.MALFORMED, "a user name has 3-64 characters: lower-case letters, digits and ._@- "
                                        "(starting with a letter or digit)")
    return username


# --- accounts ---------------------------------------------------------------------------------------------


def create_account(sandbox: Sandbox, username: str, password: str, role: str = "psp", *, actor: str = "cli") -> AccountView:
    check_username(username)
    check_password(password)
    if role not in ROLES:
        raise QTSPError(Kind.MALFORMED, f"unknown portal role {role!r}: one of {', '.join(ROLES)}")
    hashed = hash_password(password)
    now = real_utcnow()
    with sandbox.transaction() as session:
        if session.execute(select(PortalAccount.id).where(PortalAccount.username == username)).first() is not None:
            raise QTSPError(Kind.CONFLICT, f"there is already a portal account {username!r}")
        row = PortalAccount(username=username, password_hash=hashed, role=role, status="active", created_at=now,
                            updated_at=now)
        session.add(row)
        session.flush()
        repo.append_audit(session, at=now, actor=actor, action="portal.account.create", subject=f"portal-account:{row.id}",
                          details={"username": username, "role": role})
        return AccountView(row.id, username, role, "active", now, ())


def set_account_status(sandbox: Sandbox, principal: Principal | None, account_id: int, status: str, *,
                       actor: str = "cli") -> AccountView:
    """Suspend or reactivate an account (operator only); suspending ends its sessions at once."""
    if principal is not None:
        require_operator(principal)
        actor = principal.actor
    if status not in STATUSES:
        raise QTSPError(Kind.MALFORMED, f"status is {' or '.join(STATUSES)}")
    now = real_utcnow()
    with sandbox.transaction() as session:
        row = session.get(PortalAccount, account_id, with_for_update=True)
        if row is None:
            raise QTSPError(Kind.NOT_FOUND, f"no portal account {account_id}")
        row.status, row.updated_at = status, now
        if status == "suspended":
            session.execute(delete(PortalSession).where(PortalSession.account_id == account_id))
        repo.append_audit(session, at=now, actor=actor, action=f"portal.account.{status}",
                          subject=f"portal-account:{account_id}", details={"username": row.username})
        return AccountView(row.id, row.username, row.role, row.status, row.created_at, _orgs_of(session, row.id))


def _orgs_of(session: Session, account_id: int) -> tuple[str, ...]:
    return tuple(session.execute(select(PortalAccountOrg.org_id).where(PortalAccountOrg.account_id == account_id)
                                 .order_by(PortalAccountOrg.org_id)).scalars())


def list_accounts(sandbox: Sandbox, principal: Principal | None = None) -> list[AccountView]:
    if principal is not None:
        require_reader(principal)
    with sandbox.transaction() as session:
        return [AccountView(a.id, a.username, a.role, a.status, a.created_at, _orgs_of(session, a.id))
                for a in session.execute(select(PortalAccount).order_by(PortalAccount.id)).scalars()]


def account_id(sandbox: Sandbox, username: str) -> int:
    with sandbox.transaction() as session:
        found = session.execute(select(PortalAccount.id).where(PortalAccount.username == username)).scalar_one_or_none()
    if found is None:
        raise QTSPError(Kind.NOT_FOUND, f"no portal account {username!r}; `qtsp portal list` shows them")
    return int(found)


def owners(sandbox: Sandbox) -> dict[str, str]:
    """org_id -> the user name of the account that registered it."""
    with sandbox.transaction() as session:
        rows = session.execute(select(PortalAccountOrg.org_id, PortalAccount.username)
                               .join(PortalAccount, PortalAccount.id == PortalAccountOrg.account_id)).all()
        return {org: user for org, user in rows}


# --- sessions ---------------------------------------------------------------------------------------------


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("ascii")).hexdigest()


def _open_session(session: Session, *, account_id: int | None, token_id: int | None, now: dt.datetime) -> str:
    session_id = secrets.token_urlsafe(32)
    session.execute(delete(PortalSession).where(PortalSession.expires_at <= now))  # expired ones, while here
    session.add(PortalSession(session_hash=_digest(session_id), account_id=account_id, token_id=token_id, created_at=now,
                              expires_at=now + dt.timedelta(hours=SESSION_HOURS)))
    return session_id


def _unauthorised() -> QTSPError:
    return QTSPError(Kind.UNAUTHORISED, "the user name or password is wrong, or the account is suspended")


def sign_in(sandbox: Sandbox, username: str, password: str) -> tuple[str, Principal]:
    """A new session for this account; the same error (and the same scrypt cost) for every refusal."""
    now = real_utcnow()
    with sandbox.transaction() as session:
        row = None
        if isinstance(username, str) and _USERNAME_RE.fullmatch(username):
            row = session.execute(select(PortalAccount).where(PortalAccount.username == username)).scalar_one_or_none()
        ok = password_matches(password if isinstance(password, str) else "", row.password_hash if row else _DUMMY_HASH)
        if row is None or not ok or row.status != "active":
            raise _unauthorised()
        session_id = _open_session(session, account_id=row.id, token_id=None, now=now)
        repo.append_audit(session, at=now, actor=f"portal:{row.username}", action="portal.sign_in",
                          subject=f"portal-account:{row.id}", details={})
        return session_id, _account_principal(session, row)


def sign_in_with_token(sandbox: Sandbox, secret: str) -> tuple[str, Principal]:
    """A new session for a valid API token (its secret is checked, then forgotten)."""
    caller = tokens.authenticate(sandbox, secret)
    now = real_utcnow()
    with sandbox.transaction() as session:
        session_id = _open_session(session, account_id=None, token_id=caller.token_id, now=now)
        repo.append_audit(session, at=now, actor=caller.actor, action="portal.sign_in", subject=f"token:{caller.token_id}",
                          details={})
    return session_id, Principal("token", caller.token_id, caller.name, caller.role, caller.scope)


def _account_principal(session: Session, row: PortalAccount) -> Principal:
    if row.role == "operator":
        return Principal("account", row.id, row.username, "operator", Scope())
    orgs = _orgs_of(session, row.id)
    # No organisation yet: a scope that allows nothing. Scope() with no org would allow every PSP.
    return Principal("account", row.id, row.username, "psp", Scope(org_ids=frozenset(orgs)) if orgs else NOTHING)


def principal(sandbox: Sandbox, session_id: str | None) -> Principal | None:
    """Who the session with this id is, now; None when it is unknown, expired or no longer entitled."""
    if not isinstance(session_id, str) or not _SESSION_RE.fullmatch(session_id):
        return None
    now = real_utcnow()
    with sandbox.transaction() as session:
        row = session.execute(select(PortalSession).where(PortalSession.session_hash == _digest(session_id))).scalar_one_or_none()
        if row is None or row.expires_at <= now:
            return None
        if row.account_id is not None:
            account = session.get(PortalAccount, row.account_id)
            if account is None or account.status != "active" or account.role not in ROLES:
                return None
            return _account_principal(session, account)
        token = session.get(ApiToken, row.token_id) if row.token_id is not None else None
        if token is None or token.revoked_at is not None or token.expires_at <= now or token.role not in tokens.ROLES:
            return None
        return Principal("token", token.id, token.name, token.role, Scope.from_json(token.scope))


def sign_out(sandbox: Sandbox, session_id: str | None) -> None:
    if isinstance(session_id, str) and _SESSION_RE.fullmatch(session_id):
        with sandbox.transaction() as session:
            session.execute(delete(PortalSession).where(PortalSession.session_hash == _digest(session_id)))


# --- authorisation ------------------------------------------------------------------------------------------


def require_operator(who: Principal) -> None:
    if not who.is_operator:
        raise QTSPError(Kind.UNAUTHORISED, "this needs the operator role")


def require_reader(who: Principal) -> None:
    """Sandbox-wide views: operators and auditors with an unrestricted scope."""
    if who.role not in ("operator", "auditor") or not who.scope.unrestricted:
        raise QTSPError(Kind.UNAUTHORISED, "this needs the operator or auditor role")


def require_writer(who: Principal) -> None:
    if who.role == "auditor":
        raise QTSPError(Kind.UNAUTHORISED, "an auditor token reads only")


# --- organisations ------------------------------------------------------------------------------------------


def nca_choices() -> dict[str, str]:
    """NCA id -> name, as the register knows them (the EBA list)."""
    return dict(EBA_NCAS)


def register_organisation(sandbox: Sandbox, who: Principal, *, nca_id: str, legal_name: str, roles: str,
                          locality: str, authorisation_number: str | None = None) -> PSPView:
    """A test PSP in the simulated register, owned by the signed-in PSP account.

    organizationIdentifier PSD<CC>-<NCA>-<number> (ETSI EN 319 412-1 5.1.4; TS 119 495 5.2.1): the NCA fixes the
    country; the authorisation number is generated unless given."""
    if not who.can_register:
        raise QTSPError(Kind.UNAUTHORISED, "organisations are registered by PSP accounts")
    if nca_id not in EBA_NCAS:
        raise QTSPError(Kind.MALFORMED, "choose an NCA from the list")
    country, _, nca_code = nca_id.partition("-")
    number = authorisation_number or f"SBX{secrets.randbelow(10**8):08d}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9./-]{0,40}", number):
        raise QTSPError(Kind.MALFORMED, "an authorisation number has 1-41 characters: letters, digits and ./-")
    parse_roles(roles)
    if not locality or len(locality) > 64 or not locality.isprintable():
        raise QTSPError(Kind.MALFORMED, "a locality (the city) is needed: QWAC subjects name one (CA/B EV Guidelines 9.2.4)")
    org_id = f"PSD{country}-{nca_code}-{number}"  # the NCA's own id (GR-BOG: PSDGR-BOG-...), as the register keys it
    view = register.add_psp(sandbox, org_id=org_id, name=legal_name, roles=roles, country=country, locality=locality,
                            actor=who.actor)
    now = real_utcnow()
    with sandbox.transaction() as session:
        session.add(PortalAccountOrg(org_id=view.org_id, account_id=who.id, created_at=now))
        repo.append_audit(session, at=now, actor=who.actor, action="portal.organisation.claim", subject=view.org_id,
                          details={"account": who.id})
    return view


def organisations(sandbox: Sandbox, who: Principal) -> list[PSPView]:
    """The register's PSPs within the principal's scope (a PSP: its own; an operator: every one)."""
    return [p for p in register.list_psps(sandbox) if who.scope.allows_org(p.org_id)]


def set_psp_status(sandbox: Sandbox, who: Principal, org_id: str, status: str) -> PSPView:
    """Operator: withdraw a PSP's authorisation in the simulated register (issuance refuses it) or restore it."""
    require_operator(who)
    return register.set_status(sandbox, OrgId(parse_org_id(org_id).value), status, actor=who.actor)
