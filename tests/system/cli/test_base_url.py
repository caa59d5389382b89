"""One setting decides the public base URL, and the default works offline.

``qtsp sandbox --port P`` makes a sandbox whose certificates name http://127.0.0.1:P; served there,
every URL taken straight from a certificate answers: ``openssl ocsp -url`` with the certificate's own
OCSP URL, the CRL distribution point, caIssuers, and the reference validator, with no flag to redirect
anything and no name resolution (the machine has no DNS). A sandbox made for one address is refused for
another, changing nothing.
"""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from support import ROOT
from support.server import free_port, running_server

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def qtsp(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120,
                            cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"qtsp {' '.join(args)} failed ({result.returncode}): {result.stderr}")
    return result


def _urls(cert: x509.Certificate) -> dict[str, str]:
    aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    crldp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    found = {d.access_method._name: d.access_location.value for d in aia}  # noqa: SLF001 (OCSP / caIssuers)
    found["crl"] = crldp[0].full_name[0].value
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    work = tmp_path_factory.mktemp("base-url")
    port = free_port()
    data_dir = work / "qtsp-data"
    made = qtsp("sandbox", "--data-dir", str(data_dir), "--port", str(port), "--json")
    assert f"http://127.0.0.1:{port}" in made.stdout
    with running_server(data_dir, port=port) as url:
        yield data_dir, port, url


def test_every_url_in_the_certificates_names_where_the_service_answers(served) -> None:  # type: ignore[no-untyped-def]
    data_dir, port, _ = served
    base = f"http://127.0.0.1:{port}/"
    for path in (data_dir / "samples/qwac/cert.pem", data_dir / "samples/qsealc/cert.pem", data_dir / "ca/qwac-ca.pem"):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        urls = _urls(cert)
        # CA certificates carry no OCSP URL yet (the root-delegated responder is issue 16's work).
        assert set(urls) >= ({"caIssuers", "crl"} if path.parent.name == "ca" else {"OCSP", "caIssuers", "crl"}), urls
        for what, url in urls.items():
            assert url.startswith(base), f"{path.name} {what}: {url}"
        with _NO_PROXY.open(urls["caIssuers"], timeout=10) as response:
            issuer = x509.load_der_x509_certificate(response.read())
        assert issuer.subject == cert.issuer
        with _NO_PROXY.open(urls["crl"], timeout=10) as response:
            crl = x509.load_der_x509_crl(response.read())
        assert crl.issuer == cert.issuer and crl.is_signature_valid(issuer.public_key())  # type: ignore[arg-type]


def test_openssl_ocsp_with_the_url_from_the_certificate(served) -> None:  # type: ignore[no-untyped-def]
    data_dir, _, _ = served
    cert = data_dir / "samples/qwac/cert.pem"
    url = subprocess.run(["openssl", "x509", "-in", str(cert), "-noout", "-ocsp_uri"], capture_output=True, text=True,
                         check=True).stdout.strip()
    result = subprocess.run(["openssl", "ocsp", "-issuer", str(data_dir / "ca/qwac-ca.pem"), "-cert", str(cert),
                             "-url", url, "-CAfile", str(data_dir / "ca/root.pem")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert f"{cert}: good" in result.stdout
    assert "Response verify OK" in result.stderr


def test_reference_validator_needs_no_redirect(served) -> None:  # type: ignore[no-untyped-def]
    data_dir, _, _ = served
    result = qtsp("validate", str(data_dir / "samples/qwac/cert.pem"), "--purpose", "qwac-client",
                  "--data-dir", str(data_dir), check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    sealed = qtsp("validate", str(data_dir / "samples/qsealc/cert.pem"), "--purpose", "qsealc",
                  "--data-dir", str(data_dir), check=False)
    assert sealed.returncode == 0, sealed.stdout + sealed.stderr


def test_a_sandbox_made_for_one_address_is_refused_for_another(served) -> None:  # type: ignore[no-untyped-def]
    data_dir, port, _ = served
    before = {p: p.read_bytes() for p in sorted((data_dir / "samples").rglob("*.pem"))}
    config_before = (data_dir / "qtsp.toml").read_text()
    other = qtsp("sandbox", "--data-dir", str(data_dir), "--port", str(port + 1), check=False)
    assert other.returncode == 5
    assert f"made for http://127.0.0.1:{port}" in other.stderr and f"127.0.0.1:{port + 1}" in other.stderr
    assert {p: p.read_bytes() for p in sorted((data_dir / "samples").rglob("*.pem"))} == before
    assert (data_dir / "qtsp.toml").read_text() == config_before
    again = qtsp("sandbox", "--data-dir", str(data_dir), "--port", str(port))
    assert "already there" in again.stdout


def test_init_takes_the_base_url_and_refuses_localhost(tmp_path: Path) -> None:
    made = qtsp("init", "--data-dir", str(tmp_path / "a"), "--base-url", "http://127.0.0.1:9191")
    assert 'base_url = "http://127.0.0.1:9191"' in (tmp_path / "a/qtsp.toml").read_text(), made.stdout
    refused = qtsp("init", "--data-dir", str(tmp_path / "b"), "--base-url", "http://localhost:9191", check=False)
    assert refused.returncode == 2 and "127.0.0.1" in refused.stderr
    assert not (tmp_path / "b").exists()


def test_serve_without_port_listens_where_the_certificates_point(tmp_path: Path) -> None:
    import os
    import signal
    import time

    port = free_port()
    data_dir = tmp_path / "qtsp-data"
    qtsp("init", "--data-dir", str(data_dir), "--base-url", f"http://127.0.0.1:{port}")
    log = open(tmp_path / "serve.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data_dir), "--workers", "1",
                             "--no-scheduler"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=ROOT)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                with _NO_PROXY.open(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                    assert response.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline, "qtsp serve did not answer on the base_url's port"
                time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()
    assert f"http://127.0.0.1:{port}" in (tmp_path / "serve.log").read_text()
