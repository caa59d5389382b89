"""``qtsp tokens``: API bearer tokens (create, list, revoke)."""

from __future__ import annotations

import datetime as dt

import click

from qtsp.core.errors import Kind, QTSPError

from .lazy import LazyChoice
from .output import cli_actor, common, data_dir, emit, table


def _roles() -> tuple[str, ...]:
    from qtsp.services import tokens as tokens_svc

    return tokens_svc.ROLES


@click.group()
def tokens() -> None:
    """API tokens for /api/v1 (operator: everything; auditor: read only)."""


def _expires(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    from qtsp.core.instants import parse_instant

    return parse_instant(value)


@tokens.command("create")
@click.option("--name", required=True, help="who or what uses the token, e.g. ci-pipeline")
@click.option("--role", required=True, type=LazyChoice(_roles))
@click.option("--valid-days", type=int, help="days until it expires (default 90, at most 730)")
@click.option("--expires", metavar="WHEN", help="or when it expires, e.g. 2027-03-01T00:00:00Z")
@click.option("--org-id", "org_ids", multiple=True, help="only this PSP's certificates (repeatable)")
@click.option("--kind", "kinds", multiple=True, help="only certificates of this kind, e.g. qwac (repeatable)")
@click.option("--ca", "cas", multiple=True, help="only this CA's certificates, e.g. qwac-ca (repeatable)")
@common
def tokens_create(name: str, role: str, valid_days: int | None, expires: str | None, org_ids: tuple[str, ...],
                  kinds: tuple[str, ...], cas: tuple[str, ...]) -> None:
    """Create a token. The secret is printed once and never stored: keep it now.

    Every token expires. --org-id, --kind and --ca restrict it: what lies outside answers as if it did not
    exist (404), and the simulator and NCA credentials are out of reach of a token restricted by PSP or kind."""
    from qtsp.services import tokens as tokens_svc
    from qtsp.services.access import make_scope
    from qtsp.services.context import open_sandbox

    from .lookup import resolve_ca

    sb = open_sandbox(data_dir())
    scope = make_scope(org_ids, kinds, [resolve_ca(sb, c) for c in cas])
    token_id, secret = tokens_svc.create(sb, name, role, actor=cli_actor(), valid_days=valid_days, expires=_expires(expires),
                                         scope=scope)
    info = next(t for t in tokens_svc.list_tokens(sb) if t.id == token_id)
    emit({**info.as_dict(), "token": secret},
         lambda: "\n".join([f"created {role} token {token_id} ({name}), expires {info.expires_at:%Y-%m-%d %H:%M:%S}Z, "
                            f"scope: {scope.describe()}",
                            f"token: {secret}",
                            "this is the only time the token is shown; only its SHA-256 is kept"]))


@tokens.command("list")
@common
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    from qtsp.services import tokens as tokens_svc
    from qtsp.services.context import open_sandbox

    infos = tokens_svc.list_tokens(open_sandbox(data_dir()))
    rows = [t.as_dict() for t in infos]
    emit(rows, lambda: table([[str(t.id), t.name, t.role, f"{t.created_at:%Y-%m-%d %H:%M:%S}",
                               f"{t.expires_at:%Y-%m-%d %H:%M:%S}", t.scope.describe(),
                               f"revoked {t.revoked_at:%Y-%m-%d %H:%M:%S}" if t.revoked_at else str(r["status"])]
                              for t, r in zip(infos, rows, strict=True)],
                             ["ID", "NAME", "ROLE", "CREATED", "EXPIRES", "SCOPE", "STATUS"]))


@tokens.command("revoke")
@click.argument("token", metavar="NAME|ID", required=False)
@click.option("--id", "token_id", type=click.IntRange(1), help="the token's id, when a name could be read as one")
@common
def tokens_revoke(token: str | None, token_id: int | None) -> None:
    """Revoke a token; requests using it are refused from now on.

    The token by its name or its id, as 'qtsp tokens list' shows them (--id N when a name looks like an id)."""
    from qtsp.services import tokens as tokens_svc
    from qtsp.services.context import open_sandbox

    from .lookup import resolve_token

    if (token is None) == (token_id is None):
        raise QTSPError(Kind.MALFORMED, "give the token's name (or id) or --id N, not both")
    sb = open_sandbox(data_dir())
    info = tokens_svc.revoke_token(sb, token_id if token_id is not None else resolve_token(sb, token or ""), actor=cli_actor())
    emit(info.as_dict(), f"revoked token {info.id} ({info.name}, {info.role})")
