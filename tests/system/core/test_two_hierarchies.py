"""The two QWAC hierarchies judged by parties we did not write: pkilint's command-line linter with each
hierarchy's validation type, and `openssl verify` against each root, which must also refuse a QWAC
presented under the other root or for the purpose its hierarchy leaves out.
(The same certificates field by field: tests/unit/services/test_two_hierarchies.py.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from qtsp.lint import NON_BROWSER_CLIENT_EKU_CODE, NON_BROWSER_VALIDITY_CODES
from qtsp.services import issuance, register
from qtsp.services.context import Sandbox
from qtsp.services.hierarchy import init_sandbox

from support.external import BIN

SAMPLE_ORG = "PSDBE-NBB-0123456789"  # registered by the conftest fixture
BROWSER_TYPE = "QEVCP-W-PSD2-EIDAS-FINAL-CERTIFICATE"
NON_BROWSER_TYPE = "QEVCP-W-PSD2-EIDAS-NON-BROWSER-FINAL-CERTIFICATE"


@pytest.fixture
def sandbox(public_sandbox: Sandbox) -> Sandbox:
    """Under a public base URL, so that every pkilint rule applies (tests/conftest.py)."""
    return public_sandbox


def _issue(sb: Sandbox, purpose: str) -> issuance.Issued:
    return issuance.issue(sb, issuance.IssueRequest("qwac", SAMPLE_ORG, domains=("api.example.com",),
                                                    generate_key="ecdsa-p256", purpose=purpose))


def _pkilint_errors(cert: x509.Certificate, lint_type: str, tmp_path: Path) -> set[str]:
    """The codes of pkilint's ERROR and FATAL findings on ``cert`` as ``lint_type``."""
    path = tmp_path / "cert.der"
    path.write_bytes(cert.public_bytes(Encoding.DER))
    exe = BIN / "lint_etsi_cert"
    assert exe.exists(), "lint_etsi_cert missing: pip install pkilint"
    result = subprocess.run([str(exe), "lint", "-t", lint_type, "-s", "ERROR", str(path)],
                            capture_output=True, text=True, timeout=120)
    codes = {line.strip().split(" ")[0] for line in result.stdout.splitlines() if "(ERROR)" in line or "(FATAL)" in line}
    assert result.returncode == len(codes), result.stdout + result.stderr  # its exit code counts the findings
    return codes


def test_pkilint_browser_qwac_is_clean(sandbox: Sandbox, tmp_path: Path) -> None:
    assert _pkilint_errors(_issue(sandbox, "server").certificate, BROWSER_TYPE, tmp_path) == set()


@pytest.mark.parametrize(("purpose", "waived"), [
    ("both", NON_BROWSER_VALIDITY_CODES),
    ("client", NON_BROWSER_VALIDITY_CODES | {NON_BROWSER_CLIENT_EKU_CODE}),
])
def test_pkilint_non_browser_qwacs_find_only_what_qtsp_lint_waives(sandbox: Sandbox, tmp_path: Path, purpose: str,
                                                                   waived: frozenset[str]) -> None:
    """pkilint 0.13.3's non-browser type still applies the browsers' SC-081 schedule (200 days now) and, to a
    client-only QWAC, the BR rule that a TLS certificate asserts serverAuth: those, and nothing else."""
    found = _pkilint_errors(_issue(sandbox, purpose).certificate, NON_BROWSER_TYPE, tmp_path)
    assert found and found <= waived, found


def test_pkilint_non_browser_qwac_within_the_browser_schedule_is_clean(tmp_path: Path) -> None:
    """With qwac_mtls_validity_days inside the current CA/B row, the non-browser QWAC lints clean as it is."""
    cfg = tmp_path / "qtsp.toml"
    cfg.write_text('base_url = "http://qtsp.example.eu:8080"\nqwac_mtls_validity_days = 47\n')
    sb = init_sandbox(tmp_path / "data", config_file=cfg)
    try:
        register.add_psp(sb, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                         locality="Brussels", registration_number="0123.456.789")
        assert _pkilint_errors(_issue(sb, "both").certificate, NON_BROWSER_TYPE, tmp_path) == set()
    finally:
        sb.engine.dispose()


def _verify(tmp_path: Path, root: x509.Certificate, issuing: x509.Certificate, leaf: x509.Certificate,
            purpose: str) -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing: apt-get install openssl"
    for name, cert in (("root", root), ("issuing", issuing), ("leaf", leaf)):
        (tmp_path / f"{name}.pem").write_bytes(cert.public_bytes(Encoding.PEM))
    return subprocess.run([openssl, "verify", "-x509_strict", "-CAfile", str(tmp_path / "root.pem"),
                           "-untrusted", str(tmp_path / "issuing.pem"), "-purpose", purpose, str(tmp_path / "leaf.pem")],
                          capture_output=True, text=True, timeout=60)


def test_openssl_verifies_each_qwac_against_its_own_root_only(sandbox: Sandbox, tmp_path: Path) -> None:
    server, client, both = (_issue(sandbox, purpose) for purpose in ("server", "client", "both"))
    browser_root, mtls_root = server.chain[1], both.chain[1]
    assert browser_root != mtls_root and client.chain == both.chain

    def passes(issued: issuance.Issued, root: x509.Certificate, purpose: str) -> bool:
        result = _verify(tmp_path, root, issued.chain[0], issued.certificate, purpose)
        assert (result.returncode == 0) == result.stdout.strip().endswith("OK"), result.stdout + result.stderr
        return result.returncode == 0

    assert passes(server, browser_root, "sslserver")
    assert passes(both, mtls_root, "sslserver") and passes(both, mtls_root, "sslclient")
    assert passes(client, mtls_root, "sslclient")
    # Refused: a browser QWAC as a TLS client (serverAuth only), a client-only QWAC as a server...
    assert not passes(server, browser_root, "sslclient")
    assert not passes(client, mtls_root, "sslserver")
    # ... and either hierarchy's QWAC under the other's root (its issuing CA presented as well).
    assert not passes(server, mtls_root, "sslserver")
    assert not passes(both, browser_root, "sslclient")
    assert not passes(client, browser_root, "sslclient")
