"""Per profile, judged by parties we did not write: pkilint's command-line linters and `openssl verify`,
on what the real issuance path produced. (The fields themselves: tests/unit/core/test_profiles.py.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from qtsp.services.context import Sandbox

from support.external import BIN
from support.profiles import issue_kind as _issue

SAMPLE_ORG = "PSDBE-NBB-0123456789"  # registered by the conftest fixture


@pytest.fixture
def sandbox(public_sandbox: Sandbox) -> Sandbox:
    """This module judges the profiles as a shared sandbox publishes them: under a public base URL
    (tests/conftest.py)."""
    return public_sandbox




# --- parties we did not write -------------------------------------------------------------


def _pkilint(tool: str, args: list[str], cert: x509.Certificate, tmp_path: Path) -> str:
    path = tmp_path / "cert.der"
    path.write_bytes(cert.public_bytes(Encoding.DER))
    exe = BIN / tool
    assert exe.exists(), f"{tool} missing: pip install pkilint"
    result = subprocess.run([str(exe), "lint", *args, "-s", "ERROR", str(path)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"{tool} {args}: {result.stdout}{result.stderr}"
    return result.stdout


def test_pkilint_qwac_clean(sandbox: Sandbox, tmp_path: Path) -> None:
    """The browser QWAC; the non-browser ones are judged in test_two_hierarchies.py (pkilint 0.13.3 applies
    the SC-081 schedule to them, qtsp/lint.py says why that finding is waived)."""
    cert = _issue(sandbox, "qwac", domains=("api.example.com",), purpose="server").certificate
    _pkilint("lint_etsi_cert", ["-t", "QEVCP-W-PSD2-EIDAS-FINAL-CERTIFICATE"], cert, tmp_path)


def test_loopback_default_differs_from_pkilint_only_in_its_own_service_urls(data_dir: Path, tmp_path: Path) -> None:
    """The default sandbox serves on 127.0.0.1: pkilint's only ERRORs are the internal-name findings on
    the AIA and CRL distribution point URLs we write (qtsp/lint.py waives exactly those)."""
    from qtsp.services.context import open_sandbox

    sb = open_sandbox(data_dir)
    assert sb.config.base.startswith("http://127.0.0.1:")
    for kind, kw, args in (("qwac", {"domains": ("api.example.com",), "purpose": "server"},
                            ["-t", "QEVCP-W-PSD2-EIDAS-FINAL-CERTIFICATE"]),
                           ("qsealc", {}, ["-d"])):
        cert = _issue(sb, kind, **kw).certificate
        path = tmp_path / f"{kind}.der"
        path.write_bytes(cert.public_bytes(Encoding.DER))
        result = subprocess.run([str(BIN / "lint_etsi_cert"), "lint", *args, "-s", "ERROR", str(path)],
                                capture_output=True, text=True, timeout=120)
        located = [line for line in result.stdout.splitlines() if " @ " in line]
        codes = [line.strip() for line in result.stdout.splitlines() if "(ERROR)" in line or "(FATAL)" in line]
        assert result.returncode == len(codes) == len(located) == 3, result.stdout
        assert all(c.startswith(("cabf.internal_domain_name", "etsi.internal_domain_name")) and '"127.0.0.1"' in c
                   for c in codes), codes
        assert all(("authorityInfoAccessSyntax" in loc or "cRLDistributionPoints" in loc)
                   and loc.endswith("uniformResourceIdentifier") for loc in located), located
    sb.engine.dispose()


@pytest.mark.parametrize("qscd", [False, True])
def test_pkilint_qsealc_clean(sandbox: Sandbox, tmp_path: Path, qscd: bool) -> None:
    cert = _issue(sandbox, "qsealc", qscd=qscd).certificate
    _pkilint("lint_etsi_cert", ["-d"], cert, tmp_path)


def test_pkilint_ca_and_ocsp_certificates_clean(sandbox: Sandbox, tmp_path: Path) -> None:
    from ca_store import repositories as repo

    with sandbox.transaction() as session:
        cas = {ca.id: ca for ca in repo.list_cas(session)}
    load = x509.load_der_x509_certificate
    _pkilint("lint_cabf_serverauth_cert", ["-t", "ROOT-CA"], load(cas["root"].cert_der), tmp_path)
    _pkilint("lint_cabf_serverauth_cert", ["-t", "INTERNAL-UNCONSTRAINED-TLS-CA"], load(cas["qwac-ca"].cert_der), tmp_path)
    _pkilint("lint_cabf_serverauth_cert", ["-t", "NON-TLS-CA"], load(cas["qseal-ca"].cert_der), tmp_path)
    _pkilint("lint_cabf_serverauth_cert", ["-t", "ROOT-CA"], load(cas["browser-root"].cert_der), tmp_path)
    _pkilint("lint_cabf_serverauth_cert", ["-t", "INTERNAL-UNCONSTRAINED-TLS-CA"], load(cas["qwac-browser-ca"].cert_der),
             tmp_path)
    # The issuing CAs' responders, and the root's delegated responder (it answers for the issuing CAs).
    for ca_id in ("qwac-ca", "qseal-ca", "qwac-browser-ca", "root"):
        responder = cas[ca_id].ocsp_responder_der
        assert responder is not None, ca_id
        _pkilint("lint_cabf_serverauth_cert", ["-t", "OCSP-RESPONDER"], load(responder), tmp_path)
        _pkilint("lint_pkix_cert", [], load(responder), tmp_path) if (BIN / "lint_pkix_cert").exists() else None


def _openssl_verify(tmp_path: Path, root: x509.Certificate, chain: list[x509.Certificate], leaf: x509.Certificate, *extra: str) -> None:
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing: apt-get install openssl"
    (tmp_path / "root.pem").write_bytes(root.public_bytes(Encoding.PEM))
    (tmp_path / "untrusted.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in chain))
    (tmp_path / "leaf.pem").write_bytes(leaf.public_bytes(Encoding.PEM))
    result = subprocess.run(
        [openssl, "verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem"), "-untrusted", str(tmp_path / "untrusted.pem"),
         *extra, str(tmp_path / "leaf.pem")],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0 and result.stdout.strip().endswith("OK"), result.stdout + result.stderr


def test_openssl_verifies_every_issued_certificate(sandbox: Sandbox, tmp_path: Path) -> None:
    from ca_store import repositories as repo

    mtls = _issue(sandbox, "qwac", domains=("api.example.com",))
    browser = _issue(sandbox, "qwac", domains=("www.example.com",), browser=True)
    seal = _issue(sandbox, "qsealc")
    root = mtls.chain[1]
    _openssl_verify(tmp_path, root, mtls.chain[:1], mtls.certificate, "-purpose", "sslserver")
    _openssl_verify(tmp_path, root, mtls.chain[:1], mtls.certificate, "-purpose", "sslclient")
    _openssl_verify(tmp_path, browser.chain[1], browser.chain[:1], browser.certificate, "-purpose", "sslserver")
    _openssl_verify(tmp_path, root, seal.chain[:1], seal.certificate)
    with sandbox.transaction() as session:
        rows = {ca.id: ca for ca in repo.list_cas(session)}
        for ca in rows.values():
            if ca.ocsp_responder_der:
                issuer = x509.load_der_x509_certificate(ca.cert_der)
                own_root = x509.load_der_x509_certificate(rows[ca.parent_id or ca.id].cert_der)
                _openssl_verify(tmp_path, own_root, [issuer], x509.load_der_x509_certificate(ca.ocsp_responder_der))
    # and a certificate that does not chain is refused (the check can fail)
    bad = subprocess.run(["openssl", "verify", "-CAfile", str(tmp_path / "leaf.pem"), str(tmp_path / "root.pem")],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0
