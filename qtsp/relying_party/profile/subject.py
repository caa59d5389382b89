"""The subject by type: organizationIdentifier (EN 319 412-1 5.1.4, TS 119 495 5.2.1), the CA/B
cabfOrganizationIdentifier extension agreeing with it (EVG), the EV attributes, no OU on TLS certificates,
the seal's attributes (EN 319 412-3 4.2.1)."""

from __future__ import annotations

from asn1crypto import core
from cryptography import x509
from cryptography.x509.oid import NameOID

from ...core import oids
from ...core.errors import QTSPError
from ...core.names import parse_org_id
from .facts import Facts
from .sources import BR, EN_412_1, EN_412_3, EVG, TS_495, cite
from .types import QWAC, QWAC_CLIENT, SEAL, Collect

__all__ = ["check_subject"]

_EV_ATTRIBUTES = {  # EVG 2.0.2 7.1.4.2: what an EV certificate's subject holds
    NameOID.BUSINESS_CATEGORY: ("businessCategory", "7.1.4.2.3"),
    NameOID.JURISDICTION_COUNTRY_NAME: ("jurisdictionCountryName", "7.1.4.2.4"),
    NameOID.SERIAL_NUMBER: ("serialNumber (registration number)", "7.1.4.2.5"),
    NameOID.ORGANIZATION_NAME: ("organizationName", "7.1.4.2.1"),
    NameOID.COUNTRY_NAME: ("countryName", "7.1.4.2.6"),
}
_SEAL_ATTRIBUTES = {  # EN 319 412-3 4.2.1 (LEG-4.2.1-2): each exactly once
    NameOID.COUNTRY_NAME: "countryName", NameOID.ORGANIZATION_NAME: "organizationName",
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier", NameOID.COMMON_NAME: "commonName",
}


class _CabfOrgId(core.Sequence):
    # EVG: CABFOrganizationIdentifier ::= SEQUENCE { registrationSchemeIdentifier PrintableString (SIZE(3)),
    # registrationCountry PrintableString (SIZE(2)), registrationStateOrProvince [0] IMPLICIT PrintableString
    # OPTIONAL, registrationReference UTF8String }
    _fields = [("scheme", core.PrintableString), ("country", core.PrintableString),
               ("state", core.PrintableString, {"implicit": 0, "optional": True}), ("reference", core.UTF8String)]


def check_subject(f: Facts, kind: str, add: Collect) -> None:
    org_ids = f.attr(NameOID.ORGANIZATION_IDENTIFIER)
    if len(org_ids) != 1:
        add("org-id-missing", cite(TS_495, "5.2.1 and 5.3 (GEN-5.3-3)"),
            f"the subject holds {len(org_ids)} organizationIdentifier attributes; a PSD2 certificate holds exactly one")
    parsed = None
    if org_ids:
        try:
            parsed = parse_org_id(org_ids[0])
        except QTSPError as exc:
            source = cite(TS_495, "5.2.1 (GEN-5.2.1-3)") if org_ids[0].startswith("PSD") else cite(EN_412_1, "5.1.4")
            add("org-id-malformed", source, exc.detail)
    if kind in (QWAC, QWAC_CLIENT):
        if f.attr(NameOID.ORGANIZATIONAL_UNIT_NAME):
            add("subject-ou-present", cite(BR, "7.1.2.7.4 and 7.1.4.2") + "; " + cite(EVG, "7.1.4.2.9"),
                "organizationalUnitName is not allowed in a TLS subscriber certificate's subject")
        if f.is_ev:
            for oid, (name, clause) in _EV_ATTRIBUTES.items():
                if len(f.attr(oid)) != 1:
                    add("subject-ev-attribute", cite(EVG, clause), f"an EV certificate's subject holds exactly one "
                        f"{name}; this one holds {len(f.attr(oid))}")
            if org_ids:
                _check_cabf_org_id(f, org_ids[0], parsed, add)
    if kind == SEAL:
        for oid, name in _SEAL_ATTRIBUTES.items():
            if len(f.attr(oid)) != 1:
                add("subject-seal-attribute", cite(EN_412_3, "4.2.1 (LEG-4.2.1-2, LEG-4.2.1-3)"),
                    f"a seal's subject holds exactly one {name}; this one holds {len(f.attr(oid))}")
        names = f.attr(NameOID.ORGANIZATION_NAME)
        if org_ids and names and names[0] == org_ids[0]:
            add("subject-seal-attribute", cite(EN_412_3, "4.2.1 (LEG-4.2.1-6)"),
                "organizationIdentifier repeats organizationName; it holds the registration identifier")


def _check_cabf_org_id(f: Facts, org_id: str, parsed: object, add: Collect) -> None:
    """EVG 7.1.2.2 (9.8.2 before 2.0): with a subject organizationIdentifier, an EV certificate carries the
    cabfOrganizationIdentifier extension with the same scheme, country and reference."""
    source = cite(EVG, "7.1.2.2 (9.8.2 in EVG 1.x)")
    try:
        ext = f.cert.extensions.get_extension_for_oid(oids.CABF_ORGANIZATION_IDENTIFIER)
    except x509.ExtensionNotFound:
        add("cabf-org-id-missing", source, f"the subject has organizationIdentifier {org_id} but the certificate "
            "has no cabfOrganizationIdentifier extension (2.23.140.3.1)")
        return
    raw = ext.value.value if isinstance(ext.value, x509.UnrecognizedExtension) else ext.value.public_bytes()
    try:
        value = _CabfOrgId.load(raw)
        scheme, country, state, reference = (value["scheme"].native, value["country"].native, value["state"].native,
                                             value["reference"].native)
    except (ValueError, TypeError, KeyError) as exc:
        add("cabf-org-id-mismatch", source, f"cabfOrganizationIdentifier cannot be read ({type(exc).__name__})")
        return
    in_extension = f"{scheme}{country}{'+' + state if state else ''}-{reference}"
    if in_extension != org_id or (scheme == "PSD" and state):
        add("cabf-org-id-mismatch", source, f"cabfOrganizationIdentifier says {in_extension}, the subject's "
            f"organizationIdentifier {org_id} (the reference without the scheme and country again)")
