"""The PSD2 QCStatement of ETSI TS 119 495 Annex A: roles, NCA name and NCA id.

Encoding and decoding are exact inverses (property-tested), and the DER of one role
matches the test vector in the reference (``tests/test_psd2_statement.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from collections.abc import Sequence

from asn1crypto import core

from .errors import malformed, policy
from .oids import PSD2_STATEMENT

class PspRole(StrEnum):
    """TS 119 495 V1.8.1 clause 5.1: a role of a payment service provider, by its exact (case-sensitive)
    name, which is its text everywhere (CLI, JSON, the register's column); ``role.oid`` is its OID."""

    oid: str

    def __new__(cls, name: str, oid: str) -> PspRole:
        role = str.__new__(cls, name)
        role._value_ = name
        role.oid = oid
        return role

    PSP_AS = "PSP_AS", "0.4.0.19495.1.1"  # account servicing
    PSP_PI = "PSP_PI", "0.4.0.19495.1.2"  # payment initiation
    PSP_AI = "PSP_AI", "0.4.0.19495.1.3"  # account information
    PSP_IC = "PSP_IC", "0.4.0.19495.1.4"  # issuing of card-based payment instruments
    UNSPECIFIED = "Unspecified", "0.4.0.19495.1.0"
    PSP_CB = "PSP_CB", "0.4.0.19495.1.5"  # central bank (V1.8.1): NCAName = NCAId = "NA"
    PSP_PA = "PSP_PA", "0.4.0.19495.1.6"  # public authority (V1.8.1): NCAName = NCAId = "NA"
    VOP_RS = "VOP_RS", "0.4.0.19495.1.51"  # Verification of Payee requesting service (V1.8.1)
    VOP_VS = "VOP_VS", "0.4.0.19495.1.52"  # Verification of Payee responding service (V1.8.1)


# The tables, derived from the enum: name -> OID, name -> role, OID -> role.
ROLES: dict[str, str] = {role.value: role.oid for role in PspRole}
ROLE_BY_NAME: dict[str, PspRole] = {role.value: role for role in PspRole}
ROLE_BY_OID: dict[str, PspRole] = {role.oid: role for role in PspRole}
# Roles whose holders are not authorised by an NCA (TS 119 495 V1.8.1 5.2.2).
NA_ROLES = frozenset({PspRole.PSP_CB, PspRole.PSP_PA})
NOT_APPLICABLE = "NA"

# TS 119 495 5.2.3: NCAId = 2-letter country, hyphen, 2-8 upper-case letters.
NCA_ID_RE = re.compile(r"^[A-Z]{2}-[A-Z]{2,8}$")


class _RoleOfPSP(core.Sequence):
    _fields = [("role_of_psp_oid", core.ObjectIdentifier), ("role_of_psp_name", core.UTF8String)]


class _RolesOfPSP(core.SequenceOf):
    _child_spec = _RoleOfPSP


class _PSD2QcType(core.Sequence):
    _fields = [
        ("roles_of_psp", _RolesOfPSP),
        ("nca_name", core.UTF8String),
        ("nca_id", core.UTF8String),
    ]


class QCStatement(core.Sequence):
    """RFC 3739 QCStatement: statementId and an optional, statement-specific info."""

    _fields = [
        ("statement_id", core.ObjectIdentifier),
        ("statement_info", core.Any, {"optional": True}),
    ]


class QCStatements(core.SequenceOf):
    _child_spec = QCStatement


@dataclass(frozen=True)
class PSD2Attributes:
    """What the PSD2 statement says: roles, NCA name, NCA id. Checked when made (roles given by name
    are read as ``PspRole``s; an unknown name, a repeat or a forbidden combination is refused)."""

    roles: tuple[PspRole, ...]
    nca_name: str
    nca_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "roles", validate_roles(self.roles))
        validate_nca(self.nca_name, self.nca_id, self.roles)


def parse_roles(text: str) -> tuple[PspRole, ...]:
    """Parse "PSP_AI,PSP_PI" into validated roles, order kept, duplicates refused."""
    return validate_roles(tuple(part.strip() for part in text.split(",") if part.strip()))


def stored_roles(text: str | None) -> tuple[PspRole, ...]:
    """The roles of a store column ("PSP_AI,PSP_PI", written from validated roles), or none."""
    return tuple(ROLE_BY_NAME[name] for name in text.split(",")) if text else ()


def roles_text(roles: Sequence[PspRole]) -> str:
    """The roles as the store keeps them: names joined by commas."""
    return ",".join(role.value for role in roles)


def validate_roles(roles: Sequence[str]) -> tuple[PspRole, ...]:
    """``roles`` (names or ``PspRole``s) as roles, if TS 119 495 5.1 allows the list; POLICY if not."""
    if not roles:
        raise policy("PSD2 roles must not be empty (TS 119 495 5.1: RolesOfPSP is never empty)")
    for role in roles:
        if role not in ROLES:
            close = [name for name in ROLES if name.lower() == role.lower()]
            hint = f" (role names are case-sensitive: did you mean {close[0]}?)" if close else ""
            raise policy(f"unknown PSD2 role {str(role)!r}{hint}; known: {', '.join(ROLES)}")
    if len(set(roles)) != len(roles):
        raise policy(f"PSD2 role listed twice: {', '.join(roles)}")
    parsed = tuple(ROLE_BY_NAME[role] for role in roles)
    if PspRole.UNSPECIFIED in parsed and len(parsed) > 1:
        raise policy("the PSD2 role 'Unspecified' may only appear alone (TS 119 495 5.1)")
    na = [role for role in parsed if role in NA_ROLES]
    if na and len(na) != len(parsed):
        raise policy(
            f"{', '.join(na)} (not authorised by an NCA) cannot be combined with NCA-authorised roles"
        )
    return parsed


def validate_nca(nca_name: str, nca_id: str, roles: Sequence[PspRole]) -> None:
    na_roles = bool(roles) and all(role in NA_ROLES for role in roles)
    if na_roles:
        if nca_name != NOT_APPLICABLE or nca_id != NOT_APPLICABLE:
            raise policy("PSP_CB / PSP_PA certificates carry NCAName = NCAId = 'NA' (TS 119 495 V1.8.1)")
        return
    if not NCA_ID_RE.fullmatch(nca_id):
        raise policy(
            f"malformed NCAId {nca_id!r}: expected two country letters, a hyphen and 2-8 "
            "upper-case letters, e.g. BE-NBB (TS 119 495 5.2.3)"
        )
    if not 1 <= len(nca_name) <= 256 or not nca_name.strip():
        raise policy("NCAName must be 1-256 characters of plain text")


def encode_statement(attrs: PSD2Attributes) -> QCStatement:
    """The QCStatement {id-etsi-psd2-qcStatement, PSD2QcType}."""
    info = _PSD2QcType(
        {
            "roles_of_psp": [
                {"role_of_psp_oid": role.oid, "role_of_psp_name": role.value} for role in attrs.roles
            ],
            "nca_name": attrs.nca_name,
            "nca_id": attrs.nca_id,
        }
    )
    return QCStatement({"statement_id": PSD2_STATEMENT, "statement_info": info})


def encode_unchecked(roles: list[tuple[str, str]], nca_name: str, nca_id: str) -> QCStatement:
    """A PSD2 statement exactly as given, (OID, name) pairs included: for the simulator's negative
    scenarios only (a role name that does not match its OID, a malformed NCAId). Never for issuance."""
    info = _PSD2QcType(
        {
            "roles_of_psp": [{"role_of_psp_oid": oid, "role_of_psp_name": name} for oid, name in roles],
            "nca_name": nca_name,
            "nca_id": nca_id,
        }
    )
    return QCStatement({"statement_id": PSD2_STATEMENT, "statement_info": info})


def decode_unchecked(statement: QCStatement) -> tuple[list[tuple[str, str]], str, str]:
    """The statement's (OID, name) pairs, NCAName and NCAId as written, for a validator that reports
    each defect by name; raises only if the structure cannot be read at all."""
    if statement["statement_id"].dotted != PSD2_STATEMENT:
        raise malformed("not a PSD2 QCStatement")
    try:
        info = _PSD2QcType.load(statement["statement_info"].dump())
        roles = [(r["role_of_psp_oid"].dotted, r["role_of_psp_name"].native) for r in info["roles_of_psp"]]
        return roles, info["nca_name"].native, info["nca_id"].native
    except (ValueError, TypeError, KeyError) as exc:
        raise malformed(f"malformed PSD2 QCStatement: {exc}") from None


def decode_statement(statement: QCStatement) -> PSD2Attributes:
    """Decode and check a PSD2 statement: every role name must match its OID exactly."""
    if statement["statement_id"].dotted != PSD2_STATEMENT:
        raise malformed("not a PSD2 QCStatement")
    try:
        info = _PSD2QcType.load(statement["statement_info"].dump())
        roles = []
        for entry in info["roles_of_psp"]:
            oid = entry["role_of_psp_oid"].dotted
            name = entry["role_of_psp_name"].native
            role = ROLE_BY_OID.get(oid)
            if role is None or role.value != name:
                raise policy(
                    f"PSD2 role name {name!r} does not match its OID {oid} "
                    f"(expected {role.value if role is not None else 'no role'!r})"
                )
            roles.append(role)
        return PSD2Attributes(tuple(roles), info["nca_name"].native, info["nca_id"].native)
    except (ValueError, TypeError, KeyError) as exc:
        raise malformed(f"malformed PSD2 QCStatement: {exc}") from None
