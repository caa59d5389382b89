"""Names: organizationIdentifier (EN 319 412-1 5.1.4), country codes, DNS names, subjects as text."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from cryptography import x509
from cryptography.x509.oid import NameOID

from .errors import malformed, policy
from .psd2 import NCA_ID_RE
from .types import OrgId

# ISO 3166-1 alpha-2, officially assigned codes, plus the EN 319 412-1 exceptions
# EL (Greece) and XG (global, for LEI). The list is kept in the core so that it needs no I/O.
ISO_3166_ALPHA2 = frozenset(
    """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR
BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ
EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW
GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY
KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV
MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY
QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG
TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM
ZW
""".split()
)
ORG_ID_COUNTRY_EXTRA = frozenset({"EL", "XG"})

# EN 319 412-1 5.1.4: 3-letter scheme + 2-letter country + "-" + reference.
_ORG_ID_RE = re.compile(r"^(?P<scheme>[A-Z]{3})(?P<country>[A-Z]{2})-(?P<reference>.+)$")
_PSD_REFERENCE_RE = re.compile(r"^(?P<nca>[A-Z]{2,8})-(?P<number>[A-Za-z0-9][A-Za-z0-9./_-]{0,63})$")
_REFERENCE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9./_-]{0,63}$")
SCHEMES = ("PSD", "VAT", "NTR", "LEI")


def check_country(code: str, *, what: str = "country") -> str:
    if code not in ISO_3166_ALPHA2:
        raise policy(f"unknown {what} code {code!r}: expected an ISO 3166-1 alpha-2 code such as BE")
    return code


@dataclass(frozen=True)
class OrganizationIdentifier:
    """A parsed organizationIdentifier, e.g. PSDBE-NBB-0123456789."""

    scheme: str
    country: str
    reference: str  # for PSD: "NBB-0123456789" (no "PSDBE-" again, EVG 9.8.2)

    @property
    def value(self) -> OrgId:
        return OrgId(f"{self.scheme}{self.country}-{self.reference}")

    @property
    def nca_id(self) -> str | None:
        """For the PSD scheme, the NCAId the identifier implies (TS 119 495 5.2.1)."""
        if self.scheme != "PSD":
            return None
        return f"{self.country}-{self.reference.split('-', 1)[0]}"

    @property
    def authorisation_number(self) -> str | None:
        if self.scheme != "PSD":
            return None
        return self.reference.split("-", 1)[1]


def parse_org_id(text: str) -> OrganizationIdentifier:
    match = _ORG_ID_RE.fullmatch(text)
    if not match or len(text) > 128:
        raise malformed(
            f"malformed organizationIdentifier {text!r}: expected e.g. PSDBE-NBB-0123456789 "
            "(scheme PSD/VAT/NTR/LEI, 2-letter country, '-', reference; EN 319 412-1 5.1.4)"
        )
    scheme, country, reference = match["scheme"], match["country"], match["reference"]
    if scheme not in SCHEMES:
        raise malformed(f"unknown organizationIdentifier scheme {scheme!r}: expected one of {', '.join(SCHEMES)}")
    if country not in ORG_ID_COUNTRY_EXTRA:
        check_country(country, what="organizationIdentifier country")
    if scheme == "PSD":
        psd = _PSD_REFERENCE_RE.fullmatch(reference)
        if not psd:
            raise malformed(
                f"malformed PSD organizationIdentifier {text!r}: expected PSD<CC>-<NCA code>-<authorisation number>"
            )
        if not NCA_ID_RE.fullmatch(f"{country}-{psd['nca']}"):
            raise malformed(f"malformed NCA code in {text!r}")
    elif scheme == "LEI":
        if not re.fullmatch(r"[A-Z0-9]{18}[0-9]{2}", reference):
            raise malformed(f"malformed LEI in {text!r}: expected 20 characters (ISO 17442)")
    elif not _REFERENCE_RE.fullmatch(reference):
        raise malformed(f"malformed registration reference in {text!r}")
    return OrganizationIdentifier(scheme, country, reference)


_LABEL_RE = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def check_domain(name: str, *, allow_wildcard: bool = False) -> str:
    """Validate a dNSName for a QWAC (BR 7.1.2.7.12, RFC 5280 4.2.1.6). Returns it lower-cased."""
    if not name:
        raise malformed("empty domain name")
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        pass
    else:
        raise policy(f"{name!r} is an IP address; QWACs carry DNS names only")
    if not name.isascii():
        try:
            a_label = name.encode("idna").decode("ascii")
        except UnicodeError:
            a_label = "its IDNA A-label form"
        raise malformed(f"domain {name!r} has non-LDH characters: give it IDNA-encoded, e.g. {a_label}")
    lowered = name.lower().rstrip(".") if name.endswith(".") and not name.endswith("..") else name.lower()
    if len(lowered) > 253:
        raise malformed(f"domain name is {len(lowered)} characters; at most 253 are allowed")
    labels = lowered.split(".")
    if labels[0] == "*":
        if not allow_wildcard:
            raise policy(f"wildcard {name!r} is not allowed in an EV QWAC (EVG 9.8.1)")
        labels = labels[1:]
    if len(labels) < 2:
        raise malformed(f"domain {name!r} must have at least two labels")
    for label in labels:
        if not label:
            raise malformed(f"domain {name!r} has an empty label")
        if not _LABEL_RE.fullmatch(label):
            raise malformed(
                f"domain {name!r} has an invalid label {label!r}: letters, digits and inner hyphens, 1-63 characters"
            )
    if labels[-1].isdigit():
        raise malformed(f"domain {name!r} ends in a numeric label")
    return lowered


# The attributes qualified certificates carry (EN 319 412-1/-3, EVG 9.2) that cryptography's RFC 4514
# text leaves as dotted OIDs ("2.5.4.97=PSDBE-NBB-..."), by the names OpenSSL prints for them.
ATTRIBUTE_NAMES: dict[x509.ObjectIdentifier, str] = {
    NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier",
    NameOID.SERIAL_NUMBER: "serialNumber",
    NameOID.BUSINESS_CATEGORY: "businessCategory",
    NameOID.JURISDICTION_COUNTRY_NAME: "jurisdictionC",
    NameOID.JURISDICTION_STATE_OR_PROVINCE_NAME: "jurisdictionST",
    NameOID.JURISDICTION_LOCALITY_NAME: "jurisdictionL",
    NameOID.POSTAL_CODE: "postalCode",
    NameOID.GIVEN_NAME: "GN",
    NameOID.SURNAME: "SN",
    NameOID.TITLE: "title",
    NameOID.PSEUDONYM: "pseudonym",
    NameOID.EMAIL_ADDRESS: "emailAddress",
}
_DOTTED = {oid.dotted_string: name for oid, name in ATTRIBUTE_NAMES.items()}
_DOTTED_ATTRIBUTE_RE = re.compile(r"(?<![\w.])(\d+(?:\.\d+)+)=")


def readable_name(name: x509.Name) -> str:
    """``CN=..., organizationIdentifier=..., O=..., C=...``: RFC 4514 order and escaping, named attributes."""
    return ", ".join(rdn.rfc4514_string(ATTRIBUTE_NAMES) for rdn in reversed(name.rdns))


def readable_rfc4514(text: str) -> str:
    """``readable_name`` of a name kept as RFC 4514 text; text that does not parse comes back as it was."""
    try:
        return readable_name(x509.Name.from_rfc4514_string(text))
    except ValueError:
        return readable_oids(text)


def readable_oids(text: str) -> str:
    """Name the dotted attribute types inside free text (a validator's message quoting a subject)."""
    return _DOTTED_ATTRIBUTE_RE.sub(lambda m: _DOTTED.get(m[1], m[1]) + "=", text)
