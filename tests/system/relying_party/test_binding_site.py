"""2-QWACs and their TLS certificate bindings end to end, judged by parties qtsp did not write (issue 18).

One sandbox is served on 127.0.0.1 (``qtsp serve``: OCSP, CRLs, the Trusted List) under the public name its
certificates carry. Through the command line, as a site operator would:

* ``qtsp issue two-qwac`` issues a 2-QWAC; ``openssl verify -x509_strict`` (CRLs at every level) verifies its
  chain to the root; pkilint 0.13.3 lints it: its closest type, QNCP-W-GEN-LEGAL-PERSON-EIDAS-FINAL-CERTIFICATE,
  reports only the CA/B TLS rule a 2-QWAC must break (serverAuth absent: TS 119 411-5 4.2.2 forbids it), and
  its own type detection takes it for a generic legal-person certificate (NCP) with no finding;
* ``qtsp binding sign`` binds a TLS certificate made by ``openssl req``; the hash is recomputed from
  ``openssl x509 -outform DER``, the signature verified by jwcrypto;
* ``qtsp site serve`` serves the TLS certificate, the Link header and the binding; ``qtsp binding check``
  fetches it over TLS and reaches, for every binding of the scenario catalogue, the manifest's verdict and
  reasons (against the Trusted List, and with the root pinned as anchor).

The unit counterpart: tests/unit/relying_party/test_binding.py.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import signal
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from qtsp.core import oids
from qtsp.services import register, scenario_bindings, scenarios
from qtsp.services.context import Sandbox

from support import ROOT, SAMPLE_ORG
from support.external import BIN, find_openssl, output, run_tool
from support.loopback import Served, served_sandbox
from support.server import free_port

QTSP = [sys.executable, "-m", "cli.main"]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Served, Path, dict[str, Any]]]:
    work = tmp_path_factory.mktemp("bindings")
    made: dict[str, Any] = {}

    def prepare(sandbox: Sandbox, _data_dir: Path) -> None:
        register.add_psp(sandbox, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                         locality="Brussels", registration_number="0123.456.789")
        made["manifest"] = scenarios.issue(sandbox, list(scenario_bindings.BINDINGS), work / "catalogue")

    with served_sandbox(work, "crl_debounce_seconds = 0\n", prepare=prepare) as srv:
        yield srv, work, made["manifest"]


def _qtsp(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(QTSP + list(args), capture_output=True, text=True, cwd=ROOT, timeout=timeout)


def _connect_to(srv: Served) -> str:
    return srv.url.removeprefix("http://")


def _get(srv: Served, path: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(srv.url + path, timeout=10) as response:  # noqa: S310 - loopback
        return bytes(response.read())


@pytest.fixture(scope="module")
def two_qwac(served: tuple[Served, Path, dict[str, Any]]) -> Path:
    srv, work, _ = served
    out = work / "two-qwac"
    result = _qtsp("issue", "two-qwac", "--org-id", SAMPLE_ORG, "--domain", "www.example-fintech.eu",
                   "--generate-key", "--out", str(out), "--data-dir", str(srv.data_dir))
    assert result.returncode == 0, output(result)
    assert "issued 2-QWAC serial" in result.stdout and "by two-qwac-ca" in result.stdout
    return out


def test_openssl_verifies_the_2qwac_chain_with_crls(served: tuple[Served, Path, dict[str, Any]], two_qwac: Path,
                                                    tmp_path: Path) -> None:
    srv, _, _ = served
    root = tmp_path / "root.pem"
    root.write_bytes(x509.load_der_x509_certificate(_get(srv, "/ca/root.der")).public_bytes(Encoding.PEM))
    crls = tmp_path / "crls.pem"
    pem = b""
    for ca in ("root", "two-qwac-ca"):  # the root's ARL (it lists revoked CAs) and the 2-QWAC CA's CRL
        pem += x509.load_der_x509_crl(_get(srv, f"/crl/{ca}.crl")).public_bytes(Encoding.PEM)
    crls.write_bytes(pem)
    result = run_tool([find_openssl(), "verify", "-x509_strict", "-purpose", "any", "-CAfile", str(root),
                       "-untrusted", str(two_qwac / "chain.pem"), "-CRLfile", str(crls), "-crl_check_all",
                       str(two_qwac / "cert.pem")])
    assert result.returncode == 0 and result.stdout.strip().endswith(": OK"), output(result)
    # A 2-QWAC is no TLS server certificate: openssl's sslserver purpose refuses it (no serverAuth EKU).
    result = run_tool([find_openssl(), "verify", "-x509_strict", "-purpose", "sslserver", "-CAfile", str(root),
                       "-untrusted", str(two_qwac / "chain.pem"), str(two_qwac / "cert.pem")])
    assert result.returncode != 0 and "unsuitable certificate purpose" in output(result)


def test_pkilint_on_the_2qwac(two_qwac: Path, tmp_path: Path) -> None:
    der = tmp_path / "two-qwac.der"
    run_tool([find_openssl(), "x509", "-in", str(two_qwac / "cert.pem"), "-outform", "DER", "-out", str(der)])
    lint = str(BIN / "lint_etsi_cert")
    closest = run_tool([lint, "lint", "-t", "QNCP-W-GEN-LEGAL-PERSON-EIDAS-FINAL-CERTIFICATE", "-s", "WARNING", str(der)],
                       timeout=120)
    findings = sorted(line.strip() for line in closest.stdout.splitlines() if line.startswith("    "))
    # Only what a 2-QWAC must be: no serverAuth (TS 119 411-5 4.2.2), an EKU the CA/B rules do not know.
    assert findings == ["cabf.serverauth.subscriber.serverauth_eku_absent (ERROR)",
                        "cabf.serverauth.subscriber.unknown_eku_present (WARNING): Unknown EKU present: 0.4.0.194115.1.0"], \
        closest.stdout
    detected = run_tool([lint, "lint", "-d", "-s", "WARNING", str(der)], timeout=120)
    assert detected.returncode == 0 and not detected.stdout.strip(), detected.stdout


def test_cli_binding_hashes_from_openssl_and_signature_by_jwcrypto(served: tuple[Served, Path, dict[str, Any]],
                                                                   two_qwac: Path, tmp_path: Path) -> None:
    from jwcrypto import jwk, jws

    srv, _, _ = served
    openssl = find_openssl()
    made = run_tool([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                     "-keyout", str(tmp_path / "tls.key"), "-out", str(tmp_path / "tls.pem"), "-days", "30",
                     "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
    assert made.returncode == 0, output(made)
    out = tmp_path / "site.jws"
    result = _qtsp("binding", "sign", "--signer", str(two_qwac), "--tls-cert", str(tmp_path / "tls.pem"),
                   "--valid-days", "30", "--hash", "S384", "--out", str(out), "--json", "--data-dir", str(srv.data_dir))
    assert result.returncode == 0, output(result)
    compact = out.read_text().strip()
    header = json.loads(base64.urlsafe_b64decode(compact.split(".")[0] + "=="))
    der_file = tmp_path / "tls.der"
    converted = run_tool([openssl, "x509", "-in", str(tmp_path / "tls.pem"), "-outform", "DER", "-out", str(der_file)])
    assert converted.returncode == 0, output(converted)
    b64url = base64.urlsafe_b64encode(der_file.read_bytes()).rstrip(b"=")
    want = base64.urlsafe_b64encode(hashlib.sha384(b64url).digest()).rstrip(b"=").decode()
    assert header["sigD"]["hashV"] == [want] and header["sigD"]["hashM"] == "S384"
    signer = x509.load_der_x509_certificate(base64.b64decode(header["x5c"][0]))
    assert signer == x509.load_pem_x509_certificate((two_qwac / "cert.pem").read_bytes())
    assert list(signer.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [oids.KP_TLS_BINDING]
    token = jws.JWS()
    token.deserialize(compact)
    token.verify(jwk.JWK.from_pyca(signer.public_key()), alg="ES256", detached_payload=b"")
    # The verifier: accept for the bound certificate, reject (1) for another, unusable (2) for no binding at all.
    root = tmp_path / "root.pem"
    root.write_bytes((srv.data_dir / "ca" / "root.pem").read_bytes())
    common = ["--trust-anchor", str(root), "--connect-to", _connect_to(srv), "--json"]
    good = _qtsp("binding", "verify", str(out), "--tls-cert", str(tmp_path / "tls.pem"), *common)
    assert good.returncode == 0 and json.loads(good.stdout)["verdict"] == "accept", output(good)
    other = _qtsp("binding", "verify", str(out), "--tls-cert", str(two_qwac / "chain.pem"), *common)
    assert other.returncode == 1 and [f["rule"] for f in json.loads(other.stdout)["findings"]] == ["tls-cert-not-bound"]
    missing = _qtsp("binding", "verify", str(tmp_path / "nowhere.jws"), "--tls-cert", str(tmp_path / "tls.pem"), *common)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


class Site:
    """``qtsp site serve`` in a process of its own, on a free loopback port."""

    def __init__(self, tls: Path, key: Path, binding: Path) -> None:
        self.port = free_port()
        self.url = f"https://127.0.0.1:{self.port}/"
        self.proc = subprocess.Popen(QTSP + ["site", "serve", "--tls-cert", str(tls), "--tls-key", str(key), "--binding",
                                             str(binding), "--port", str(self.port)], cwd=ROOT,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                ssl._create_unverified_context().wrap_socket(  # noqa: S323 - a probe of our own demo site
                    __import__("socket").create_connection(("127.0.0.1", self.port), timeout=1)).close()
                return
            except OSError:
                assert self.proc.poll() is None, self.proc.communicate()
                time.sleep(0.1)
        raise AssertionError("the demo site did not start")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=10)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


def test_every_catalogue_binding_through_the_demo_site(served: tuple[Served, Path, dict[str, Any]]) -> None:
    srv, work, manifest = served
    out = work / "catalogue"
    entries = manifest["bindings"]["entries"]
    assert [e["name"] for e in entries] == list(scenario_bindings.BINDINGS)
    tl = ["--tl", f"{srv.base}/tl.xml", "--tl-signer", str(out / manifest["trusted_list_signer"])]
    anchor = ["--trust-anchor", str(out / manifest["trust_anchor"])]
    tls, key = out / manifest["bindings"]["tls_certificate"], out / manifest["bindings"]["tls_key"]
    disagreements = []
    for entry in entries:
        site = Site(tls, key, out / entry["binding"])
        try:
            if entry["name"] == "binding-valid":  # what a browser sees: the Link header on the page, the JWS behind it
                conn = http.client.HTTPSConnection("127.0.0.1", site.port, timeout=10,
                                                   context=ssl._create_unverified_context())  # noqa: S323
                conn.request("HEAD", "/")
                page = conn.getresponse()
                assert page.status == 200 and page.getheader("Link") == \
                    '</tls-certificate-binding.jws>; rel="tls-certificate-binding"'
                conn.close()
            for trust, want in ((tl, entry["expected"]), (anchor, {"verdict": entry["with_root_anchor"], "reasons": None})):
                result = _qtsp("binding", "check", site.url, *trust, "--connect-to", _connect_to(srv), "--json")
                data = json.loads(result.stdout) if result.stdout else {"verdict": "unusable", "findings": []}
                got = (result.returncode, data["verdict"], sorted(f["rule"] for f in data["findings"]))
                code = 0 if want["verdict"] == "accept" else 1
                if got[:2] != (code, want["verdict"]) or (want["reasons"] is not None and got[2] != sorted(want["reasons"])):
                    disagreements.append((entry["name"], trust[0], want, got, result.stderr[-300:]))
        finally:
            assert site.stop() == 0  # SIGTERM stops it cleanly
    assert not disagreements, disagreements


def test_check_refuses_what_is_not_a_binding_site(served: tuple[Served, Path, dict[str, Any]]) -> None:
    srv, work, manifest = served
    anchor = ["--trust-anchor", str(work / "catalogue" / manifest["trust_anchor"])]
    # Nothing listening: unusable (2), with the reason.
    port = free_port()
    result = _qtsp("binding", "check", f"https://127.0.0.1:{port}/", *anchor)
    assert result.returncode == 2 and "cannot fetch" in result.stderr
    # A plain http URL is refused before anything is fetched.
    result = _qtsp("binding", "check", srv.url + "/", *anchor)
    assert result.returncode == 2 and "https://" in result.stderr
