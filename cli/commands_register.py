"""``qtsp register``: the simulated NCA register."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import click

from .output import cli_actor, common, data_dir, emit, table

if TYPE_CHECKING:
    from qtsp.core.types import OrgId
    from qtsp.services import register as svc
    from qtsp.services.context import Sandbox


@click.group()
def register() -> None:
    """The simulated NCA register of authorised PSPs."""


def _describe(p: svc.PSPView) -> str:
    return (
        f"{p.org_id}  {p.legal_name}\n  NCA: {p.nca_id} ({p.nca_name}), authorisation {p.authorisation_number}\n"
        f"  roles: {', '.join(p.roles)}\n  status: {p.status}"
    )


def _psp(ref: str) -> tuple[Sandbox, OrgId]:
    """(sandbox, organizationIdentifier) for what the user typed: the identifier or the legal name."""
    from qtsp.services.context import open_sandbox

    from .lookup import resolve_psp

    sb = open_sandbox(data_dir())
    return sb, resolve_psp(sb, ref)


@register.command("add")
@click.option("--org-id", required=True, help="organizationIdentifier, e.g. PSDBE-NBB-0123456789")
@click.option("--name", required=True, help="legal name")
@click.option("--roles", required=True, help="comma-separated, e.g. PSP_AI,PSP_PI")
@click.option("--country", help="country of the PSP (default: from the organizationIdentifier)")
@click.option("--locality")
@click.option("--registration-number")
@common
def add(org_id: str, name: str, roles: str, country: str | None, locality: str | None, registration_number: str | None) -> None:
    """Authorise a PSP in the register."""
    from qtsp.services import register as svc
    from qtsp.services.context import open_sandbox

    sb = open_sandbox(data_dir())
    psp = svc.add_psp(sb, org_id=org_id, name=name, roles=roles, country=country, locality=locality,
                      registration_number=registration_number, actor=cli_actor())
    emit(asdict(psp), lambda: "added to the register:\n" + _describe(psp))


@register.command("list")
@common
def list_() -> None:
    """List the PSPs in the register."""
    from qtsp.services import register as svc
    from qtsp.services.context import open_sandbox

    psps = svc.list_psps(open_sandbox(data_dir()))
    emit([asdict(p) for p in psps],
         lambda: table([[p.org_id, p.legal_name, p.nca_id, ",".join(p.roles), p.status] for p in psps],
                       ["ORG ID", "NAME", "NCA", "ROLES", "STATUS"]))


@register.command("show")
@click.argument("org_id", metavar="ORG_ID|NAME")
@common
def show(org_id: str) -> None:
    """Show one PSP (by organizationIdentifier or legal name)."""
    from qtsp.services import register as svc

    psp = svc.get_psp(*_psp(org_id))
    emit(asdict(psp), lambda: _describe(psp))


@register.command("withdraw")
@click.argument("org_id", metavar="ORG_ID|NAME")
@common
def withdraw(org_id: str) -> None:
    """Withdraw a PSP's authorisation (no new certificates).

    The PSP by its organizationIdentifier or its legal name."""
    from qtsp.services import register as svc

    psp = svc.set_status(*_psp(org_id), "withdrawn", actor=cli_actor())
    emit(asdict(psp), lambda: _describe(psp))


@register.command("reinstate")
@click.argument("org_id", metavar="ORG_ID|NAME")
@common
def reinstate(org_id: str) -> None:
    """Make a withdrawn authorisation active again.

    The PSP by its organizationIdentifier or its legal name."""
    from qtsp.services import register as svc

    psp = svc.set_status(*_psp(org_id), "active", actor=cli_actor())
    emit(asdict(psp), lambda: _describe(psp))
