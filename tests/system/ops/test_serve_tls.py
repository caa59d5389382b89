"""`qtsp serve --tls-cert/--tls-key` (a direct HTTPS listener) and `--metrics-token-file`, under both servers
(issue 15, the "Low" finding: /metrics public, no TLS option).

A certificate for 127.0.0.1 made here; real TLS clients: Python's ssl (verifying against that
certificate) and `openssl s_client`. Shown: the service answers /healthz and OCSP over HTTPS, a plain
HTTP request on that port gets no HTTP answer, a slow body over TLS is cut like one in clear; /metrics
refuses no token and a wrong one with 401 revealing nothing, and answers the right one; /healthz stays
public. The option refusals themselves: tests/unit/cli/test_serve_options.py.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtsp.services import issuance
from qtsp.services.context import open_sandbox
from qtsp.web.limits import OCSP_BODY_DEADLINE

from support import ROOT
from support.chaos import ORG, ocsp_request, parse_ocsp
from support.server import free_port
from support.slowbody import request_once

TOKEN = "m3tr1cs-" + "a1b2c3d4e5f6a7b8"


def make_tls_files(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qtsp test listener")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "tls-cert.pem", directory / "tls-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


@dataclass
class TlsService:
    port: int
    context: ssl.SSLContext
    cert_path: Path
    server: str
    cert: x509.Certificate
    der: bytes


@pytest.fixture(scope="module", params=["granian", "gunicorn"])
def tls_service(request: pytest.FixtureRequest, _sandbox_template: Path,
                tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsService]:
    work = tmp_path_factory.mktemp(f"tls-{request.param}")
    data_dir = work / "qtsp-data"
    shutil.copytree(_sandbox_template, data_dir)
    sb = open_sandbox(data_dir)
    issued = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("tls.example.com",), generate_key="ecdsa-p256"))
    sb.engine.dispose()
    cert_path, key_path = make_tls_files(work)
    token_file = work / "metrics-token"
    token_file.write_text(TOKEN + "\n")
    port = free_port()
    args = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port",
            str(port), "--workers", "1", "--threads", "2", "--server", request.param, "--no-scheduler",
            "--tls-cert", str(cert_path), "--tls-key", str(key_path), "--metrics-token-file", str(token_file)]
    log = work / "serve.log"
    context = ssl.create_default_context(cafile=str(cert_path))
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, cwd=ROOT,
                                env={k: v for k, v in os.environ.items() if k != "QTSP_DATABASE_URL"})
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"qtsp serve exited: {log.read_text()[-2000:]}"
            with contextlib.suppress(OSError):
                if request_once(port, "GET", "/healthz", timeout=2, context=context)[0] == 200:
                    break
            assert time.monotonic() < deadline, f"no HTTPS answer within 60 s: {log.read_text()[-2000:]}"
            time.sleep(0.2)
        yield TlsService(port, context, cert_path, request.param, issued.certificate,
                         ocsp_request(issued.certificate, issued.chain[0]))
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    assert "https://127.0.0.1:" in log.read_text(), "serve did not announce its https URL"


def test_https_listener_serves_ocsp_to_real_tls_clients(tls_service: TlsService) -> None:
    svc = tls_service
    path = "/ocsp/" + urllib.parse.quote(base64.b64encode(svc.der).decode(), safe="")
    status, body = request_once(svc.port, "GET", path, context=svc.context)
    assert status == 200 and parse_ocsp(body, svc.cert.serial_number).status == "good"
    status, body = request_once(svc.port, "POST", "/ocsp", svc.der, {"Content-Type": "application/ocsp-request"},
                                context=svc.context)
    assert status == 200 and parse_ocsp(body, svc.cert.serial_number).status == "good"
    # openssl as a relying party would run it: the chain verifies, and an HTTP request gets its answer
    # (-ign_eof: wait for the server to close after its answer, not for the end of stdin).
    run = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{svc.port}", "-CAfile", str(svc.cert_path),
                          "-verify_return_error", "-quiet", "-ign_eof"],
                         input=b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                         capture_output=True, timeout=30)
    # gunicorn closes a connection without TLS close_notify, which openssl reports as an unexpected EOF
    # (exit 1): harmless for HTTP, whose answers carry their length. Any other failure counts.
    stderr = run.stderr.decode(errors="replace")
    assert run.returncode == 0 or "unexpected eof" in stderr, stderr[-500:]
    assert "verify error" not in stderr and "verify return:1" in stderr, stderr[-500:]
    assert run.stdout.startswith(b"HTTP/1.1 200"), (run.stdout[:200], stderr[-500:])
    # Plain HTTP on the TLS port: no HTTP answer (a TLS alert or a closed connection).
    with socket.create_connection(("127.0.0.1", svc.port), timeout=10) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        with contextlib.suppress(OSError):
            assert not sock.recv(1024).startswith(b"HTTP/1.1 200")


def test_slow_body_over_tls_is_cut(tls_service: TlsService) -> None:
    svc = tls_service
    raw = socket.create_connection(("127.0.0.1", svc.port), timeout=15)
    with svc.context.wrap_socket(raw, server_hostname="127.0.0.1") as sock:
        sock.sendall(b"POST /ocsp HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\nContent-Length: 300\r\n\r\n0")
        started = time.monotonic()
        answer = b""
        with contextlib.suppress(OSError):
            while True:
                sock.sendall(b"0")
                sock.settimeout(1.0)
                try:
                    chunk = sock.recv(4096)
                except TimeoutError:
                    continue
                if not chunk:
                    break
                answer += chunk
                if time.monotonic() - started > 15:
                    break
        held = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), f"a slow body over TLS got {answer[:80]!r} after {held:.1f} s"
    assert held < OCSP_BODY_DEADLINE + 2.5, f"a slow body over TLS was held {held:.1f} s"


def test_metrics_token(tls_service: TlsService) -> None:
    svc = tls_service
    for headers in ({}, {"Authorization": "Bearer wrong-token-of-some-length"}, {"Authorization": TOKEN},
                    {"Authorization": "Bearer " + TOKEN[:-1]}):
        status, body = request_once(svc.port, "GET", "/metrics", headers=headers, context=svc.context)
        assert status == 401, f"/metrics with {headers or 'no token'} answered {status}"
        assert b"qtsp_" not in body and b"# HELP" not in body and TOKEN.encode() not in body
    status, body = request_once(svc.port, "GET", "/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                                context=svc.context)
    assert status == 200 and b"qtsp_ocsp_requests" in body
    status, _ = request_once(svc.port, "GET", "/healthz", context=svc.context)
    assert status == 200, "/healthz must stay public"
