"""The qualified content: QCStatements (EN 319 412-5) and the PSD2 statement (TS 119 495), judged against
the certificate's type. Rule ids the scenario catalogue already names (not-qualified, qctype-mismatch,
missing-psd2-statement, role-oid-mismatch, ncaid-malformed, ncaid-mismatch, role-not-authorised) are
kept; each finding cites the clause."""

from __future__ import annotations

from collections.abc import Sequence

from ...core import oids
from ...core.errors import Kind, QTSPError
from ...core.names import parse_org_id
from ...core.psd2 import NA_ROLES, NCA_ID_RE, NOT_APPLICABLE, ROLE_BY_OID, ROLES, PspRole, decode_unchecked
from ...core.qcstatements import pds_locations, qc_types
from .facts import Facts
from .sources import EN_411_2, EN_412_5, TS_495, cite
from .types import SEAL, WEBSITE_TYPES, Collect

__all__ = ["check_psd2", "check_statements"]

_QC_TYPE = {oids.QCT_WEB: "web", oids.QCT_ESEAL: "eseal", oids.QCT_ESIGN: "esign"}
V181_ROLES = frozenset({PspRole.PSP_CB, PspRole.PSP_PA, PspRole.VOP_RS, PspRole.VOP_VS})


def check_statements(f: Facts, kind: str, add: Collect) -> bool:
    """EN 319 412-5's statements; False when there are none to read (the PSD2 check is then moot)."""
    if f.statements is None:
        add("not-qualified", cite(EN_412_5, "4.2.1 (QCS-5-01)"), f"no readable QCStatements: {f.statements_error}")
        return False
    if f.qc_extension is not None and f.qc_extension.critical:
        add("qc-statements-critical", cite(EN_412_5, "4.1 (QCS-4.1-02)"),
            "the qcStatements extension is marked critical; it must not be")
    if oids.QCS_COMPLIANCE not in f.statements:
        add("not-qualified", cite(EN_412_5, "4.2.1 (QCS-5-01)"),
            "no QcCompliance statement: not an EU qualified certificate")
    wanted = oids.QCT_ESEAL if kind == SEAL else oids.QCT_WEB
    statement = f.statement(oids.QCS_TYPE)
    types = qc_types(statement) if statement is not None else []
    if types != [wanted]:
        shown = ", ".join(_QC_TYPE.get(t, t) for t in types) or "absent"
        add("qctype-mismatch", cite(EN_412_5, "4.2.3"),
            f"QcType is {shown}; a {kind} has exactly one QcType, {_QC_TYPE[wanted]}")
    sscd = oids.QCS_SSCD in f.statements
    if kind in WEBSITE_TYPES and sscd:
        add("qc-sscd-on-website", cite(EN_412_5, "4.2.2 and table 2 (QCS-5-01)"),
            "QcSSCD on a website certificate: a website key is not held in a QSCD and the statement must be absent")
    if kind == SEAL and sscd != f.has_policy(oids.QCP_L_QSCD):
        add("qc-sscd-policy", cite(EN_411_2, "5.3") + "; " + cite(EN_412_5, "4.2.2"),
            "QcSSCD without the QCP-l-qscd policy" if sscd else "QCP-l-qscd policy without the QcSSCD statement")
    if oids.QCS_CC_LEGISLATION in f.statements:
        add("qc-cc-legislation", cite(EN_412_5, "4.2.4 and table 2 (QCS-5-01)"),
            "QcCClegislation marks a non-EU qualified certificate; an EU one must not carry it")
    _check_pds(f, add)
    return True


def _check_pds(f: Facts, add: Collect) -> None:
    statement = f.statement(oids.QCS_PDS)
    if statement is None:
        add("qc-pds-missing", cite(EN_412_5, "4.3.4 (QCS-5-01)"), "no QcPDS statement (PKI disclosure statement)")
        return
    locations = pds_locations(statement)
    plain = [url for url, _lang in locations if not url.startswith("https://")]
    if plain:
        add("qc-pds-not-https", cite(EN_412_5, "4.3.4"), f"QcPDS location(s) not on https: {', '.join(plain)}")
    if not any(lang.lower() == "en" for _url, lang in locations):
        add("qc-pds-no-english", cite(EN_412_5, "4.3.4 (QCS-5-02)"),
            "QcPDS has no English entry (language 'en')")


def check_psd2(f: Facts, add: Collect, require_roles: Sequence[str]) -> None:
    statement = f.statement(oids.PSD2_STATEMENT)
    if statement is None:
        add("missing-psd2-statement", cite(TS_495, "5.1 (GEN-5.1.1)"), "no PSD2 QCStatement: no roles, no NCA")
        return
    try:
        roles, nca_name, nca_id = decode_unchecked(statement)
    except QTSPError as exc:
        add("psd2-statement-malformed", cite(TS_495, "annex A"), exc.detail)
        return
    if not roles:
        add("psd2-roles-empty", cite(TS_495, "5.2.2 (GEN-5.2.2-1)"),
            "RolesOfPSP is empty; it holds one or more roles, or the single entry 'Unspecified'")
    known: list[PspRole] = []
    for oid, name in roles:
        role = ROLE_BY_OID.get(oid)
        if role is None or role.value != name:
            expected = repr(role.value) if role is not None else f"no role of {TS_495}"
            add("role-oid-mismatch", cite(TS_495, "5.1 and 5.2.2 (GEN-5.2.2-5)"),
                f"PSD2 role name {name!r} does not match its OID {oid} ({expected}; names are case-sensitive)")
        else:
            known.append(role)
    _check_combination(known, add)
    na_only = bool(known) and all(role in NA_ROLES for role in known)
    if na_only:
        if nca_id != NOT_APPLICABLE or nca_name != NOT_APPLICABLE:
            add("ncaid-malformed", cite(TS_495, "5.2.3"),
                f"PSP_CB / PSP_PA holders carry NCAName = NCAId = 'NA', not {nca_name!r} / {nca_id!r}")
    else:
        if not NCA_ID_RE.fullmatch(nca_id):
            add("ncaid-malformed", cite(TS_495, "5.2.3 (GEN-5.2.3-2)"),
                f"NCAId {nca_id!r} is not <2-letter country>-<2-8 upper-case letters>, e.g. BE-NBB")
        if not nca_name.strip() or len(nca_name) > 256 or nca_name == NOT_APPLICABLE or not nca_name.isprintable():
            add("ncaname-malformed", cite(TS_495, "5.2.3 (GEN-5.2.3-1)"),
                f"NCAName {nca_name!r} is not the competent authority's plain-text name (1-256 characters)")
        _check_nca_agreement(f, nca_id, add)
    held = set(known)
    for wanted in require_roles:
        if wanted not in ROLES:
            raise QTSPError(Kind.MALFORMED, f"unknown PSD2 role {wanted!r}; known: {', '.join(ROLES)}")
        if wanted not in held:
            add("role-not-authorised", cite(TS_495, "5.1") + " (the relying party's requirement)",
                f"the certificate does not carry the role {wanted}")


def _check_combination(known: list[PspRole], add: Collect) -> None:
    source = cite(TS_495, "5.2.2")
    if len(set(known)) != len(known):
        add("psd2-roles-combination", source, f"a PSD2 role is listed twice: {', '.join(known)}")
    if PspRole.UNSPECIFIED in known and len(known) > 1:
        add("psd2-roles-combination", cite(TS_495, "5.2.2 (GEN-5.2.2-1)"),
            "'Unspecified' is only allowed as the single entry of RolesOfPSP")
    na = [role for role in known if role in NA_ROLES]
    if na and len(na) != len(known):
        add("psd2-roles-combination", source,
            f"{', '.join(na)} (not authorised by an NCA) combined with NCA-authorised roles")


def _check_nca_agreement(f: Facts, nca_id: str, add: Collect) -> None:
    """TS 119 495 5.2.1 and 5.2.3: the NCA the organizationIdentifier names is the one of the statement."""
    org_id = f.org_id
    if not org_id or not org_id.startswith("PSD") or not NCA_ID_RE.fullmatch(nca_id):
        return
    try:
        named = parse_org_id(org_id).nca_id
    except QTSPError:
        return  # the identifier's own form is judged by the subject rules
    if named != nca_id:
        add("ncaid-mismatch", cite(TS_495, "5.2.1 (GEN-5.2.1-3) and 5.2.3"),
            f"organizationIdentifier {org_id} names NCA {named}, the PSD2 statement {nca_id}")
