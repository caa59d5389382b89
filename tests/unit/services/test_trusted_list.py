"""The sandbox Trusted List (ETSI TS 119 612), checked by parties we did not write, in process.

The TS 119 612 XSD is not obtainable here (no PyPI, Debian or npm package ships it), so the list is
checked with what was generated from it: pyhanko's xsdata bindings (``pyhanko.generated.etsi``),
parsed strictly and re-serialised to compare the element order with the schema's sequences; and
pyhanko's own EU TL reader (``eutl_parse``), which verifies the XAdES signature with signxml, and
its qualification assessor (``assess``), which decides whether a certificate is qualified.

(The list over a real server, RSA and Vault Transit signers: tests/system/services/test_trusted_list.py;
the CLI: tests/unit/cli/test_tl.py.)
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID, NameOID
from lxml import etree
from pyhanko.sign.validation.errors import SignatureValidationError
from pyhanko.sign.validation.qualified import eutl_parse
from pyhanko.sign.validation.qualified.assess import QualificationAssessor
from pyhanko.sign.validation.qualified.tsp import QcCertType
from pyhanko_certvalidator.authority import CertTrustAnchor
from pyhanko_certvalidator.errors import PathBuildingError, PathValidationError
from pyhanko_certvalidator.path import ValidationPath
from sqlalchemy import select
from xsdata.formats.dataclass.serializers import XmlSerializer

from ca_store.models import KeyReference, TrustedListRecord, TrustedListSigner
from qtsp.clock import as_of, utcnow
from qtsp.core.errors import Kind
from qtsp.core.trusted_list import CA_QC, FOR_ESEALS, FOR_WEB, GRANTED, TSL_TAG
from qtsp.relying_party import parse_and_verify_trusted_list
from qtsp.services import issuance, nca_identity, scenarios
from qtsp.services import trusted_list as tl
from qtsp.services.context import Sandbox

from support import SAMPLE_ORG
from support.tl import (asn1, assess, ca_certs, missing_required, other_signer, pyhanko_registry, refused, registry_services,
                        strict_parse, tsl_tags)


# --- what the list says, read by pyhanko's bindings and reader ---------------------------------


def test_list_parses_strictly_with_the_ts_119_612_bindings_in_schema_order(sandbox: Sandbox) -> None:
    now = utcnow()
    record = tl.current(sandbox, now)
    parsed = strict_parse(record.xml)

    assert missing_required(parsed) == []
    # xsdata serialises fields in the XSD's sequence order: the same tags in the same order means ours is in schema order.
    assert tsl_tags(record.xml) == tsl_tags(XmlSerializer().render(parsed))
    assert parsed.tsltag == TSL_TAG
    info = parsed.scheme_information
    assert (info.tslversion_identifier, info.tslsequence_number) == (5, record.sequence)
    assert info.tsltype.value == "http://uri.etsi.org/TrstSvc/TrustedList/TSLType/EUgeneric"
    assert info.status_determination_approach == "http://uri.etsi.org/TrstSvc/TrustedList/StatusDetn/EUappropriate"
    assert info.scheme_territory.value == sandbox.config.country
    assert info.historical_information_period == 65535
    assert info.scheme_operator_name.name[0].value == sandbox.config.organization
    assert "SANDBOX" in info.policy_or_legal_notice.tsllegal_notice[0].value
    assert "no legal value" in info.policy_or_legal_notice.tsllegal_notice[0].value.lower()
    assert info.distribution_points.uri == (sandbox.config.trusted_list_url,)
    issued, next_update = info.list_issue_date_time.to_datetime(), info.next_update.date_time.to_datetime()
    assert issued == record.issued_at and next_update == record.next_update
    assert next_update - issued == dt.timedelta(days=sandbox.config.trusted_list_validity_days)

    (provider,) = parsed.trust_service_provider_list.trust_service_provider
    assert provider.tspinformation.tspname.name[0].value == sandbox.config.organization
    assert provider.tspinformation.tsptrade_name.name[0].value == sandbox.config.organization_identifier
    cas = ca_certs(sandbox)
    listed = {}
    for service in provider.tspservices.tspservice:
        si = service.service_information
        assert si.service_type_identifier.value == CA_QC
        assert si.service_status.value == "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/granted"
        (digital_id,) = si.service_digital_identity.digital_id
        cert = x509.load_der_x509_certificate(digital_id.x509_certificate)
        assert si.status_starting_time.to_datetime() == cert.not_valid_before_utc
        uris = {c.uri.value for ext in si.service_information_extensions.extension for c in ext.content}
        listed[digital_id.x509_certificate] = uris
    assert listed == {cas["qwac-ca"][1]: {FOR_WEB}, cas["qwac-browser-ca"][1]: {FOR_WEB}, cas["qseal-ca"][1]: {FOR_ESEALS}}


def test_the_signature_validates_against_the_xmldsig_and_xades_schemas(sandbox: Sandbox) -> None:
    """The part of the list whose official schemas are obtainable here: W3C's XML-DSig core schema and
    ETSI's XAdES schemas (TS 101 903 v1.3.2 / v1.4.1), as signxml ships them. lxml validates the list's
    ds:Signature against them, and a SignedProperties with an element XAdES does not define fails."""
    from signxml.processor import get_schema

    xml = tl.current(sandbox, utcnow()).xml
    signature = etree.fromstring(xml).find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    assert signature is not None
    for schema_file in ("xmldsig-core-schema.xsd", "XAdESv141.xsd", "XAdES01903v132-201601.xsd"):
        schema = get_schema(schema_file)
        assert schema.validate(signature), (schema_file, schema.error_log)
    xades = "{http://uri.etsi.org/01903/v1.3.2#}"
    broken = etree.fromstring(xml).find("{http://www.w3.org/2000/09/xmldsig#}Signature")
    signed_properties = broken.find(f".//{xades}SignedSignatureProperties")
    assert signed_properties is not None
    etree.SubElement(signed_properties, f"{xades}NotInTheSchema").text = "x"
    schema = get_schema("XAdES01903v132-201601.xsd")
    assert not schema.validate(broken) and "NotInTheSchema" in str(schema.error_log)


def test_our_parser_returns_what_was_signed(sandbox: Sandbox) -> None:
    now = utcnow()
    record = tl.current(sandbox, now)
    signer = tl.signer_certificate(sandbox)
    parsed = parse_and_verify_trusted_list(record.xml, [signer], now)
    cas = ca_certs(sandbox)
    assert (parsed.sequence, parsed.territory, parsed.operator) == (record.sequence, "BE", sandbox.config.organization)
    assert (parsed.issued_at, parsed.next_update, parsed.signer) == (record.issued_at, record.next_update, signer)
    by_cert = {s.certificate.public_bytes(Encoding.DER): s for s in parsed.services}
    assert set(by_cert) == {cas["qwac-ca"][1], cas["qwac-browser-ca"][1], cas["qseal-ca"][1]}
    assert by_cert[cas["qwac-ca"][1]].additional_info == frozenset({FOR_WEB})
    assert by_cert[cas["qwac-browser-ca"][1]].additional_info == frozenset({FOR_WEB})  # both hierarchies: QWACs
    assert by_cert[cas["qseal-ca"][1]].additional_info == frozenset({FOR_ESEALS})
    assert all(s.service_type == CA_QC and s.status == GRANTED for s in parsed.services)
    assert "qwac-ca" in by_cert[cas["qwac-ca"][1]].name
    # A second pin (say, after a signer change) does not get in the way.
    assert parse_and_verify_trusted_list(record.xml, [other_signer()[1], signer], now).sequence == record.sequence


def test_signer_certificate_is_a_tlso_certificate_made_once(sandbox: Sandbox) -> None:
    results: list[x509.Certificate] = []
    threads = [threading.Thread(target=lambda: results.append(tl.signer_certificate(sandbox))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({c.fingerprint(hashes.SHA256()) for c in results}) == 1  # concurrent first use settles on one signer
    cert = results[0]
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COUNTRY_NAME)[0].value == sandbox.config.country
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == sandbox.config.organization
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value.endswith("Trusted List Signer")
    ku = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE)
    assert ku.critical and ku.value.digital_signature and ku.value.content_commitment and not ku.value.key_cert_sign
    eku = cert.extensions.get_extension_for_oid(ExtensionOID.EXTENDED_KEY_USAGE).value
    assert list(eku) == [x509.ObjectIdentifier("0.4.0.2231.3.0")]
    assert cert.not_valid_after_utc - cert.not_valid_before_utc >= dt.timedelta(days=3 * 365)
    with sandbox.transaction() as session:
        rows = session.execute(select(TrustedListSigner)).scalars().all()
        assert len(rows) == 1 and rows[0].cert_der == cert.public_bytes(Encoding.DER)
        key = session.get(KeyReference, rows[0].key_id)
        assert key is not None and key.ref.startswith("file:tl-signer-")  # a reference, never key material


def test_time_travel_keeps_the_pin_and_lists_as_of_then_verify_then(sandbox: Sandbox) -> None:
    pin = tl.signer_certificate(sandbox)
    past = utcnow() - dt.timedelta(days=2 * 365)  # as far back as the simulator backdates its CAs
    with as_of(past):
        assert tl.signer_certificate(sandbox) == pin
        record = tl.current(sandbox, utcnow())
    parsed = parse_and_verify_trusted_list(record.xml, [pin], past + dt.timedelta(minutes=1))
    assert parsed.issued_at <= past + dt.timedelta(minutes=1) < parsed.next_update
    # The list as of then was built for that request only: nothing was stored, the sequence is today's.
    today = tl.current(sandbox, utcnow())
    assert today.sequence == record.sequence and today.issued_at > record.issued_at
    with sandbox.transaction() as session:
        assert tl.latest(session).xml == today.xml


def test_pyhanko_reads_the_list_with_the_pinned_signer_and_assesses_qualification(sandbox: Sandbox) -> None:
    record = tl.current(sandbox, utcnow())
    signer = tl.signer_certificate(sandbox)
    cas = ca_certs(sandbox)
    registry = pyhanko_registry(record.xml, signer)
    assert registry_services(registry) == {cas["qwac-ca"][1]: {QcCertType.QC_WEB}, cas["qwac-browser-ca"][1]: {QcCertType.QC_WEB},
                                           cas["qseal-ca"][1]: {QcCertType.QC_ESEAL}}

    qwac = issuance.issue(sandbox, issuance.IssueRequest(kind="qwac", org_id=SAMPLE_ORG, domains=("api.example-fintech.eu",),
                                                         generate_key="ecdsa-p256"))
    result = assess(registry, qwac.certificate, qwac.chain, {"digital_signature"})
    assert result.status.qualified and result.status.qc_type is QcCertType.QC_WEB
    assert result.service_definition.base_info.provider_certs[0].dump() == cas["qwac-ca"][1]
    seal = issuance.issue(sandbox, issuance.IssueRequest(kind="qsealc", org_id=SAMPLE_ORG, generate_key="ecdsa-p256"))
    result = assess(registry, seal.certificate, seal.chain, {"non_repudiation"})
    assert result.status.qualified and result.status.qc_type is QcCertType.QC_ESEAL

    # An impostor CA with the QWAC CA's name but its own key, issuing the same QWAC content: not on the list.
    key = ec.generate_private_key(ec.SECP256R1())
    qwac_ca = qwac.chain[0]
    now = utcnow()
    impostor = (x509.CertificateBuilder().subject_name(qwac_ca.subject).issuer_name(qwac_ca.subject).public_key(key.public_key())
                .serial_number(99).not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=90))
                .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
                .sign(key, hashes.SHA256()))
    forged = x509.CertificateBuilder().subject_name(qwac.certificate.subject).issuer_name(impostor.subject) \
        .public_key(qwac.certificate.public_key()).serial_number(qwac.certificate.serial_number) \
        .not_valid_before(qwac.certificate.not_valid_before_utc).not_valid_after(qwac.certificate.not_valid_after_utc)
    for ext in qwac.certificate.extensions:
        if ext.oid != ExtensionOID.AUTHORITY_KEY_IDENTIFIER:
            forged = forged.add_extension(ext.value, ext.critical)
    forged_cert = forged.sign(key, hashes.SHA256())
    with pytest.raises(PathValidationError, match="signature"):  # the path to the listed CA by name fails its signature
        assess(registry, forged_cert, [impostor], {"digital_signature"})
    path = ValidationPath(trust_anchor=CertTrustAnchor(asn1(impostor)), interm=[], leaf=asn1(forged_cert))
    assert not QualificationAssessor(registry).check_entity_cert_qualified(path).status.qualified


def test_only_the_qualified_issuing_cas_and_the_listed_scenarios_ca_are_listed(sandbox: Sandbox, tmp_path: Path) -> None:
    before = tl.current(sandbox, utcnow())
    nca_identity.ensure_nca_ca(sandbox, utcnow())
    manifest = scenarios.issue(sandbox, ["valid-qwac", "issuer-not-in-tl"], tmp_path / "scenarios")
    record = tl.current(sandbox, utcnow())
    assert record.sequence == before.sequence + 1  # the new listed CA changed the services
    cas = ca_certs(sandbox)
    assert {cas[i][0] for i in cas} >= {"root", "nca", "qwac", "qseal", "scenarios", "scenarios-unlisted", "scenarios-sub"}
    signer = tl.signer_certificate(sandbox)
    parsed = parse_and_verify_trusted_list(record.xml, [signer], utcnow())
    listed = {s.certificate.public_bytes(Encoding.DER): s.additional_info for s in parsed.services}
    assert listed == {cas["qwac-ca"][1]: {FOR_WEB}, cas["qwac-browser-ca"][1]: {FOR_WEB}, cas["qseal-ca"][1]: {FOR_ESEALS},
                      cas["scenarios-ca"][1]: {FOR_WEB, FOR_ESEALS}}

    registry = pyhanko_registry(record.xml, signer)
    assert registry_services(registry)[cas["scenarios-ca"][1]] == {QcCertType.QC_WEB, QcCertType.QC_ESEAL}
    out = tmp_path / "scenarios"
    entries = {e["name"]: e for e in manifest["scenarios"]}

    def load(entry: dict[str, Any]) -> tuple[x509.Certificate, list[x509.Certificate]]:
        chain = [x509.load_pem_x509_certificate((out / p).read_bytes()) for p in entry["chain"]]
        return x509.load_pem_x509_certificate((out / entry["certificate"]).read_bytes()), chain

    leaf, chain = load(entries["valid-qwac"])
    result = assess(registry, leaf, chain, {"digital_signature"})
    assert result.status.qualified and result.status.qc_type is QcCertType.QC_WEB
    leaf, chain = load(entries["issuer-not-in-tl"])
    with pytest.raises(PathBuildingError):  # its issuer is no service of the list: no path to a TL anchor
        assess(registry, leaf, chain, {"digital_signature"})
    unlisted = x509.load_der_x509_certificate(cas["scenarios-unlisted-ca"][1])
    path = ValidationPath(trust_anchor=CertTrustAnchor(asn1(unlisted)), interm=[], leaf=asn1(leaf))
    assert not QualificationAssessor(registry).check_entity_cert_qualified(path).status.qualified


# --- the store: sequence numbers, regeneration, races ---------------------------------------------


def test_the_list_is_kept_until_half_its_validity_then_the_next_sequence_is_made(sandbox: Sandbox) -> None:
    now = utcnow()
    first = tl.current(sandbox, now)
    assert tl.current(sandbox, now + dt.timedelta(hours=1)).sequence == first.sequence
    half = (first.next_update - first.issued_at) / 2
    later = first.issued_at + half + dt.timedelta(seconds=1)
    results: list[TrustedListRecord] = []
    threads = [threading.Thread(target=lambda: results.append(tl.current(sandbox, later))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {r.sequence for r in results} == {first.sequence + 1}  # racing builders settle on one new list
    with sandbox.transaction() as session:
        sequences = list(session.execute(select(TrustedListRecord.sequence).order_by(TrustedListRecord.sequence)).scalars())
    assert sequences == [first.sequence, first.sequence + 1]
    parsed = parse_and_verify_trusted_list(results[0].xml, [tl.signer_certificate(sandbox)], later)
    assert parsed.issued_at == later.replace(microsecond=0)


# --- refusals: tampering, the wrong signer, staleness, hostile XML -----------------------------


def _flip_in_certificate(xml: bytes) -> bytes:
    match = re.search(rb"<X509Certificate>([A-Za-z0-9+/=\s]+)</X509Certificate>", xml)
    assert match is not None
    i = match.start(1) + 200
    return xml[:i] + (b"A" if xml[i:i + 1] != b"A" else b"B") + xml[i + 1:]


def _withdraw(xml: bytes) -> bytes:
    return xml.replace(b"/Svcstatus/granted<", b"/Svcstatus/withdrawn<", 1)


@pytest.mark.parametrize("tamper", [_flip_in_certificate, _withdraw], ids=["flipped-byte-in-service-certificate",
                                                                          "service-status-changed"])
def test_a_tampered_list_is_refused_by_us_and_by_pyhanko(sandbox: Sandbox, tamper: Any) -> None:
    now = utcnow()
    record = tl.current(sandbox, now)
    signer = tl.signer_certificate(sandbox)
    bad = tamper(record.xml)
    assert bad != record.xml
    refused(lambda: parse_and_verify_trusted_list(bad, [signer], now), Kind.INTEGRITY, "does not verify")
    with pytest.raises(SignatureValidationError):
        eutl_parse.trust_list_to_registry(bad.decode(), [asn1(signer)])


def test_a_list_signed_by_another_key_is_refused(sandbox: Sandbox) -> None:
    now = utcnow()
    pin = tl.signer_certificate(sandbox)
    with sandbox.transaction() as session:
        cas = tl.listed_cas(session)
    key, cert = other_signer()
    # Its own certificate in KeyInfo, or ours (another key behind our name).
    forged = {claimed: tl.sign_list(tl.build_list(sandbox.config, 999, now, now + dt.timedelta(days=30), cas),
                                    key, claimed, now)  # type: ignore[arg-type]
              for claimed in (cert, pin)}
    for xml in forged.values():
        refused(lambda: parse_and_verify_trusted_list(xml, [pin], now), Kind.INTEGRITY, "does not verify")
        with pytest.raises(SignatureValidationError):
            eutl_parse.trust_list_to_registry(xml.decode(), [asn1(pin)])
    # The refusal is about the signer, not the format: pinned to the other key, its own list verifies.
    assert parse_and_verify_trusted_list(forged[cert], [cert], now).sequence == 999
    refused(lambda: parse_and_verify_trusted_list(forged[cert], [], now), Kind.MALFORMED, "no Trusted List signer")


def test_a_list_past_its_next_update_is_refused(sandbox: Sandbox) -> None:
    record = tl.current(sandbox, utcnow())
    signer = tl.signer_certificate(sandbox)
    assert parse_and_verify_trusted_list(record.xml, [signer], record.next_update - dt.timedelta(seconds=1)).sequence == record.sequence
    for at in (record.next_update, record.next_update + dt.timedelta(days=1)):
        refused(lambda: parse_and_verify_trusted_list(record.xml, [signer], at), Kind.POLICY, "stale")
