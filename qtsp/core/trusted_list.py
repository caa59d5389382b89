"""The Trusted List's vocabulary (ETSI TS 119 612 v2.x), shared by the sandbox that builds and signs its
list (``qtsp.services.tl_xml``) and the relying parties that read one (``qtsp.relying_party.trusted_list``):
namespaces, URIs, service types and statuses, and what a list says once read and verified."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509

TSL_NS = "http://uri.etsi.org/02231/v2#"
TSL_TAG = "http://uri.etsi.org/19612/TSLTag"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_TL = "http://uri.etsi.org/TrstSvc/TrustedList"
TSL_VERSION = 5  # the TSLVersionIdentifier of TS 119 612 V2 lists
TSL_TYPE = f"{_TL}/TSLType/EUgeneric"
STATUS_DETERMINATION = f"{_TL}/StatusDetn/EUappropriate"
COMMUNITY_RULES = f"{_TL}/schemerules/EUcommon"
SCHEME_RULES = f"{_TL}/schemerules/"  # + the territory: the scheme's own rules
CA_QC = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
GRANTED = f"{_TL}/Svcstatus/granted"
# TS 119 612 5.5.9.4 additionalServiceInformation: what a CA/QC service issues qualified certificates for.
FOR_WEB = f"{_TL}/SvcInfoExt/ForWebSiteAuthentication"
FOR_ESEALS = f"{_TL}/SvcInfoExt/ForeSeals"
ID_TSL_KP_TSL_SIGNING = x509.ObjectIdentifier("0.4.0.2231.3.0")  # id-tsl-kp-tslSigning (TS 119 612)
MEDIA_TYPE = "application/vnd.etsi.tsl+xml"


def xml_time(moment: dt.datetime) -> str:
    """An xs:dateTime in UTC, to the second, as the list writes its times."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class ListedService:
    name: str
    service_type: str
    status: str
    status_start: dt.datetime
    certificate: x509.Certificate
    additional_info: frozenset[str]


@dataclass(frozen=True)
class ParsedList:
    """A Trusted List as a relying party may believe it: read from the signed content only."""

    sequence: int
    territory: str
    operator: str
    issued_at: dt.datetime
    next_update: dt.datetime
    signer: x509.Certificate
    services: tuple[ListedService, ...]
