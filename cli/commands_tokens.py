"""``qtsp tokens``: API bearer tokens (create, list, revoke)."""

from __future__ import annotations

import click

from qtsp.services import tokens as tokens_svc
from qtsp.services.context import open_sandbox

from .output import common, data_dir, emit, table


@click.group()
def tokens() -> None:
    """API tokens for /api/v1 (operator: everything; auditor: read only)."""


@tokens.command("create")
@click.option("--name", required=True, help="who or what uses the token, e.g. ci-pipeline")
@click.option("--role", required=True, type=click.Choice(tokens_svc.ROLES))
@common
def tokens_create(name: str, role: str) -> None:
    """Create a token. The secret is printed once and never stored: keep it now."""
    token_id, secret = tokens_svc.create(open_sandbox(data_dir()), name, role, actor="cli")
    emit({"id": token_id, "name": name, "role": role, "token": secret},
         lambda: "\n".join([f"created {role} token {token_id} ({name})",
                            f"token: {secret}",
                            "this is the only time the token is shown; only its SHA-256 is kept"]))


@tokens.command("list")
@common
def tokens_list() -> None:
    """List tokens (never their secrets)."""
    rows = [t.as_dict() for t in tokens_svc.list_tokens(open_sandbox(data_dir()))]
    emit(rows, lambda: table([[str(r["id"]), str(r["name"]), str(r["role"]), str(r["created_at"])[:19],
                               "revoked " + str(r["revoked_at"])[:19] if r["revoked_at"] else "active"] for r in rows],
                             ["ID", "NAME", "ROLE", "CREATED", "STATUS"]))


@tokens.command("revoke")
@click.argument("token_id", metavar="ID", type=click.IntRange(1))
@common
def tokens_revoke(token_id: int) -> None:
    """Revoke a token; requests using it are refused from now on."""
    info = tokens_svc.revoke_token(open_sandbox(data_dir()), token_id, actor="cli")
    emit(info.as_dict(), f"revoked token {info.id} ({info.name}, {info.role})")
