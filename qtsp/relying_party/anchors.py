"""Offline trust anchors: CA certificates a relying party pins, standing in for Trusted List entries.

A bank that has no Trusted List naming a foreign QTSP (a demo QTSP, a test lab's hierarchy) can still judge
its certificates against that QTSP's root, as ``qtsp validate --trust-anchor ROOT.pem`` does: each anchor is
taken as a *granted* CA/QC service qualified for both website authentication and electronic seals, so the
certificate's own claims (QcType, policies) decide which kind it is. The path, signature and revocation
checks are the same as with a real list.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from cryptography import x509
from cryptography.x509.oid import NameOID

from ..core.errors import Kind, QTSPError
from ..core.trusted_list import CA_QC, FOR_ESEALS, FOR_WEB, GRANTED, ListedService, ParsedList

__all__ = ["ANCHOR_TERRITORY", "trusted_list_from_anchors"]

ANCHOR_TERRITORY = "--"  # no territory: the list is the caller's pins, not a Member State's


def _name(cert: x509.Certificate) -> str:
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(cns[0].value) if cns else cert.subject.rfc4514_string()


def trusted_list_from_anchors(certificates: Sequence[x509.Certificate], at: dt.datetime) -> ParsedList:
    """A ``ParsedList`` whose services are ``certificates``, each granted as CA/QC for web and seals since
    its notBefore. Refuses an anchor that is not a CA certificate (basicConstraints cA), since pinning a
    leaf as an anchor is a configuration mistake a bank should hear about, not a silent accept."""
    if not certificates:
        raise QTSPError(Kind.MALFORMED, "no trust anchor given")
    services = []
    for cert in certificates:
        bc: x509.BasicConstraints | None
        try:
            bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
        except x509.ExtensionNotFound:
            bc = None
        except ValueError:
            raise QTSPError(Kind.MALFORMED, f"trust anchor '{cert.subject.rfc4514_string()}' has extensions that "
                            "cannot be parsed") from None
        if bc is None or not bc.ca:
            raise QTSPError(Kind.MALFORMED, f"trust anchor '{cert.subject.rfc4514_string()}' is not a CA certificate "
                            "(basicConstraints cA is not set)")
        services.append(ListedService(name=_name(cert), service_type=CA_QC, status=GRANTED,
                                      status_start=cert.not_valid_before_utc, certificate=cert,
                                      additional_info=frozenset({FOR_WEB, FOR_ESEALS})))
    return ParsedList(sequence=0, territory=ANCHOR_TERRITORY, operator="trust anchors given by the caller",
                      issued_at=at, next_update=at + dt.timedelta(days=1), signer=certificates[0],
                      services=tuple(services))
