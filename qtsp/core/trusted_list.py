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
class ServiceHistoryInstance:
    """One earlier state of a service (TS 119 612 5.6, ServiceHistoryInstance): what it was from
    ``status_start`` until the next, later state began."""

    service_type: str
    status: str
    status_start: dt.datetime
    additional_info: frozenset[str]


@dataclass(frozen=True)
class ListedService:
    name: str
    service_type: str
    status: str
    status_start: dt.datetime
    certificate: x509.Certificate
    additional_info: frozenset[str]
    history: tuple[ServiceHistoryInstance, ...] = ()  # earlier states, as the list gives them (any order)

    def state_at(self, at: dt.datetime) -> ServiceHistoryInstance | None:
        """The service's type, status and additional information in force at ``at``: the current ones from
        StatusStartingTime on, else the history instance that started last before ``at`` (TS 119 612 5.5.5,
        5.6); None before the service's first known state."""
        if at >= self.status_start:
            return ServiceHistoryInstance(self.service_type, self.status, self.status_start, self.additional_info)
        earlier = [h for h in self.history if h.status_start <= at]
        return max(earlier, key=lambda h: h.status_start) if earlier else None


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
