"""The simulated NCA register: which PSPs are authorised, for which roles, by which NCA."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from ca_store import repositories as repo
from ca_store.models import NationalCompetentAuthority, PSPAuthorisation

from ..clock import utcnow
from ..core.errors import Kind, QTSPError
from ..core.names import check_country, parse_org_id
from ..core.ncas import EBA_NCAS
from ..core.types import OrgId
from ..core.psd2 import NA_ROLES, NOT_APPLICABLE, PspRole, parse_roles, roles_text, stored_roles, validate_nca
from .context import Sandbox


@dataclass(frozen=True)
class PSPView:
    org_id: OrgId
    legal_name: str
    nca_id: str
    nca_name: str
    authorisation_number: str
    roles: tuple[PspRole, ...]
    status: str
    country: str
    locality: str | None
    registration_number: str | None

    @staticmethod
    def of(row: PSPAuthorisation) -> PSPView:
        return PSPView(
            row.org_id, row.legal_name, row.nca_id, row.nca.name, row.authorisation_number,
            stored_roles(row.roles), row.status, row.country, row.locality, row.registration_number,
        )


def seed_ncas(session: Session) -> None:
    """A new sandbox's register: the EBA's list of NCAs, and NA for roles no NCA authorises (TS 119 495 5.2.3)."""
    for nca_id, name in EBA_NCAS.items():
        repo.add_nca(session, NationalCompetentAuthority(nca_id=nca_id, name=name, country=nca_id[:2]))
    repo.add_nca(session, NationalCompetentAuthority(nca_id=NOT_APPLICABLE, name=NOT_APPLICABLE, country="XX"))


def add_psp(
    sandbox: Sandbox,
    *,
    org_id: str,
    name: str,
    roles: str,
    country: str | None = None,
    locality: str | None = None,
    registration_number: str | None = None,
    actor: str = "cli",
) -> PSPView:
    parsed = parse_org_id(org_id)
    role_names = parse_roles(roles)
    if not name or len(name) > 64 or not name.isprintable() or name.strip() != name:
        raise QTSPError(Kind.MALFORMED, "legal name must be 1-64 printable characters without outer spaces")
    if all(role in NA_ROLES for role in role_names):
        nca_id, number = NOT_APPLICABLE, parsed.reference
    else:
        if parsed.nca_id is None:
            raise QTSPError(
                Kind.POLICY,
                f"{org_id} is not a PSD organizationIdentifier: NCA-authorised roles need PSD<CC>-<NCA>-<number>",
            )
        nca_id, number = parsed.nca_id, parsed.authorisation_number or ""
    country = check_country(country or (parsed.country if parsed.country != "EL" else "GR"))
    now = utcnow()
    with sandbox.transaction() as session:
        nca = repo.get_nca(session, nca_id)
        if nca is None:
            raise QTSPError(Kind.POLICY, f"NCA {nca_id} is not in the register (organizationIdentifier {org_id})")
        validate_nca(nca.name, nca.nca_id, role_names)
        if repo.get_psp(session, parsed.value) is not None:
            raise QTSPError(Kind.CONFLICT, f"{org_id} is already in the register")
        row = PSPAuthorisation(
            org_id=parsed.value, legal_name=name, nca_id=nca_id, authorisation_number=number, roles=roles_text(role_names),
            status="active", country=country, locality=locality, registration_number=registration_number,
            business_category="Government Entity" if nca_id == NOT_APPLICABLE else "Private Organization",
            created_at=now, updated_at=now,
        )
        repo.add_psp(session, row)
        session.refresh(row)
        repo.append_audit(
            session, at=now, actor=actor, action="register.add", subject=org_id,
            details={"name": name, "nca_id": nca_id, "roles": [role.value for role in role_names]},
        )
        return PSPView.of(row)


def set_status(sandbox: Sandbox, org_id: OrgId, status: str, *, actor: str = "cli") -> PSPView:
    if status not in ("active", "withdrawn"):
        raise QTSPError(Kind.MALFORMED, "status is active or withdrawn")
    now = utcnow()
    with sandbox.transaction() as session:
        row = repo.get_psp(session, org_id)
        if row is None:
            raise QTSPError(Kind.NOT_FOUND, f"{org_id} is not in the register")
        row.status, row.updated_at = status, now
        repo.append_audit(session, at=now, actor=actor, action=f"register.{status}", subject=org_id, details={})
        return PSPView.of(row)


def list_psps(sandbox: Sandbox) -> list[PSPView]:
    with sandbox.transaction() as session:
        return [PSPView.of(row) for row in repo.list_psps(session)]


def get_psp(sandbox: Sandbox, org_id: OrgId) -> PSPView:
    with sandbox.transaction() as session:
        row = repo.get_psp(session, org_id)
        if row is None:
            raise QTSPError(Kind.NOT_FOUND, f"{org_id} is not in the register")
        return PSPView.of(row)
