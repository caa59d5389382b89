"""The sandbox's Trusted List document (ETSI TS 119 612 v2.x): build it and sign it (XAdES).

No store and no clock here: ``trusted_list.py`` decides when a list is made and keeps them. Element
names and their order follow the TS 119 612 XSD as pyhanko's xsdata bindings
(``pyhanko.generated.etsi.ts_119612``) generated them. Reading and verifying a list is the relying
party's side: ``qtsp.relying_party.trusted_list``; both take the list's URIs from ``qtsp.core.trusted_list``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from base64 import b64encode
from dataclasses import dataclass
from typing import Any
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.util import SigningSettings, ds_tag, xades_tag
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from ..config import Config
from ..core.errors import Kind, QTSPError
from ..core.keys import PrivateKey
from ..core.trusted_list import (
    CA_QC, COMMUNITY_RULES, FOR_ESEALS, FOR_WEB, GRANTED, SCHEME_RULES, STATUS_DETERMINATION, TSL_NS, TSL_TAG,
    TSL_TYPE, TSL_VERSION, XML_LANG, xml_time,
)
from ..signers import Signer

# Which CAs are listed, and for what (TS 119 612 5.5.9.4 additionalServiceInformation).
# Both QWAC issuing CAs, browser (qwac-browser) and non-browser (qwac), are CA/QC services for website
# authentication: TS 119 612 has no URI that tells the hierarchies apart; the service names do.
# The 2-QWAC CA (issue 18) too: a 2-QWAC is a qualified website authentication certificate (qtsp/services/two_qwac.py).
LISTED_ROLES: dict[str, tuple[str, ...]] = {"qwac": (FOR_WEB,), "qwac-browser": (FOR_WEB,), "qseal": (FOR_ESEALS,),
                                            "scenarios": (FOR_WEB, FOR_ESEALS), "two-qwac": (FOR_WEB,)}
LEGAL_NOTICE = (
    "SANDBOX. This is the test Trusted List of a sandbox QTSP, made for testing validators. It has NO legal value: "
    "it is not a trusted list of an EU Member State under Regulation (EU) No 910/2014, the services it lists are "
    "NOT qualified, and it must never be used to establish trust outside a test environment."
)


@dataclass(frozen=True)
class ListedCA:
    ca_id: str
    role: str
    name: str
    cert_der: bytes
    status_start: dt.datetime


# --- building and signing (no I/O) ------------------------------------------------------------


def _el(parent: etree._Element, name: str, text: str | None = None, lang: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{TSL_NS}}}{name}", attrib=attrs)
    if lang is not None:
        element.set(XML_LANG, lang)
    if text is not None:
        element.text = text
    return element


def _names(parent: etree._Element, name: str, value: str) -> None:
    _el(_el(parent, name), "Name", value, lang="en")


def _uris(parent: etree._Element, name: str, *uris: str) -> None:
    holder = _el(parent, name)
    for uri in uris:
        _el(holder, "URI", uri, lang="en")


def _address(parent: etree._Element, name: str, cfg: Config) -> None:
    address = _el(parent, name)
    postal = _el(_el(address, "PostalAddresses"), "PostalAddress", lang="en")
    _el(postal, "StreetAddress", "Sandbox (no postal address)")
    _el(postal, "Locality", "Sandbox")
    _el(postal, "CountryName", cfg.country)
    _el(_el(address, "ElectronicAddress"), "URI", cfg.base + "/", lang="en")


def build_list(cfg: Config, sequence: int, issued_at: dt.datetime, next_update: dt.datetime,
               cas: Sequence[ListedCA]) -> etree._Element:
    """The unsigned TrustServiceStatusList, elements in the XSD's sequence order."""
    root = etree.Element(f"{{{TSL_NS}}}TrustServiceStatusList", nsmap={None: TSL_NS},  # type: ignore[dict-item]  # lxml: None is the default namespace
                         Id=f"TSL-{cfg.country}-{sequence}", TSLTag=TSL_TAG)
    info = _el(root, "SchemeInformation")
    _el(info, "TSLVersionIdentifier", str(TSL_VERSION))
    _el(info, "TSLSequenceNumber", str(sequence))
    _el(info, "TSLType", TSL_TYPE)
    _names(info, "SchemeOperatorName", cfg.organization)
    _address(info, "SchemeOperatorAddress", cfg)
    _names(info, "SchemeName", f"{cfg.country}: SANDBOX trusted list of {cfg.organization} (test only, no legal value)")
    _uris(info, "SchemeInformationURI", cfg.base + "/")
    _el(info, "StatusDeterminationApproach", STATUS_DETERMINATION)
    _uris(info, "SchemeTypeCommunityRules", COMMUNITY_RULES, f"{SCHEME_RULES}{cfg.country}")
    _el(info, "SchemeTerritory", cfg.country)
    _el(_el(info, "PolicyOrLegalNotice"), "TSLLegalNotice", LEGAL_NOTICE, lang="en")
    _el(info, "HistoricalInformationPeriod", "65535")
    _el(info, "ListIssueDateTime", xml_time(issued_at))
    _el(_el(info, "NextUpdate"), "dateTime", xml_time(next_update))
    _el(_el(info, "DistributionPoints"), "URI", cfg.trusted_list_url)

    provider = _el(_el(root, "TrustServiceProviderList"), "TrustServiceProvider")
    tsp_info = _el(provider, "TSPInformation")
    _names(tsp_info, "TSPName", cfg.organization)
    _names(tsp_info, "TSPTradeName", cfg.organization_identifier)  # TS 119 612 5.4.2: the registration identifier
    _address(tsp_info, "TSPAddress", cfg)
    _uris(tsp_info, "TSPInformationURI", cfg.base + "/")
    services = _el(provider, "TSPServices")
    for ca in cas:
        service = _el(_el(services, "TSPService"), "ServiceInformation")
        _el(service, "ServiceTypeIdentifier", CA_QC)
        _names(service, "ServiceName", ca.name)
        _el(_el(_el(service, "ServiceDigitalIdentity"), "DigitalId"), "X509Certificate", b64encode(ca.cert_der).decode())
        _el(service, "ServiceStatus", GRANTED)
        _el(service, "StatusStartingTime", xml_time(ca.status_start))
        extensions = _el(service, "ServiceInformationExtensions")
        for uri in LISTED_ROLES[ca.role]:
            _el(_el(_el(extensions, "Extension", Critical="false"), "AdditionalServiceInformation"), "URI", uri, lang="en")
    etree.indent(root)  # before signing: whitespace is part of what is signed
    return root


class _ListSigner(XAdESSigner):
    """signxml's XAdES signer, with three changes:

    - SigningTime comes from ``now`` (the sandbox's clock, which may be time-travelling), not the real clock;
    - the SignedProperties and KeyInfo references name their canonicalisation in a Transform. signxml 5.2
      digests them with the signature's c14n but writes no Transforms, so a verifier falls back to
      inclusive c14n 1.0 (XMLDSig 4.4.3.2) and, with exclusive c14n, every digest mismatches (signxml's
      own verifier and pyhanko's TL reader included);
    - the signing certificate is named in xades:SigningCertificate (see add_signing_certificate)."""

    def __init__(self, signing_time: dt.datetime, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._signing_time = signing_time

    def add_signing_time(self, signed_signature_properties: etree._Element, sig_root: etree._Element,
                         signing_settings: SigningSettings) -> None:
        element = etree.SubElement(signed_signature_properties, xades_tag("SigningTime"), nsmap=self.namespaces)
        element.text = xml_time(self._signing_time)

    def add_signing_certificate(self, signed_signature_properties: etree._Element, sig_root: etree._Element,
                                signing_settings: SigningSettings) -> None:
        """xades:SigningCertificate (CertDigest SHA-256 + IssuerSerial): the XAdES 1.3.2 form that the XSDs
        accompanying TS 119 612 V2 know (and the XAdES baseline profile it refers to). signxml writes
        SigningCertificateV2 (EN 319 132-1), which pyhanko's bindings generated from those XSDs refuse."""
        holder = etree.SubElement(signed_signature_properties, xades_tag("SigningCertificate"), nsmap=self.namespaces)
        for cert in signing_settings.cert_chain or ():  # sign_list always passes the certificate
            node = etree.SubElement(holder, xades_tag("Cert"), nsmap=self.namespaces)
            digest = etree.SubElement(node, xades_tag("CertDigest"), nsmap=self.namespaces)
            etree.SubElement(digest, ds_tag("DigestMethod"), nsmap=self.namespaces, Algorithm=self.digest_alg.value)
            value = self._get_digest(cert.public_bytes(Encoding.DER), algorithm=self.digest_alg)
            etree.SubElement(digest, ds_tag("DigestValue"), nsmap=self.namespaces).text = b64encode(value).decode()
            issuer_serial = etree.SubElement(node, xades_tag("IssuerSerial"), nsmap=self.namespaces)
            for tag, text in (("X509IssuerName", cert.issuer.rfc4514_string()), ("X509SerialNumber", str(cert.serial_number))):
                etree.SubElement(issuer_serial, ds_tag(tag), nsmap=self.namespaces).text = text

    def _add_reference_to_signed_info(self, sig_root: etree._Element, node_to_reference: etree._Element,
                                      **attrs: str) -> None:
        signed_info = self._find(sig_root, "SignedInfo")
        reference = etree.SubElement(signed_info, ds_tag("Reference"), nsmap=self.namespaces)
        reference.set("URI", f"#{node_to_reference.get('Id')}")
        for name, value in attrs.items():
            reference.set(name, value)
        transforms = etree.SubElement(reference, ds_tag("Transforms"), nsmap=self.namespaces)
        etree.SubElement(transforms, ds_tag("Transform"), nsmap=self.namespaces, Algorithm=self.c14n_alg.value)
        etree.SubElement(reference, ds_tag("DigestMethod"), nsmap=self.namespaces, Algorithm=self.digest_alg.value)
        digest = self._get_digest(self._c14n(node_to_reference, algorithm=self.c14n_alg), algorithm=self.digest_alg)
        etree.SubElement(reference, ds_tag("DigestValue"), nsmap=self.namespaces).text = b64encode(digest).decode()


def _signature_method(signer: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> SignatureMethod:
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        return SignatureMethod.ECDSA_SHA384 if signer.curve.key_size == 384 else SignatureMethod.ECDSA_SHA256
    return SignatureMethod.RSA_SHA256


def sign_list(root: etree._Element, signer: Signer | PrivateKey, certificate: x509.Certificate, now: dt.datetime) -> bytes:
    """An enveloped XAdES-BES signature (exclusive c14n, the signer's certificate in KeyInfo).

    signxml only calls ``sign()`` and reads ``key_size`` / ``curve`` on the key, so the Signer
    (whose ``private_bytes`` is refused) works as it is; KeyValue is left out (the certificate is there)."""
    if not isinstance(signer, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise QTSPError(Kind.POLICY, "the Trusted List signer must be an ECDSA or RSA key")
    xades = _ListSigner(
        now,
        signature_algorithm=_signature_method(signer),
        digest_algorithm=DigestAlgorithm.SHA256,
        c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        data_object_format=XAdESDataObjectFormat(Description="ETSI TS 119 612 Trusted List", MimeType="text/xml"),
    )
    signed = xades.sign(root, key=signer, cert=[certificate], always_add_key_value=False)
    return bytes(etree.tostring(signed, xml_declaration=True, encoding="UTF-8"))


def services_hash(cfg: Config, cas: Sequence[ListedCA]) -> str:
    """What identifies the list's content: the listed CAs (id, certificate, role) and the scheme data."""
    lines = [f"{cfg.organization}|{cfg.organization_identifier}|{cfg.country}|{cfg.base}|{cfg.trusted_list_validity_days}"]
    lines += sorted(f"{ca.ca_id}|{hashlib.sha256(ca.cert_der).hexdigest()}|{ca.role}" for ca in cas)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()
