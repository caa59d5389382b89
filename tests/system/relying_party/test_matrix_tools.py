"""openssl verify and openssl ocsp, Java 17 PKIX, pkilint on the ARL and the CA's OCSP answer, and
the doc's table.

Rows of the relying-party matrix (docs/relying-parties.md): tests/support/rp_world.py serves the world once for
the package, tests/support/rp_matrix.py holds what each row must conclude."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import AuthorityInformationAccessOID

from support import rp_matrix
from support.external import find_openssl, output, run_tool
from support.loopback import HOST
from support.rp_world import World, check_row
from support.rp_matrix import ACCEPTED, CASES, REFUSED


# --- openssl verify and openssl ocsp -------------------------------------------------------------


@pytest.mark.parametrize("kind", rp_matrix.KINDS)
def test_openssl_verify_crl_check_all(world: World, kind: str) -> None:
    openssl = find_openssl()
    observed, seen = {}, {}
    for name in CASES:
        case = world.case(kind, name)
        ca_cert = x509.load_pem_x509_certificate(case.ca.read_bytes())
        crls = []
        for label, cert in (("leaf", case.cert), ("ca", ca_cert)):
            url = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value[0].full_name[0].value
            path = world.work / f"verify-{kind}-{name}-{label}.crl"
            path.write_bytes(world.fetch(url))
            crls += ["-CRLfile", str(path)]
        result = run_tool([openssl, "verify", "-crl_check_all", "-CAfile", str(world.root), "-untrusted", str(case.ca),
                           *crls, str(case.leaf)])
        text = output(result)
        observed[name] = ACCEPTED if result.returncode == 0 and f"{case.leaf}: OK" in text else (
            REFUSED if "certificate revoked" in text else f"error: {text[-300:]}")
        seen[name] = text.strip().splitlines()[-1] if text.strip() else ""
    check_row("openssl-verify", kind, observed, seen)


def _openssl_ocsp(world: World, cert: Path, issuer: Path, url: str) -> tuple[str, str]:
    result = run_tool([find_openssl(), "ocsp", "-issuer", str(issuer), "-cert", str(cert), "-url", world.local(url),
                       "-CAfile", str(world.root), "-no_nonce", "-timeout", "10"])
    text = output(result)
    if "Response verify OK" not in text:
        return f"error: {text[-300:]}", text
    for status in ("good", "revoked"):
        if f"{cert}: {status}" in text:
            return status, text
    return f"error: {text[-300:]}", text


@pytest.mark.parametrize("kind", rp_matrix.KINDS)
def test_openssl_ocsp_leaf_and_ca(world: World, kind: str) -> None:
    observed, seen = {}, {}
    for name in CASES:
        case = world.case(kind, name)
        ca_cert = x509.load_pem_x509_certificate(case.ca.read_bytes())
        leaf, leaf_text = _openssl_ocsp(world, case.leaf, case.ca, case.url(AuthorityInformationAccessOID.OCSP))
        ca, ca_text = _openssl_ocsp(world, case.ca, world.root, case.url(AuthorityInformationAccessOID.OCSP, ca_cert))
        statuses = {leaf, ca}
        observed[name] = REFUSED if "revoked" in statuses else ACCEPTED if statuses == {"good"} else f"error: {leaf} / {ca}"
        seen[name] = f"leaf {leaf}, CA {ca}"
    check_row("openssl-ocsp", kind, observed, seen)


# --- Java 17 PKIX ------------------------------------------------------------------------------------

JAVA_MODES = {
    "java-default": [],
    "java-crldp": ["-Dcom.sun.security.enableCRLDP=true"],
    "java-nonce": ["-Djdk.security.certpath.ocspNonce=true"],
}


@pytest.mark.parametrize("row_id", list(JAVA_MODES))
def test_java_pkix(world: World, bank_validator: Path, row_id: str) -> None:
    java = shutil.which("java")
    assert java, "java missing: install openjdk-17-jdk-headless"
    hosts = world.work / "hosts"
    hosts.write_text(f"127.0.0.1 {HOST}\n")
    paths = [f"{kind}/{name}={world.case(kind, name).leaf}:{world.case(kind, name).ca}"
             for kind in rp_matrix.KINDS for name in CASES]
    result = run_tool([java, f"-Djdk.net.hosts.file={hosts}", *JAVA_MODES[row_id], "-Dcom.sun.security.ocsp.timeout=10",
                       "-Dcom.sun.security.crl.timeout=10", "-Djava.net.useSystemProxies=false", "-cp", str(bank_validator),
                       "BankValidator", "--batch", str(world.root), *paths], timeout=120)
    assert result.returncode == 0, output(result)
    lines = dict(line.split(": ", 1) for line in result.stdout.splitlines() if ": " in line)
    for kind in rp_matrix.KINDS:
        said = {name: lines.get(f"{kind}/{name}", "missing") for name in CASES}
        observed = {name: ACCEPTED if v == "VALID" else REFUSED if v.startswith("REVOKED") else f"error: {v}"
                    for name, v in said.items()}
        check_row(row_id, kind, observed, said)
        # a revoked leaf is index 0 in the path, its revoked CA index 1: each refused for its own reason
        assert "certificate 0 in the path" in said["revoked"] and said["revoked"].startswith("REVOKED: KEY_COMPROMISE")
        assert "certificate 1 in the path" in said["ca-revoked"] and said["ca-revoked"].startswith("REVOKED: CA_COMPROMISE")


# --- what the root publishes about a revoked CA, linted -------------------------------------------


def test_pkilint_on_the_arl_and_the_ca_answer(world: World) -> None:
    """The ARL listing the revoked CAs (cACompromise) and the root-delegated responder's answer about one."""
    lint_crl, lint_ocsp = Path(sys.executable).parent / "lint_crl", Path(sys.executable).parent / "lint_ocsp_response"
    assert lint_crl.exists() and lint_ocsp.exists(), "pkilint missing: pip install pkilint"
    case = world.case("qwac", "ca-revoked")
    ca_cert = x509.load_pem_x509_certificate(case.ca.read_bytes())
    arl = world.work / "root.crl"
    arl.write_bytes(world.fetch(world.base + "/crl/root.crl"))
    entry = x509.load_der_x509_crl(arl.read_bytes()).get_revoked_certificate_by_serial_number(ca_cert.serial_number)
    assert entry is not None and entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == \
        x509.ReasonFlags.ca_compromise
    result = run_tool([str(lint_crl), "lint", "-t", "ARL", "-p", "BR", "-s", "ERROR", str(arl)])
    assert result.returncode == 0, output(result)

    from cryptography.x509 import ocsp

    root = x509.load_pem_x509_certificate(world.root.read_bytes())
    request = ocsp.OCSPRequestBuilder().add_certificate(ca_cert, root, hashes.SHA1()).build()
    body = world.fetch(case.url(AuthorityInformationAccessOID.OCSP, ca_cert), request.public_bytes(serialization.Encoding.DER))
    answer = ocsp.load_der_ocsp_response(body)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.ca_compromise
    path = world.work / "ca-revoked.ocsp"
    path.write_bytes(body)
    result = run_tool([str(lint_ocsp), "lint", "-s", "ERROR", str(path)])
    assert result.returncode == 0, output(result)


# --- the doc's table is the matrix the tests assert ----------------------------------------------


def test_docs_table_is_the_matrix() -> None:
    if os.environ.get("QTSP_WRITE_DOCS") == "1":
        rp_matrix.write_doc()
    table = rp_matrix.doc_table(rp_matrix.DOC.read_text())
    assert table == rp_matrix.render(), (f"{rp_matrix.DOC} differs from tests/support/rp_matrix.py: "
                                         "QTSP_WRITE_DOCS=1 pytest -k docs_table rewrites it")

