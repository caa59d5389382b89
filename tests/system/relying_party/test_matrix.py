"""The relying-party matrix (docs/relying-parties.md): the real software, on loopback, judging a valid
QWAC, a revoked one and a valid one under a revoked issuing CA (and the same three QSealCs where the
software checks more than TLS). What each row must conclude is tests/support/rp_matrix.py's table;
the doc's table is rendered from it and compared here.

One served sandbox for the module, prepared the way an operator would get there: leaves issued
under the first generation of each issuing CA, the CAs rolled over, leaves issued and one revoked
under the new generation, then the first generation revoked with ``qtsp ca revoke`` (the root key,
the root-delegated responder, the ARL). Certificates name ``http://qtsp.localtest.me:<port>``:
nginx reaches it through a DNS server on loopback (tests/support/dns.py), Java through a hosts
file, the rest get URLs rewritten to 127.0.0.1. No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import http.client
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtensionOID, NameOID

from qtsp.clock import utcnow
from qtsp.core.types import IssuerId
from qtsp.services import crl as crl_svc, issuance, keys, register, revocation
from qtsp.services.context import Sandbox

from support import ROOT as REPO
from support import rp_matrix
from support.dns import LoopbackDns
from support.external import find_openssl, output, run_tool
from support.loopback import HOST, Served, served_sandbox, server_env
from support.nginx import nginx_binary
from support.rp_matrix import ACCEPTED, CASES, NO_STAPLE, REFUSED, STAPLED_GOOD
from support.server import free_port
from support.nginx import TEMP_PATHS

ORG = "PSDBE-NBB-0123456789"
PEM = serialization.Encoding.PEM


# --- the world: one served sandbox, three cases per kind ------------------------------------------


@dataclass
class Case:
    kind: str
    name: str
    cert: x509.Certificate
    leaf: Path
    key: Path
    ca: Path  # the issuing CA's certificate
    chain: Path  # leaf + issuing CA, what a TLS client sends

    def url(self, access: x509.ObjectIdentifier, cert: x509.Certificate | None = None) -> str:
        aia = (cert or self.cert).extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
        return next(d.access_location.value for d in aia if d.access_method == access)


@dataclass
class World(Served):
    root: Path = Path()
    work: Path = Path()
    cases: dict[tuple[str, str], Case] = field(default_factory=dict)
    crl_urls: set[str] = field(default_factory=set)  # every CA's CRL (the root's ARL too)
    gateway_cert: Path = Path()
    gateway_key: Path = Path()

    def case(self, kind: str, name: str) -> Case:
        return self.cases[(kind, name)]

    def fetch(self, public_url: str, body: bytes | None = None) -> bytes:
        headers = {"Content-Type": "application/ocsp-request"} if body is not None else {}
        request = urllib.request.Request(self.local(public_url), data=body, headers=headers)
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(request, timeout=10) as response:
            return bytes(response.read())

    def crl_bundle(self, name: str) -> Path:
        """Every CA's current CRL (the root's ARL too), PEM, in one file: what crl-file and ssl load."""
        pems = []
        for url in sorted(self.crl_urls):
            pems.append(x509.load_der_x509_crl(self.fetch(url)).public_bytes(PEM))
        path = self.work / name
        path.write_bytes(b"".join(pems))
        return path


def _write_key(path: Path, key: object) -> None:
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                                       serialization.NoEncryption()))
    path.chmod(0o600)


def _issue(sandbox: Sandbox, work: Path, kind: str, name: str) -> Case:
    profile = "qwac" if kind == "qwac" else "qsealc"
    domains = (f"{name}.{kind}.example.com",) if kind == "qwac" else ()
    issued = issuance.issue(sandbox, issuance.IssueRequest(profile, ORG, domains=domains, generate_key="ecdsa-p256"))
    stem = work / f"{kind}-{name}"
    leaf, key, ca, chain = (Path(f"{stem}.pem"), Path(f"{stem}.key"), Path(f"{stem}-ca.pem"), Path(f"{stem}-chain.pem"))
    leaf.write_bytes(issued.certificate.public_bytes(PEM))
    _write_key(key, issued.private_key)
    ca.write_bytes(issued.chain[0].public_bytes(PEM))
    chain.write_bytes(leaf.read_bytes() + ca.read_bytes())
    return Case(kind, name, issued.certificate, leaf, key, ca, chain)


def _gateway_identity(work: Path) -> tuple[Path, Path]:
    """The gateways' own server certificate (self-signed: the clients here do not judge it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway.test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = work / "gateway.pem", work / "gateway.key"
    cert_path.write_bytes(cert.public_bytes(PEM))
    _write_key(key_path, key)
    return cert_path, key_path


def _register(sandbox: Sandbox, _data_dir: Path) -> None:
    register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")


def _cli(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_tool([sys.executable, "-m", "cli.main", *args, "--data-dir", str(data_dir)], cwd=REPO, env=server_env())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("rp-matrix")
    work = base / "files"
    work.mkdir()
    with served_sandbox(base, "crl_debounce_seconds = 0\n", workers=2, prepare=_register) as served:
        sb = served.sandbox
        cases: dict[tuple[str, str], Case] = {}
        for kind in rp_matrix.KINDS:  # under the first generation, which is revoked below
            cases[(kind, "ca-revoked")] = _issue(sb, work, kind, "ca-revoked")
        for old in ("qwac-ca", "qseal-ca"):
            keys.rollover_ca(sb, IssuerId(old))
        for kind in rp_matrix.KINDS:
            for name in ("valid", "revoked"):
                cases[(kind, name)] = _issue(sb, work, kind, name)
            revocation.revoke(sb, format(cases[(kind, "revoked")].cert.serial_number, "X"), "key-compromise")
        for old in ("qwac-ca", "qseal-ca"):  # the root key, the root-delegated responder, the ARL: the CLI path
            result = _cli(served.data_dir, "ca", "revoke", old, "--reason", "ca-compromise")
            assert result.returncode == 0, output(result)
        crl_svc.regenerate_dirty(sb, utcnow())  # what the scheduler does: the leaves' CRLs
        crl_urls = {served.base + "/crl/root.crl"}
        for case in cases.values():
            points = case.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
            crl_urls.add(points[0].full_name[0].value)
        gateway_cert, gateway_key = _gateway_identity(work)
        yield World(served.sandbox, served.data_dir, served.url, served.base, served.data_dir / "ca" / "root.pem",
                    work, cases, crl_urls, gateway_cert, gateway_key)


# --- clients --------------------------------------------------------------------------------------


def https_get(port: int, case: Case, timeout: float = 15) -> tuple[int | None, str]:
    """A TLS client presenting the case's certificate and chain: (HTTP status or None, what it saw)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the gateway's own certificate is not what is judged here
    context.load_cert_chain(case.chain, case.key)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()


def _http_verdict(status: int | None, seen: str) -> str:
    if status == 200:
        return ACCEPTED
    if status == 400 or status is None:  # nginx: 400 "The SSL certificate error"; others: the handshake fails
        return REFUSED
    return f"error: HTTP {status} {seen[:200]}"


def check_row(row_id: str, kind: str, observed: dict[str, str], seen: dict[str, str]) -> None:
    expected = rp_matrix.BY_ID[row_id].expected(kind)
    verdicts = {name: observed[name] for name in CASES}
    details = "\n".join(f"  {name}: {observed[name]} <- {seen.get(name, '')[:400]}" for name in CASES)
    print(f"{row_id} {kind}:\n{details}")
    assert verdicts == expected, f"{row_id} ({kind}) saw {verdicts}, the matrix says {expected}\n{details}"


# --- nginx: mTLS with ssl_ocsp leaf / on, and stapling -----------------------------------------------

NGINX_CONF = """
user root;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 256; }}
http {{
    access_log off;
""" + TEMP_PATHS + """
    # nginx resolves the host of an AIA OCSP URL itself: ssl_ocsp and ssl_stapling need a resolver.
    resolver 127.0.0.1:{dns} ipv6=off valid=60s;
    resolver_timeout 5s;
{servers}
}}
"""

GATEWAY = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {gateway_cert};
        ssl_certificate_key {gateway_key};
        ssl_client_certificate {root};
        ssl_verify_client on;
        ssl_verify_depth 2;
        ssl_ocsp {mode};
        ssl_ocsp_cache shared:ocsp_{mode}:1m;
        location / {{ return 200 "accepted $ssl_client_serial\\n"; }}
    }}
"""

STAPLING = """
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {chain};
        ssl_certificate_key {key};
        ssl_stapling on;
        ssl_stapling_verify on;
        ssl_trusted_certificate {trusted};
        location / {{ return 200 "ok\\n"; }}
    }}
"""


@dataclass
class Nginx:
    dir: Path
    ports: dict[str, int]
    proc: subprocess.Popen[bytes]

    def log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""


@pytest.fixture(scope="module")
def nginx(world: World) -> Iterator[Nginx]:
    directory = world.work / "nginx"
    directory.mkdir()
    ports = {"leaf": free_port(), "on": free_port(), **{f"staple-{name}": free_port() for name in CASES}}
    trusted = directory / "trusted.pem"
    trusted.write_bytes(world.root.read_bytes() + b"".join(world.case("qwac", n).ca.read_bytes() for n in CASES))
    servers = [GATEWAY.format(port=ports[mode], mode=mode, gateway_cert=world.gateway_cert,
                              gateway_key=world.gateway_key, root=world.root) for mode in ("leaf", "on")]
    servers += [STAPLING.format(port=ports[f"staple-{name}"], chain=world.case("qwac", name).chain,
                                key=world.case("qwac", name).key, trusted=trusted) for name in CASES]
    # nginx resolves a stapling responder's host once, when it loads its configuration, with the system's
    # resolver: in a mount namespace of its own, /etc/hosts names the test host (the machine's stays as it is).
    hosts = directory / "hosts"
    hosts.write_text(f"127.0.0.1 localhost {HOST}\n")
    unshare = shutil.which("unshare")
    assert unshare, "unshare missing: apt-get install util-linux"
    with LoopbackDns() as dns:
        (directory / "nginx.conf").write_text(NGINX_CONF.format(dir=directory, dns=dns.port, servers="".join(servers)))
        command = (f"mount --bind {hosts} /etc/hosts && exec {nginx_binary()} -p {directory} "
                   f"-c {directory / 'nginx.conf'} -g 'daemon off;'")
        proc = subprocess.Popen([unshare, "--mount", "--propagation", "private", "sh", "-c", command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        try:
            deadline = time.monotonic() + 20
            while not _listening(ports["on"]):
                assert proc.poll() is None, f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}"
                assert time.monotonic() < deadline, "nginx did not come up"
                time.sleep(0.1)
            yield Nginx(directory, ports, proc)
            assert HOST in dns.queries, "nginx never resolved the OCSP host: the OCSP checks did not run"
        finally:
            os.killpg(proc.pid, signal.SIGQUIT)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.mark.parametrize("mode", ["leaf", "on"])
def test_nginx_mtls_gateway(world: World, nginx: Nginx, mode: str) -> None:
    observed, seen = {}, {}
    for name in CASES:
        status, body = https_get(nginx.ports[mode], world.case("qwac", name))
        observed[name], seen[name] = _http_verdict(status, body), f"HTTP {status} {body.strip()[:80]}"
    log = nginx.log()
    check_row(f"nginx-ocsp-{mode}", "qwac", observed, seen)
    # refused because of what OCSP said, not for want of an answer
    assert 'certificate status "revoked"' in log or "certificate revoked" in log, log[-3000:]
    assert "could not be resolved" not in log and "timed out" not in log, log[-3000:]


def _s_client(port: int, root: Path) -> str:
    result = run_tool([find_openssl(), "s_client", "-connect", f"127.0.0.1:{port}", "-status", "-CAfile", str(root),
                       "-verify_return_error", "-servername", "gateway.test"], timeout=20, input="")
    return output(result)


def _staple(text: str) -> str:
    if "OCSP response: no response sent" in text:
        return NO_STAPLE
    if "OCSP Response Status: successful" in text and "Cert Status: good" in text:
        return STAPLED_GOOD
    if "Cert Status: revoked" in text:
        return "stapled: revoked"
    return "error: " + text[-300:]


def test_nginx_stapling(world: World, nginx: Nginx) -> None:
    # nginx fetches a staple after the first handshake that asks for one: ask until the good ones come.
    observed: dict[str, str] = {}
    seen: dict[str, str] = {}
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for name in CASES:
            text = _s_client(nginx.ports[f"staple-{name}"], world.root)
            assert "Verify return code: 0 (ok)" in text, text[-2000:]
            observed[name], seen[name] = _staple(text), text[text.find("OCSP"):][:300]
        if observed["valid"] == observed["ca-revoked"] == STAPLED_GOOD and 'certificate status "revoked"' in nginx.log():
            break
        time.sleep(0.5)
    print("\n".join(line for line in nginx.log().splitlines() if "OCSP" in line or "stapl" in line)[-3000:])
    check_row("nginx-stapling", "qwac", observed, seen)
    assert 'certificate status "revoked" in the OCSP response' in nginx.log()  # it asked, and kept the answer to itself


def test_curl_against_the_gateway(world: World, nginx: Nginx) -> None:
    curl = shutil.which("curl")
    assert curl, "curl missing: apt-get install curl"
    observed, seen = {}, {}
    for name in CASES:
        case = world.case("qwac", name)
        result = run_tool([curl, "-sS", "--noproxy", "*", "-k", "--max-time", "15", "--cert", str(case.chain),
                           "--key", str(case.key), "-o", "/dev/null", "-w", "%{http_code}",
                           f"https://127.0.0.1:{nginx.ports['on']}/"], timeout=30)
        code = result.stdout.strip()
        observed[name] = _http_verdict(int(code) if code.isdigit() and code != "000" else None, output(result))
        seen[name] = output(result)
    check_row("curl", "qwac", observed, seen)


# --- HAProxy: mTLS with crl-file, refreshed at run time ------------------------------------------

HAPROXY_CONF = """
global
    stats socket {dir}/admin.sock mode 600 level admin
defaults
    mode http
    timeout connect 5s
    timeout client 15s
    timeout server 15s
frontend gateway
    bind 127.0.0.1:{port} ssl crt {crt} ca-file {root} crl-file {crls} verify required
    http-request return status 200 content-type text/plain string accepted
"""


def _haproxy_command(sock_path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(sock_path))
        sock.sendall(command.encode())
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                break
            chunks.append(data)
    return b"".join(chunks).decode(errors="replace")


def test_haproxy_crl_file(world: World) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(haproxy).exists(), "haproxy missing: apt-get install haproxy"
    directory = world.work / "haproxy"
    directory.mkdir()
    crt = directory / "gateway.pem"  # HAProxy wants certificate and key in one file
    crt.write_bytes(world.gateway_cert.read_bytes() + world.gateway_key.read_bytes())
    # A QWAC revoked while HAProxy runs: accepted on the CRLs it started with, refused once they are refreshed.
    late = _issue(world.sandbox, world.work, "qwac", "revoked-later")
    crls = world.crl_bundle("haproxy/crls.pem")
    port = free_port()
    (directory / "haproxy.cfg").write_text(HAPROXY_CONF.format(dir=directory, port=port, crt=crt, root=world.root, crls=crls))
    proc = subprocess.Popen([haproxy, "-db", "-f", str(directory / "haproxy.cfg")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not _listening(port):
            assert proc.poll() is None, f"haproxy exited: {proc.stdout.read().decode() if proc.stdout else ''}"
            assert time.monotonic() < deadline, "haproxy did not come up"
            time.sleep(0.1)
        observed, seen = {}, {}
        for name in CASES:
            status, body = https_get(port, world.case("qwac", name))
            observed[name], seen[name] = _http_verdict(status, body), f"HTTP {status} {body.strip()[:200]}"
        check_row("haproxy-crl", "qwac", observed, seen)

        assert https_get(port, late)[0] == 200
        revocation.revoke(world.sandbox, format(late.cert.serial_number, "X"), "key-compromise")
        assert crl_svc.regenerate_dirty(world.sandbox, utcnow()) == 2
        assert https_get(port, late)[0] == 200, "HAProxy read the CRL file again by itself"
        fresh = world.crl_bundle("haproxy/crls-fresh.pem").read_text()
        answer = _haproxy_command(directory / "admin.sock", f"set ssl crl-file {crls} <<\n{fresh}\n")
        assert "transaction created" in answer.lower() or "transaction updated" in answer.lower(), answer
        answer = _haproxy_command(directory / "admin.sock", f"commit ssl crl-file {crls}\n")
        assert "Success!" in answer, answer
        status, seen_late = https_get(port, late)
        assert status is None, f"still accepted after the CRL refresh: {status} {seen_late}"
        print(f"haproxy after `commit ssl crl-file`: {seen_late}")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


# --- Python ssl: an mTLS server with VERIFY_CRL_CHECK_CHAIN --------------------------------------------


class _PythonGateway:
    """One accept at a time on loopback; records how each handshake ended."""

    def __init__(self, world: World) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(world.gateway_cert, world.gateway_key)
        self.context.verify_mode = ssl.CERT_REQUIRED
        self.context.load_verify_locations(cafile=world.root)
        self.context.load_verify_locations(cafile=world.crl_bundle("python-crls.pem"))  # CRLs, PEM
        self.context.verify_flags |= ssl.VERIFY_CRL_CHECK_CHAIN
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(15)
        self.port = int(self.sock.getsockname()[1])
        self.outcome = ""

    def serve_one(self) -> None:
        conn, _ = self.sock.accept()
        conn.settimeout(15)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                tls.recv(4096)
                tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\naccepted\n")
                self.outcome = ACCEPTED
        except (ssl.SSLError, OSError) as exc:
            self.outcome = f"{REFUSED}: {exc}"


def test_python_ssl_crl_check_chain(world: World) -> None:
    gateway = _PythonGateway(world)
    observed, seen = {}, {}
    try:
        for name in CASES:
            server = threading.Thread(target=gateway.serve_one, daemon=True)
            server.start()
            status, body = https_get(gateway.port, world.case("qwac", name))
            server.join(timeout=20)
            observed[name] = gateway.outcome.split(":")[0]
            seen[name] = f"server: {gateway.outcome}; client: HTTP {status} {body.strip()[:120]}"
            if observed[name] == REFUSED:
                assert "certificate revoked" in gateway.outcome, gateway.outcome
    finally:
        gateway.sock.close()
    check_row("python-ssl", "qwac", observed, seen)


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

