"""``qtsp portal``: the browser portal's accounts (PSP developers and operators) at /portal."""

from __future__ import annotations

import sys

import click

from qtsp.core.errors import Kind, QTSPError

from .output import cli_actor, common, data_dir, emit, table


@click.group()
def portal() -> None:
    """Accounts of the browser portal at /portal (PSP developers, operators)."""


def _password(stdin: bool, generate: bool) -> tuple[str, bool]:
    if stdin and generate:
        raise QTSPError(Kind.MALFORMED, "--password-stdin or --generate-password, not both")
    if generate:
        import secrets

        return secrets.token_urlsafe(18), True
    if stdin:
        return sys.stdin.readline().rstrip("\r\n"), False
    return click.prompt("password", hide_input=True, confirmation_prompt=True), False


@portal.command("add-account")
@click.argument("username")
@click.option("--role", type=click.Choice(["psp", "operator"]), default="psp", show_default=True,
              help="psp: registers its own organisations and sees only those; operator: the whole sandbox")
@click.option("--password-stdin", is_flag=True, help="read the password from the first line of standard input")
@click.option("--generate-password", is_flag=True, help="make a random password and print it once")
@common
def add_account(username: str, role: str, password_stdin: bool, generate_password: bool) -> None:
    """Create a portal account. Only a scrypt hash of the password is kept."""
    from qtsp.services import portal as portal_svc
    from qtsp.services.context import open_sandbox

    password, generated = _password(password_stdin, generate_password)
    view = portal_svc.create_account(open_sandbox(data_dir()), username, password, role, actor=cli_actor())
    shown = {"id": view.id, "username": view.username, "role": view.role, "status": view.status}
    if generated:
        shown["password"] = password
    emit(shown, lambda: f"created {view.role} account {view.username} (id {view.id})"
         + (f"\npassword: {password}\nthis is the only time the password is shown" if generated else ""))


@portal.command("list")
@common
def list_accounts() -> None:
    """The portal's accounts, their roles, organisations and status."""
    from qtsp.services import portal as portal_svc
    from qtsp.services.context import open_sandbox

    views = portal_svc.list_accounts(open_sandbox(data_dir()))
    emit([{"id": v.id, "username": v.username, "role": v.role, "status": v.status, "created_at": v.created_at.isoformat(),
           "org_ids": list(v.org_ids)} for v in views],
         lambda: table([[str(v.id), v.username, v.role, v.status, ",".join(v.org_ids) or "-"] for v in views],
                       ["ID", "USER", "ROLE", "STATUS", "ORGANISATIONS"]))


def _set_status(username: str, status: str) -> None:
    from qtsp.services import portal as portal_svc
    from qtsp.services.context import open_sandbox

    sb = open_sandbox(data_dir())
    view = portal_svc.set_account_status(sb, None, portal_svc.account_id(sb, username), status, actor=cli_actor())
    emit({"id": view.id, "username": view.username, "status": view.status},
         lambda: f"portal account {view.username} is {view.status}")


@portal.command("suspend")
@click.argument("username")
@common
def suspend(username: str) -> None:
    """Suspend an account: its sessions end at once and it cannot sign in."""
    _set_status(username, "suspended")


@portal.command("reactivate")
@click.argument("username")
@common
def reactivate(username: str) -> None:
    """Let a suspended account sign in again."""
    _set_status(username, "active")
