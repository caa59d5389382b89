"""The Trusted List document (ETSI TS 119 612 v2.x): build it, sign it (XAdES), parse and verify it.

No store and no clock here: ``trusted_list.py`` decides when a list is made and keeps them. Element
names and their order follow the TS 119 612 XSD as pyhanko's xsdata bindings
(``pyhanko.generated.etsi.ts_119612``) generated them.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from base64 import b64decode, b64encode
from dataclasses import dataclass
from typing import Any, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.util import ds_tag, xades_tag
from signxml.xades import XAdESDataObjectFormat, XAdESSignatureConfiguration, XAdESSigner, XAdESVerifier

from ..config import Config
from ..core.errors import Kind, QTSPError
from ..signers import Signer
from .context import parse_instant

TSL_NS = "http://uri.etsi.org/02231/v2#"
TSL_TAG = "http://uri.etsi.org/19612/TSLTag"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
XML_LANG = "{http://www.w3.org/XML/1998/namespace}lang"
_TL = "http://uri.etsi.org/TrstSvc/TrustedList"
TSL_VERSION = 5  # the TSLVersionIdentifier of TS 119 612 V2 lists
TSL_TYPE = f"{_TL}/TSLType/EUgeneric"
STATUS_DETERMINATION = f"{_TL}/StatusDetn/EUappropriate"
COMMUNITY_RULES = f"{_TL}/schemerules/EUcommon"
CA_QC = "http://uri.etsi.org/TrstSvc/Svctype/CA/QC"
GRANTED = f"{_TL}/Svcstatus/granted"
FOR_WEB = f"{_TL}/SvcInfoExt/ForWebSiteAuthentication"
FOR_ESEALS = f"{_TL}/SvcInfoExt/ForeSeals"
# Which CAs are listed, and for what (TS 119 612 5.5.9.4 additionalServiceInformation).
LISTED_ROLES: dict[str, tuple[str, ...]] = {"qwac": (FOR_WEB,), "qseal": (FOR_ESEALS,), "scenarios": (FOR_WEB, FOR_ESEALS)}
ID_TSL_KP_TSL_SIGNING = x509.ObjectIdentifier("0.4.0.2231.3.0")  # id-tsl-kp-tslSigning (TS 119 612)
MEDIA_TYPE = "application/vnd.etsi.tsl+xml"
MAX_LIST_BYTES = 8 * 1024 * 1024
LEGAL_NOTICE = (
    "SANDBOX. This is the test Trusted List of a sandbox QTSP, made for testing validators. It has NO legal value: "
    "it is not a trusted list of an EU Member State under Regulation (EU) No 910/2014, the services it lists are "
    "NOT qualified, and it must never be used to establish trust outside a test environment."
)
_NS = {"tsl": TSL_NS, "ds": DS_NS}


@dataclass(frozen=True)
class ListedCA:
    ca_id: str
    role: str
    name: str
    cert_der: bytes
    status_start: dt.datetime


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
    sequence: int
    territory: str
    operator: str
    issued_at: dt.datetime
    next_update: dt.datetime
    signer: x509.Certificate
    services: tuple[ListedService, ...]


# --- building and signing (no I/O) ------------------------------------------------------------


def _xml_time(moment: dt.datetime) -> str:
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _el(parent: etree._Element, name: str, text: str | None = None, lang: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{TSL_NS}}}{name}", **attrs)
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
    root = etree.Element(f"{{{TSL_NS}}}TrustServiceStatusList", nsmap={None: TSL_NS},
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
    _uris(info, "SchemeTypeCommunityRules", COMMUNITY_RULES, f"{_TL}/schemerules/{cfg.country}")
    _el(info, "SchemeTerritory", cfg.country)
    _el(_el(info, "PolicyOrLegalNotice"), "TSLLegalNotice", LEGAL_NOTICE, lang="en")
    _el(info, "HistoricalInformationPeriod", "65535")
    _el(info, "ListIssueDateTime", _xml_time(issued_at))
    _el(_el(info, "NextUpdate"), "dateTime", _xml_time(next_update))
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
        _el(service, "StatusStartingTime", _xml_time(ca.status_start))
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

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
        element = etree.SubElement(signed_signature_properties, xades_tag("SigningTime"), nsmap=self.namespaces)
        element.text = _xml_time(self._signing_time)

    def add_signing_certificate(self, signed_signature_properties, sig_root, signing_settings):  # type: ignore[no-untyped-def]
        """xades:SigningCertificate (CertDigest SHA-256 + IssuerSerial): the XAdES 1.3.2 form that the XSDs
        accompanying TS 119 612 V2 know (and the XAdES baseline profile it refers to). signxml writes
        SigningCertificateV2 (EN 319 132-1), which pyhanko's bindings generated from those XSDs refuse."""
        holder = etree.SubElement(signed_signature_properties, xades_tag("SigningCertificate"), nsmap=self.namespaces)
        for cert in signing_settings.cert_chain:
            node = etree.SubElement(holder, xades_tag("Cert"), nsmap=self.namespaces)
            digest = etree.SubElement(node, xades_tag("CertDigest"), nsmap=self.namespaces)
            etree.SubElement(digest, ds_tag("DigestMethod"), nsmap=self.namespaces, Algorithm=self.digest_alg.value)
            value = self._get_digest(cert.public_bytes(Encoding.DER), algorithm=self.digest_alg)
            etree.SubElement(digest, ds_tag("DigestValue"), nsmap=self.namespaces).text = b64encode(value).decode()
            issuer_serial = etree.SubElement(node, xades_tag("IssuerSerial"), nsmap=self.namespaces)
            for tag, text in (("X509IssuerName", cert.issuer.rfc4514_string()), ("X509SerialNumber", str(cert.serial_number))):
                etree.SubElement(issuer_serial, ds_tag(tag), nsmap=self.namespaces).text = text

    def _add_reference_to_signed_info(self, sig_root, node_to_reference, **attrs):  # type: ignore[no-untyped-def]
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


def _signature_method(signer: Signer) -> SignatureMethod:
    if isinstance(signer, ec.EllipticCurvePrivateKey):
        return SignatureMethod.ECDSA_SHA384 if signer.curve.key_size == 384 else SignatureMethod.ECDSA_SHA256
    if isinstance(signer, rsa.RSAPrivateKey):
        return SignatureMethod.RSA_SHA256
    raise QTSPError(Kind.POLICY, "the Trusted List signer must be an ECDSA or RSA key")


def sign_list(root: etree._Element, signer: Signer, certificate: x509.Certificate, now: dt.datetime) -> bytes:
    """An enveloped XAdES-BES signature (exclusive c14n, the signer's certificate in KeyInfo).

    signxml only calls ``sign()`` and reads ``key_size`` / ``curve`` on the key, so the Signer
    (whose ``private_bytes`` is refused) works as it is; KeyValue is left out (the certificate is there)."""
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


# --- parsing and verifying (relying parties) ----------------------------------------------------


_DOCTYPE_MARKERS = tuple("<!DOCTYPE".encode(encoding)
                         for encoding in ("utf-8", "utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be"))


def _safe_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=False)


def _parse_time(text: str, what: str) -> dt.datetime:
    try:
        return parse_instant(text.strip())
    except QTSPError as exc:
        raise QTSPError(Kind.MALFORMED, f"Trusted List: {what}: {exc.detail}") from None


def _find(element: etree._Element, path: str, what: str) -> etree._Element:
    found = element.find(path, _NS)
    if found is None:
        raise QTSPError(Kind.MALFORMED, f"Trusted List: no {what}")
    return found


def _text(element: etree._Element, path: str, what: str) -> str:
    text = (_find(element, path, what).text or "").strip()
    if not text:
        raise QTSPError(Kind.MALFORMED, f"Trusted List: {what} is empty")
    return text


def _name(element: etree._Element, path: str, what: str) -> str:
    names = element.findall(f"{path}/tsl:Name", _NS)
    if not names:
        raise QTSPError(Kind.MALFORMED, f"Trusted List: no {what}")
    preferred = [n for n in names if n.get(XML_LANG) == "en"] or names
    return (preferred[0].text or "").strip()


def _parse_document(xml: bytes) -> etree._Element:
    if not isinstance(xml, (bytes, bytearray)):
        raise QTSPError(Kind.MALFORMED, "a Trusted List is given as bytes")
    if len(xml) > MAX_LIST_BYTES:
        raise QTSPError(Kind.MALFORMED, f"the Trusted List is {len(xml)} bytes; at most {MAX_LIST_BYTES} are accepted")
    # A Trusted List never has a DTD: refusing one outright, before libxml2 reads it, rules out entity
    # expansion (billion laughs) and external entities. The parser below resolves none either way.
    if any(marker in xml for marker in _DOCTYPE_MARKERS):
        raise QTSPError(Kind.MALFORMED, "the Trusted List carries a DTD (DOCTYPE); refused")
    try:
        root = etree.fromstring(bytes(xml), parser=_safe_parser())
    except etree.XMLSyntaxError as exc:
        raise QTSPError(Kind.MALFORMED, f"the Trusted List is not well-formed XML: {str(exc)[:200]}") from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise QTSPError(Kind.MALFORMED, "the Trusted List carries a DTD (DOCTYPE); refused")
    if root.tag != f"{{{TSL_NS}}}TrustServiceStatusList":
        raise QTSPError(Kind.MALFORMED, f"not an ETSI TS 119 612 Trusted List (root element {root.tag[:120]!r})")
    return root


def _verify(root: etree._Element, signer_certs: Sequence[x509.Certificate],
            now: dt.datetime) -> tuple[etree._Element, x509.Certificate]:
    """The signed TrustServiceStatusList (only what the signature covers) and the pin that verified it."""
    if not signer_certs:
        raise QTSPError(Kind.MALFORMED, "no Trusted List signer certificate to verify against")
    config = XAdESSignatureConfiguration(
        location="./",  # the enveloped signature is a child of the list itself
        expect_references=3,  # the list, the SignedProperties, the KeyInfo
        signature_methods=frozenset({SignatureMethod.ECDSA_SHA256, SignatureMethod.ECDSA_SHA384, SignatureMethod.ECDSA_SHA512,
                                     SignatureMethod.RSA_SHA256, SignatureMethod.RSA_SHA384, SignatureMethod.RSA_SHA512}),
        digest_algorithms=frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512}),
        verification_time=now,
    )
    reasons = []
    for cert in signer_certs:
        try:
            results = XAdESVerifier().verify(root, x509_cert=cert, expect_config=config, parser=_safe_parser())
        except Exception as exc:  # signxml raises several families (InvalidSignature, InvalidDigest, lxml schema errors)
            reasons.append(f"{cert.fingerprint(hashes.SHA256()).hex()[:16]}: {type(exc).__name__}: {str(exc)[:160]}")
            continue
        for result in results:
            if result.signed_xml is not None and result.signed_xml.tag == root.tag:
                return result.signed_xml, cert
        reasons.append("the signature does not cover the TrustServiceStatusList")
    raise QTSPError(Kind.INTEGRITY, "the Trusted List signature does not verify against the pinned signer: " + "; ".join(reasons))


def _service(element: etree._Element) -> ListedService:
    der_text = _text(element, "tsl:ServiceDigitalIdentity/tsl:DigitalId/tsl:X509Certificate", "service certificate")
    try:
        certificate = x509.load_der_x509_certificate(b64decode("".join(der_text.split()), validate=True))
    except ValueError:
        raise QTSPError(Kind.MALFORMED, "Trusted List: a service certificate does not parse") from None
    uris = element.findall("tsl:ServiceInformationExtensions/tsl:Extension/tsl:AdditionalServiceInformation/tsl:URI", _NS)
    return ListedService(
        name=_name(element, "tsl:ServiceName", "ServiceName"),
        service_type=_text(element, "tsl:ServiceTypeIdentifier", "ServiceTypeIdentifier"),
        status=_text(element, "tsl:ServiceStatus", "ServiceStatus"),
        status_start=_parse_time(_text(element, "tsl:StatusStartingTime", "StatusStartingTime"), "StatusStartingTime"),
        certificate=certificate,
        additional_info=frozenset((u.text or "").strip() for u in uris),
    )


def parse_and_verify(xml: bytes, signer_certs: Sequence[x509.Certificate], now: dt.datetime) -> ParsedList:
    """Parse a Trusted List safely, verify its XAdES signature against the pinned signer certificate(s),
    and refuse it past its NextUpdate. Everything returned comes from the signed content only."""
    if now.tzinfo is None:
        raise QTSPError(Kind.MALFORMED, "parse_and_verify needs an aware 'now' (UTC)")
    signed, signer = _verify(_parse_document(xml), signer_certs, now)
    if signed.get("TSLTag") != TSL_TAG:
        raise QTSPError(Kind.MALFORMED, f"Trusted List: TSLTag is not {TSL_TAG}")
    info = _find(signed, "tsl:SchemeInformation", "SchemeInformation")
    version = _text(info, "tsl:TSLVersionIdentifier", "TSLVersionIdentifier")
    if version != str(TSL_VERSION):
        raise QTSPError(Kind.POLICY, f"Trusted List: TSLVersionIdentifier {version[:10]!r} is not {TSL_VERSION}")
    sequence_text = _text(info, "tsl:TSLSequenceNumber", "TSLSequenceNumber")
    if not sequence_text.isdigit() or len(sequence_text) > 18 or int(sequence_text) < 1:
        raise QTSPError(Kind.MALFORMED, f"Trusted List: TSLSequenceNumber {sequence_text[:20]!r} is not a positive integer")
    next_update_el = _find(info, "tsl:NextUpdate", "NextUpdate").find("tsl:dateTime", _NS)
    if next_update_el is None or not (next_update_el.text or "").strip():
        raise QTSPError(Kind.POLICY, "Trusted List: NextUpdate is empty: the list is closed")
    next_update = _parse_time(next_update_el.text or "", "NextUpdate")
    if now >= next_update:
        raise QTSPError(Kind.POLICY, f"the Trusted List is stale: its NextUpdate {_xml_time(next_update)} has passed "
                                     f"(checked at {_xml_time(now)})")
    providers = signed.findall("tsl:TrustServiceProviderList/tsl:TrustServiceProvider", _NS)
    services = tuple(_service(s) for p in providers
                     for s in p.findall("tsl:TSPServices/tsl:TSPService/tsl:ServiceInformation", _NS))
    return ParsedList(
        sequence=int(sequence_text),
        territory=_text(info, "tsl:SchemeTerritory", "SchemeTerritory"),
        operator=_name(info, "tsl:SchemeOperatorName", "SchemeOperatorName"),
        issued_at=_parse_time(_text(info, "tsl:ListIssueDateTime", "ListIssueDateTime"), "ListIssueDateTime"),
        next_update=next_update,
        signer=signer,
        services=services,
    )
