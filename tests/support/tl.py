"""Trusted List helpers (tests/unit/services/test_trusted_list.py, tests/unit/cli/test_tl.py,
tests/system/services/test_trusted_list.py): strict parsing with pyhanko's TS 119 612 bindings, pyhanko's
EU TL reader and qualification assessor, a signer of someone else's, the CLI in process, refusals."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
from typing import Any

import pytest
from asn1crypto import x509 as asn1_x509
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree
from pyhanko.generated.etsi import TrustServiceStatusList
from pyhanko.sign.validation.qualified import eutl_parse
from pyhanko.sign.validation.qualified.assess import QualificationAssessor
from pyhanko.sign.validation.qualified.tsp import QcCertType, TSPRegistry, TSPTrustManager
from pyhanko_certvalidator import CertificateValidator, ValidationContext
from xsdata.formats.dataclass.parsers import XmlParser
from xsdata.formats.dataclass.parsers.config import ParserConfig

from ca_store import repositories as repo
from cli.main import cli
from qtsp.clock import as_of, utcnow
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.trusted_list import CA_QC
from qtsp.services.context import Sandbox

TSL = "{http://uri.etsi.org/02231/v2#}"
STRICT = ParserConfig(fail_on_unknown_properties=True, fail_on_unknown_attributes=True, fail_on_converter_warnings=True)


def ca_certs(sandbox: Sandbox) -> dict[str, tuple[str, bytes]]:
    with sandbox.transaction() as session:
        return {ca.id: (ca.role, ca.cert_der) for ca in repo.list_cas(session)}


def strict_parse(xml: bytes) -> Any:
    return XmlParser(config=STRICT).from_bytes(xml, TrustServiceStatusList)


def missing_required(obj: Any, path: str = "") -> list[str]:
    """Fields the bindings mark required (or min_occurs >= 1) that are absent, anywhere in the tree."""
    out: list[str] = []
    if isinstance(obj, (list, tuple)):
        for i, item in enumerate(obj):
            out += missing_required(item, f"{path}[{i}]")
        return out
    if not dataclasses.is_dataclass(obj):
        return out
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if (f.metadata.get("required") and value in (None, "")) or (f.metadata.get("min_occurs", 0) >= 1 and not value):
            out.append(f"{path}/{f.metadata.get('name', f.name)}")
        out += missing_required(value, f"{path}/{f.metadata.get('name', f.name)}")
    return out


def tsl_tags(xml: bytes | str) -> list[str]:
    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    return [e.tag for e in root.iter() if isinstance(e.tag, str) and e.tag.startswith(TSL)]


def asn1(cert: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(cert.public_bytes(Encoding.DER))


def pyhanko_registry(xml: bytes, signer: x509.Certificate) -> TSPRegistry:
    registry, errors = eutl_parse.trust_list_to_registry(xml.decode(), [asn1(signer)])
    assert errors == []
    return registry


def registry_services(registry: TSPRegistry) -> dict[bytes, set[QcCertType]]:
    """Listed CA certificate (DER) -> the certificate types its service is for, as pyhanko reads them."""
    out: dict[bytes, set[QcCertType]] = {}
    for authority in registry.known_certificate_authorities:
        for sd in registry.applicable_service_definitions(authority, None):
            assert sd.base_info.service_type == CA_QC
            for cert in sd.base_info.provider_certs:
                out.setdefault(cert.dump(), set()).update(sd.base_info.additional_info_certificate_type)
    return out


def assess(registry: TSPRegistry, leaf: x509.Certificate, chain: list[x509.Certificate], usage: set[str]) -> Any:
    """pyhanko-certvalidator builds the path to a TL service (trust anchors = listed CAs), then the assessor decides."""
    context = ValidationContext(trust_manager=TSPTrustManager(registry), allow_fetching=False, revocation_mode="soft-fail")
    validator = CertificateValidator(asn1(leaf), intermediate_certs=[asn1(c) for c in chain], validation_context=context)
    path = asyncio.run(validator.async_validate_usage(usage))
    return QualificationAssessor(registry).check_entity_cert_qualified(path)


def other_signer() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "Mallory TL Signer")])
    now = utcnow()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(7)
            .not_valid_before(now - dt.timedelta(days=1)).not_valid_after(now + dt.timedelta(days=30))
            .sign(key, hashes.SHA384()))
    return key, cert


def run(*args: Any) -> Result:
    with as_of(None):  # --at sets the process's clock offset; keep it from leaking into the next test
        return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def refused(call: Any, kind: Kind, fragment: str) -> QTSPError:
    with pytest.raises(QTSPError) as info:
        call()
    assert info.value.kind is kind, info.value.detail
    assert fragment in info.value.detail, info.value.detail
    return info.value
