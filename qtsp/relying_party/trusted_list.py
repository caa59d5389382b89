"""Reading a Trusted List (ETSI TS 119 612 v2.x) as a relying party: parsed safely (bounded, no DTD, no
entities, no network), its XAdES signature verified against pinned signer certificates, refused past its
NextUpdate. Everything returned comes from what the signature covers.

The list's vocabulary and the ``ParsedList`` it yields are in ``qtsp.core.trusted_list``; the sandbox's
builder and signer are in ``qtsp.services.tl_xml``.
"""

from __future__ import annotations

import datetime as dt
from base64 import b64decode
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree  # type: ignore[import-untyped, unused-ignore]  # typed only with lxml-stubs
# From the defining modules: signxml's package __init__ files re-export without __all__ (mypy --strict).
from signxml.algorithms import DigestAlgorithm, SignatureMethod
from signxml.xades.xades import XAdESSignatureConfiguration, XAdESVerifier

from ..core.errors import Kind, QTSPError
from ..core.instants import parse_instant
from ..core.trusted_list import (DS_NS, TSL_NS, TSL_TAG, TSL_VERSION, XML_LANG, ListedService, ParsedList,
                                 ServiceHistoryInstance, xml_time)

__all__ = ["MAX_LIST_BYTES", "parse_and_verify_trusted_list"]

MAX_LIST_BYTES = 8 * 1024 * 1024
_NS = {"tsl": TSL_NS, "ds": DS_NS}
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
    doctype = docinfo.doctype  # type: ignore[union-attr, unused-ignore]  # lxml-stubs lack DocInfo.doctype
    if doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise QTSPError(Kind.MALFORMED, "the Trusted List carries a DTD (DOCTYPE); refused")
    if root.tag != f"{{{TSL_NS}}}TrustServiceStatusList":
        raise QTSPError(Kind.MALFORMED, f"not an ETSI TS 119 612 Trusted List (root element {str(root.tag)[:120]!r})")
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


def _additional_info(element: etree._Element) -> frozenset[str]:
    uris = element.findall("tsl:ServiceInformationExtensions/tsl:Extension/tsl:AdditionalServiceInformation/tsl:URI", _NS)
    return frozenset((u.text or "").strip() for u in uris)


def _history(service: etree._Element) -> tuple[ServiceHistoryInstance, ...]:
    """TS 119 612 5.6: the service's earlier states, each with its own type, status, start and extensions."""
    return tuple(
        ServiceHistoryInstance(
            service_type=_text(h, "tsl:ServiceTypeIdentifier", "ServiceHistoryInstance/ServiceTypeIdentifier"),
            status=_text(h, "tsl:ServiceStatus", "ServiceHistoryInstance/ServiceStatus"),
            status_start=_parse_time(_text(h, "tsl:StatusStartingTime", "ServiceHistoryInstance/StatusStartingTime"),
                                     "ServiceHistoryInstance/StatusStartingTime"),
            additional_info=_additional_info(h),
        )
        for h in service.findall("tsl:ServiceHistory/tsl:ServiceHistoryInstance", _NS)
    )


def _service(service: etree._Element) -> ListedService:
    """A TSPService: its current ServiceInformation and its ServiceHistory."""
    element = _find(service, "tsl:ServiceInformation", "ServiceInformation")
    der_text = _text(element, "tsl:ServiceDigitalIdentity/tsl:DigitalId/tsl:X509Certificate", "service certificate")
    try:
        certificate = x509.load_der_x509_certificate(b64decode("".join(der_text.split()), validate=True))
    except ValueError:
        raise QTSPError(Kind.MALFORMED, "Trusted List: a service certificate does not parse") from None
    return ListedService(
        name=_name(element, "tsl:ServiceName", "ServiceName"),
        service_type=_text(element, "tsl:ServiceTypeIdentifier", "ServiceTypeIdentifier"),
        status=_text(element, "tsl:ServiceStatus", "ServiceStatus"),
        status_start=_parse_time(_text(element, "tsl:StatusStartingTime", "StatusStartingTime"), "StatusStartingTime"),
        certificate=certificate,
        additional_info=_additional_info(element),
        history=_history(service),
    )


def parse_and_verify_trusted_list(xml: bytes, signer_certs: Sequence[x509.Certificate], now: dt.datetime) -> ParsedList:
    """Parse a Trusted List safely, verify its XAdES signature against the pinned signer certificate(s),
    and refuse it past its NextUpdate (at ``now``). Everything returned comes from the signed content only."""
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
        raise QTSPError(Kind.POLICY, f"the Trusted List is stale: its NextUpdate {xml_time(next_update)} has passed "
                                     f"(checked at {xml_time(now)})")
    providers = signed.findall("tsl:TrustServiceProviderList/tsl:TrustServiceProvider", _NS)
    services = tuple(_service(s) for p in providers for s in p.findall("tsl:TSPServices/tsl:TSPService", _NS))
    return ParsedList(
        sequence=int(sequence_text),
        territory=_text(info, "tsl:SchemeTerritory", "SchemeTerritory"),
        operator=_name(info, "tsl:SchemeOperatorName", "SchemeOperatorName"),
        issued_at=_parse_time(_text(info, "tsl:ListIssueDateTime", "ListIssueDateTime"), "ListIssueDateTime"),
        next_update=next_update,
        signer=signer,
        services=services,
    )
