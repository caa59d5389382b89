"""Trust stores from a Trusted List (qtsp/relying_party/trust_export.py, ServiceHistory in trusted_list.py):
which CA/QC services are granted for QWACs or QSealCs at a time, their history included, checked against
pyhanko's own TS 119 612 reader on the same signed list; the PEM and PKCS#12 encodings; and
``qtsp trust export`` refusing what it must. nginx and Java loading the stores:
tests/system/relying_party/test_trust_export_consumers.py."""

from __future__ import annotations

import datetime as dt
import json
from base64 import b64encode
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree
from pyhanko.sign.validation.qualified.tsp import QcCertType

from cli.main import cli
from qtsp.core.trusted_list import CA_QC, FOR_ESEALS, FOR_WEB, GRANTED, TSL_NS, XML_LANG
from qtsp.relying_party import parse_and_verify_trusted_list
from qtsp.relying_party.trust_export import granted, pem_bundle, pkcs12_truststore
from qtsp.services.context import Sandbox
from qtsp.services.tl_xml import ListedCA, build_list, sign_list
from support import artifacts
from support.tl import other_signer, pyhanko_registry

NOW = artifacts.NOW
T0, T1, T2 = NOW - dt.timedelta(days=20), NOW - dt.timedelta(days=10), NOW - dt.timedelta(days=5)
WITHDRAWN = "http://uri.etsi.org/TrstSvc/TrustedList/Svcstatus/withdrawn"
MOMENTS = {"before": T0 - dt.timedelta(days=1), "t0-t1": T0 + dt.timedelta(days=2), "t1-t2": T1 + dt.timedelta(days=2),
           "now": NOW}


def _el(parent: etree._Element, name: str, text: str | None = None, **attrs: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{TSL_NS}}}{name}", **attrs)
    if text is not None:
        element.text = text
    return element


def _history(service: etree._Element, cert: x509.Certificate, *states: tuple[str, dt.datetime, tuple[str, ...]]) -> None:
    """ServiceHistory after ServiceInformation (TS 119 612 5.6), one instance per earlier state."""
    history = etree.Element(f"{{{TSL_NS}}}ServiceHistory")
    service.addnext(history)
    for status, start, uris in states:
        h = _el(history, "ServiceHistoryInstance")
        _el(h, "ServiceTypeIdentifier", CA_QC)
        _el(_el(h, "ServiceName"), "Name", "earlier", **{XML_LANG: "en"})
        _el(_el(_el(h, "ServiceDigitalIdentity"), "DigitalId"), "X509Certificate",
            b64encode(cert.public_bytes(serialization.Encoding.DER)).decode())
        _el(h, "ServiceStatus", status)
        _el(h, "StatusStartingTime", start.strftime("%Y-%m-%dT%H:%M:%SZ"))
        if uris:
            extensions = _el(h, "ServiceInformationExtensions")
            for uri in uris:
                _el(_el(_el(extensions, "Extension", Critical="false"), "AdditionalServiceInformation"), "URI", uri,
                    **{XML_LANG: "en"})


@pytest.fixture(scope="module")
def listed() -> tuple[bytes, x509.Certificate, dict[str, x509.Certificate]]:
    """A foreign list, signed by someone else's TL signer:
    - web: granted for web since T2; withdrawn T1..T2; granted for web T0..T1;
    - seal: withdrawn since T1; granted for seals T0..T1;
    - switched: granted for web since T1; granted for seals T0..T1."""
    from qtsp.config import Config

    pki = artifacts.make_pki()
    cas = {"web": artifacts.issue("Foreign Web CA", pki.root, ca=True).cert,
           "seal": artifacts.issue("Foreign Seal CA", pki.root, ca=True).cert,
           "switched": artifacts.issue("Foreign Switched CA", pki.root, ca=True).cert}
    cfg = Config()
    rows = [ListedCA("web", "qwac", "Foreign Web CA", cas["web"].public_bytes(serialization.Encoding.DER), T2),
            ListedCA("seal", "qseal", "Foreign Seal CA", cas["seal"].public_bytes(serialization.Encoding.DER), T1),
            ListedCA("switched", "qwac", "Foreign Switched CA", cas["switched"].public_bytes(serialization.Encoding.DER), T1)]
    root = build_list(cfg, 3, NOW - dt.timedelta(hours=1), NOW + dt.timedelta(days=30), rows)
    infos = root.findall(f".//{{{TSL_NS}}}ServiceInformation")
    infos[1].find(f"{{{TSL_NS}}}ServiceStatus").text = WITHDRAWN  # type: ignore[union-attr]
    _history(infos[0], cas["web"], (WITHDRAWN, T1, ()), (GRANTED, T0, (FOR_WEB,)))
    _history(infos[1], cas["seal"], (GRANTED, T0, (FOR_ESEALS,)))
    _history(infos[2], cas["switched"], (GRANTED, T0, (FOR_ESEALS,)))
    etree.indent(root)
    key, signer = other_signer()
    return sign_list(root, key, signer, NOW), signer, cas


EXPECTED = {  # moment -> (QWAC anchors, QSealC anchors)
    "before": (set(), set()),
    "t0-t1": ({"web"}, {"seal", "switched"}),
    "t1-t2": ({"switched"}, set()),
    "now": ({"web", "switched"}, set()),
}


@pytest.mark.parametrize("moment", list(MOMENTS))
def test_granted_services_follow_the_history(listed: tuple[bytes, x509.Certificate, dict[str, x509.Certificate]],
                                             moment: str) -> None:
    xml, signer, cas = listed
    tl = parse_and_verify_trusted_list(xml, [signer], NOW)
    by_cert = {c.public_bytes(serialization.Encoding.DER): name for name, c in cas.items()}
    got = tuple({by_cert[a.certificate.public_bytes(serialization.Encoding.DER)]
                 for a in granted(tl, kind, MOMENTS[moment])[0]} for kind in ("QWAC", "QSealC"))
    assert got == EXPECTED[moment]
    # pyhanko's TS 119 612 reader, on the same list, at the same moment, agrees.
    registry = pyhanko_registry(xml, signer)
    theirs: dict[QcCertType, set[str]] = {QcCertType.QC_WEB: set(), QcCertType.QC_ESEAL: set()}
    for authority in registry.known_certificate_authorities:
        for sd in registry.applicable_service_definitions(authority, MOMENTS[moment]):
            for cert in sd.base_info.provider_certs:
                for kind in sd.base_info.additional_info_certificate_type & set(theirs):
                    theirs[kind].add(by_cert[cert.dump()])
    assert (theirs[QcCertType.QC_WEB], theirs[QcCertType.QC_ESEAL]) == EXPECTED[moment]


def test_the_encodings_name_each_service(listed: tuple[bytes, x509.Certificate, dict[str, x509.Certificate]]) -> None:
    xml, signer, cas = listed
    tl = parse_and_verify_trusted_list(xml, [signer], NOW)
    anchors, skipped = granted(tl, "QWAC", NOW)
    assert skipped == ["Foreign Seal CA: withdrawn at " + NOW.strftime("%Y-%m-%dT%H:%M:%SZ")]
    bundle = pem_bundle(anchors, kind="QWAC", tl=tl, at=NOW)
    assert x509.load_pem_x509_certificates(bundle) == [a.certificate for a in anchors]
    assert b"# Foreign Web CA\n" in bundle and b"# Foreign Switched CA\n" in bundle
    store = pkcs12.load_pkcs12(pkcs12_truststore(anchors, b"pw"), b"pw")
    assert store.key is None and store.cert is None
    assert sorted(c.friendly_name for c in store.additional_certs) == [b"Foreign Switched CA", b"Foreign Web CA"]


def _export(*args: object) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["trust", "export", *map(str, args)], catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_the_command_refuses_what_it_must(listed: tuple[bytes, x509.Certificate, dict[str, x509.Certificate]],
                                          tmp_path: Path) -> None:
    xml, signer, _ = listed
    (tmp_path / "tl.xml").write_bytes(xml)
    (tmp_path / "signer.pem").write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    _, mallory = other_signer()
    (tmp_path / "mallory.pem").write_bytes(mallory.public_bytes(serialization.Encoding.PEM))
    common = ["--tl", tmp_path / "tl.xml", "--service", "QWAC"]
    code, out, _ = _export(tmp_path / "ok.pem", *common, "--tl-signer", tmp_path / "signer.pem", "--json")
    assert code == 0 and len(json.loads(out)["anchors"]) == 2
    code, _, err = _export(tmp_path / "ok.pem", *common, "--tl-signer", tmp_path / "signer.pem")
    assert code == 5 and "refusing to overwrite" in err  # never overwritten
    code, _, err = _export(tmp_path / "m.pem", *common, "--tl-signer", tmp_path / "mallory.pem")
    assert code == 10 and "does not verify" in err and not (tmp_path / "m.pem").exists()
    code, _, err = _export(tmp_path / "s.pem", "--tl", tmp_path / "tl.xml", "--service", "QSealC", "--tl-signer",
                           tmp_path / "signer.pem")
    assert code == 4 and "grants no CA/QC service for QSealC" in err and "withdrawn" in err
    # As of a time when the seal service was granted (the service history decides).
    code, out, _ = _export(tmp_path / "s.pem", "--tl", tmp_path / "tl.xml", "--service", "QSealC", "--tl-signer",
                           tmp_path / "signer.pem", "--at", MOMENTS["t0-t1"].strftime("%Y-%m-%dT%H:%M:%SZ"), "--json")
    assert code == 0 and sorted(a["name"] for a in json.loads(out)["anchors"]) == ["Foreign Seal CA", "Foreign Switched CA"]


def test_the_sandboxs_own_list(sandbox: Sandbox, tmp_path: Path) -> None:
    from qtsp.clock import utcnow
    from qtsp.services import trusted_list

    now = utcnow()
    tl = parse_and_verify_trusted_list(trusted_list.current(sandbox, now).xml, [trusted_list.signer_certificate(sandbox)], now)
    web = {a.name for a in granted(tl, "QWAC", now)[0]}
    seals = {a.name for a in granted(tl, "QSealC", now)[0]}
    assert any("(qwac-ca)" in n for n in web) and any("(qwac-browser-ca)" in n for n in web)
    assert any("(qseal-ca)" in n for n in seals) and not web & seals
