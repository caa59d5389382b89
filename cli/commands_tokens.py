"""``qtsp tokens``: API bearer tokens (create, list, revoke)."""

from __future__ import annotations

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


@tokens.command("create")
@click.option("--name", required=True, help="who or what uses the token, e.g. ci-pipeline")
@click.option("--role", required=True, type=LazyChoice(_roles))
@common
def tokens_create(name: str, role: str) -> None:
    """Create a token. The secret is printed once and never stored: keep it now."""
    from qtsp.services import tokens as tokens_svc
    from qtsp.services.context import open_sandbox

    token_id, secret = tokens_svc.create(open_sandbox(data_dir()), name, role, actor=cli_actor())
    emit({"id": token_id, "name": name, "role": role, "token": secret},
         lambda: "\n".join([f"created {role} token {token_id} ({name})",
                            f"token: {secret}",
                            "this is the only time the token is shown; only its SHA-256 is kept"]))


@tokens.command("list")
@common
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    from qtsp.services import tokens as tokens_svc
    from qtsp.services.context import open_sandbox

    rows = [t.as_dict() for t in tokens_svc.list_tokens(open_sandbox(data_dir()))]
    emit(rows, lambda: table([[str(r["id"]), str(r["name"]), str(r["role"]), str(r["created_at"])[:19],
                               "revoked " + str(r["revoked_at"])[:19] if r["revoked_at"] else "active"] for r in rows],
                             ["ID", "NAME", "ROLE", "CREATED", "STATUS"]))


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
