"""``qtsp trust export`` loaded by the software a bank runs: the sandbox's Trusted List, fetched from
``qtsp serve`` on loopback, turned into a PEM bundle for nginx and into JKS and PKCS#12 trust stores for Java
(tests/support/java/TrustStoreCheck.java: the store's trusted entries as PKIX anchors).

- Java, with the exact Trusted List set (the issuing CAs): a QWAC of the sandbox is valid, a QSealC (its CA is
  granted for seals, not web) and a certificate of a foreign PKI are not; the aliases are the service names.
- nginx (OpenSSL) builds paths to a self-signed root only: with the exact set it refuses even the sandbox's
  QWAC; with ``--issuers-from-aia`` the root comes along, and the issuing-CA pin (a map on
  ``$ssl_client_i_dn`` built from the export's ``issuer_dn``) keeps out a QWAC of a CA the list does not
  name (the catalogue's issuer-not-in-tl). A foreign certificate is refused by the TLS handshake itself.
- HAProxy (OpenSSL too): the same, with the pin as an ACL on ``ssl_c_i_dn(,0,rfc2253)``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from cli.main import cli
from qtsp.clock import as_of
from qtsp.services import issuance, register, scenarios, trusted_list
from qtsp.services.context import Sandbox
from support import mtls
from support.mtls import gateway_identity, write_key
from support import ROOT
from support import artifacts
from support.loopback import Served, served_sandbox
from support.nginx import TEMP_PATHS, nginx_binary
from support.server import free_port

ORG = "PSDBE-NBB-0123456789"
PEM = serialization.Encoding.PEM


@dataclass
class Client:
    cert: Path  # the leaf and its issuing CA
    key: Path
    leaf: Path


@dataclass
class World:
    served: Served
    work: Path
    signer: Path
    clients: dict[str, Client]


def _client(work: Path, name: str, leaf: x509.Certificate, chain: list[x509.Certificate], key: ec.EllipticCurvePrivateKey) -> Client:
    (work / f"{name}-leaf.pem").write_bytes(leaf.public_bytes(PEM))
    (work / f"{name}.pem").write_bytes(b"".join(c.public_bytes(PEM) for c in [leaf, *chain]))
    return Client(work / f"{name}.pem", write_key(work / f"{name}.key", key), work / f"{name}-leaf.pem")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("trust-export")
    work = base / "files"
    work.mkdir()

    def prepare(sandbox: Sandbox, _data_dir: Path) -> None:
        register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                         locality="Brussels", registration_number="0123.456.789")
        # A QWAC from a CA under the sandbox root that the Trusted List does not name.
        scenarios.issue(sandbox, ["issuer-not-in-tl"], base / "catalogue")

    with served_sandbox(base, prepare=prepare) as served:
        sb = served.sandbox
        clients = {}
        for kind in ("qwac", "qsealc"):
            issued = issuance.issue(sb, issuance.IssueRequest(kind, ORG, domains=("api.fintech.example.com",) if kind == "qwac"
                                                              else (), generate_key="ecdsa-p256"))
            clients[kind] = _client(work, kind, issued.certificate, list(issued.chain), issued.private_key)  # type: ignore[arg-type]
        catalogue = base / "catalogue"
        entry = json.loads((catalogue / "manifest.json").read_text())["scenarios"][0]
        unlisted = x509.load_pem_x509_certificate((catalogue / entry["certificate"]).read_bytes())
        unlisted_key = serialization.load_pem_private_key((catalogue / entry["key"]).read_bytes(), None)
        unlisted_chain = [x509.load_pem_x509_certificate((catalogue / c).read_bytes()) for c in entry["chain"]]
        clients["unlisted"] = _client(work, "unlisted", unlisted, unlisted_chain, unlisted_key)  # type: ignore[arg-type]
        foreign = artifacts.make_pki()
        clients["foreign"] = _client(work, "foreign", foreign.leaf.cert, [foreign.ca.cert], foreign.leaf.key)
        signer = work / "tl-signer.pem"
        signer.write_bytes(trusted_list.signer_certificate(sb).public_bytes(PEM))
        yield World(served, work, signer, clients)


def export(world: World, out: Path, *args: str) -> dict[str, object]:
    with as_of(None):
        result = CliRunner().invoke(cli, ["trust", "export", str(out), "--tl", world.served.url + "/tl.xml",
                                          "--tl-signer", str(world.signer), "--connect-to",
                                          world.served.url.removeprefix("http://"), "--json", *args],
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # type: ignore[no-any-return]


# --- Java ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def java_check(tmp_path_factory: pytest.TempPathFactory) -> Path:
    javac = shutil.which("javac")
    assert javac and shutil.which("java"), "javac/java missing: install openjdk-17-jdk-headless"
    classes = tmp_path_factory.mktemp("truststore-check")
    result = subprocess.run([javac, "-d", str(classes), str(ROOT / "tests" / "support" / "java" / "TrustStoreCheck.java")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return classes


@pytest.mark.parametrize("fmt, store_type", [("jks", "JKS"), ("p12", "PKCS12")])
def test_java_takes_the_exported_store_as_its_trust_anchors(world: World, java_check: Path, tmp_path: Path,
                                                            fmt: str, store_type: str) -> None:
    out = tmp_path / f"qwac.{fmt}"
    (tmp_path / "pw").write_text("bank-store-pw\n")
    data = export(world, out, "--service", "QWAC", "--format", fmt, "--password-file", str(tmp_path / "pw"))
    names = sorted(str(a["name"]) for a in data["anchors"])  # type: ignore[attr-defined]
    assert any("(qwac-ca)" in n for n in names) and not any("(qseal-ca)" in n for n in names)
    c = world.clients
    result = subprocess.run(["java", "-cp", str(java_check), "TrustStoreCheck", store_type, str(out), "bank-store-pw",
                             f"qwac={c['qwac'].leaf}", f"qsealc={c['qsealc'].leaf}", f"foreign={c['foreign'].leaf}"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert sorted(line.removeprefix("ANCHOR ") for line in lines if line.startswith(("ANCHOR", "OTHER"))) == \
        sorted(n.lower() for n in names)  # every entry a trusted certificate, named after its service
    verdicts = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines if line.split(" ", 1)[0] in
                ("qwac", "qsealc", "foreign")}
    assert verdicts["qwac"] == "VALID", result.stdout
    assert verdicts["qsealc"].startswith("INVALID") and verdicts["foreign"].startswith("INVALID"), result.stdout
    # The store's password is the one given: Java refuses another.
    wrong = subprocess.run(["java", "-cp", str(java_check), "TrustStoreCheck", store_type, str(out), "changeit"],
                           capture_output=True, text=True, timeout=120)
    assert wrong.returncode != 0


def test_the_seal_store_holds_the_seal_ca(world: World, java_check: Path, tmp_path: Path) -> None:
    out = tmp_path / "qsealc.p12"
    export(world, out, "--service", "QSealC", "--format", "p12")
    c = world.clients
    result = subprocess.run(["java", "-cp", str(java_check), "TrustStoreCheck", "PKCS12", str(out), "changeit",
                             f"qwac={c['qwac'].leaf}", f"qsealc={c['qsealc'].leaf}"], capture_output=True, text=True,
                            timeout=120)
    assert "qsealc VALID" in result.stdout and "qwac INVALID" in result.stdout, result.stdout + result.stderr


# --- nginx --------------------------------------------------------------------------------------------

CONF = """
user root;
worker_processes 1;
error_log {dir}/error.log info;
pid {dir}/nginx.pid;
events {{ worker_connections 64; }}
http {{
    access_log off;
""" + TEMP_PATHS + """
    map_hash_bucket_size 256;  # the keys are whole distinguished names
    map $ssl_client_i_dn $issuer_listed {{
        default {default};
{issuers}
    }}
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {gateway_cert};
        ssl_certificate_key {gateway_key};
        ssl_client_certificate {bundle};
        ssl_verify_client on;
        ssl_verify_depth 3;
        location / {{
            if ($issuer_listed = 0) {{ return 403 "issuer not listed: $ssl_client_i_dn\\n"; }}
            return 200 "accepted $ssl_client_s_dn\\n";
        }}
    }}
}}
"""


@dataclass
class Nginx:
    port: int
    log: Path


@pytest.fixture
def nginx(world: World, tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[bytes]] = []

    def start(bundle: Path, issuer_dns: list[str], *, pinned: bool = True) -> Nginx:
        directory = tmp_path / f"nginx-{len(procs)}"
        directory.mkdir()
        gateway_cert, gateway_key = gateway_identity(directory)
        port = free_port()
        issuers = "\n".join(f"        {json.dumps(dn)} 1;" for dn in issuer_dns)
        (directory / "nginx.conf").write_text(CONF.format(dir=directory, port=port, gateway_cert=gateway_cert,
                                                          gateway_key=gateway_key, bundle=bundle, issuers=issuers,
                                                          default=0 if pinned else 1))
        proc = subprocess.Popen([nginx_binary(), "-p", str(directory), "-c", str(directory / "nginx.conf"),
                                 "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                start_new_session=True)
        procs.append(proc)
        deadline = time.monotonic() + 20
        while True:
            assert proc.poll() is None, f"nginx exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            with socket.socket() as sock:
                sock.settimeout(0.5)
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    return Nginx(port, directory / "error.log")
            assert time.monotonic() < deadline, "nginx did not come up"
            time.sleep(0.1)

    yield start
    for proc in procs:
        if proc.poll() is not None:
            continue
        os.killpg(proc.pid, signal.SIGQUIT)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def https_get(port: int, client: Client) -> tuple[int | None, str]:
    return mtls.https_get(port, client.cert, client.key)


def test_nginx_with_the_exported_bundle(world: World, nginx: object, tmp_path: Path) -> None:
    start = nginx
    # The exact Trusted List set: issuing CAs only. OpenSSL wants a self-signed root at the top: refused.
    exact = tmp_path / "exact.pem"
    data = export(world, exact, "--service", "QWAC")
    listed = [str(a["issuer_dn"]) for a in data["anchors"]]  # type: ignore[attr-defined]
    gateway = start(exact, listed)  # type: ignore[operator]
    status, body = https_get(gateway.port, world.clients["qwac"])
    assert status == 400, (status, body)
    assert "unable to get issuer certificate" in gateway.log.read_text(), gateway.log.read_text()[-2000:]

    # With the issuers from AIA: the root comes along, marked as no Trusted List service.
    completed = tmp_path / "completed.pem"
    data = export(world, completed, "--service", "QWAC", "--issuers-from-aia")
    anchors = data["anchors"]
    extra = [a for a in anchors if not a["trusted_list_service"]]  # type: ignore[union-attr, index]
    # The two hierarchies' roots (the browser QWAC CA's and the rest's), each named as no Trusted List service.
    assert sorted(str(a["subject"]).split(",")[0] for a in extra) == ["CN=qtsp Sandbox Browser TLS Root CA",  # type: ignore[index]
                                                                     "CN=qtsp Sandbox Root CA"]
    assert all("not a Trusted List service" in str(a["name"]) for a in extra)  # type: ignore[index]
    assert "Not Trusted List services" in completed.read_text()
    listed = [str(a["issuer_dn"]) for a in anchors if a["trusted_list_service"]]  # type: ignore[union-attr, index]
    gateway = start(completed, listed)  # type: ignore[operator]
    status, body = https_get(gateway.port, world.clients["qwac"])
    assert status == 200 and "accepted" in body, (status, body)
    # A QWAC whose CA is under the same root but not on the Trusted List: OpenSSL's chain check passes, the
    # issuer pin refuses it. Without the pin nginx lets it in: the root trusts every CA below it.
    status, body = https_get(gateway.port, world.clients["unlisted"])
    assert status == 403 and "issuer not listed" in body, (status, body)
    unpinned = start(completed, [], pinned=False)  # type: ignore[operator]
    status, body = https_get(unpinned.port, world.clients["unlisted"])
    assert status == 200, (status, body)
    # The QSealC (no clientAuth: OpenSSL's purpose check) and a foreign PKI's certificate: refused in the handshake.
    status, body = https_get(gateway.port, world.clients["qsealc"])
    assert status == 400, (status, body)
    # A foreign PKI's client certificate: the handshake's own verification refuses it.
    status, body = https_get(gateway.port, world.clients["foreign"])
    assert status == 400, (status, body)


# --- HAProxy ------------------------------------------------------------------------------------------

HAPROXY_CONF = """
defaults
    mode http
    timeout connect 5s
    timeout client 15s
    timeout server 15s
frontend gateway
    bind 127.0.0.1:{port} ssl crt {crt} ca-file {bundle} verify required
{pin}
    http-request return status 200 content-type text/plain string accepted
"""


def _haproxy(world: World, directory: Path, bundle: Path, issuer_dns: list[str]) -> tuple[subprocess.Popen[bytes], int]:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(haproxy).exists(), "haproxy missing: apt-get install haproxy"
    directory.mkdir()
    cert, key = gateway_identity(directory)
    crt = directory / "gateway-crt.pem"  # HAProxy wants certificate and key in one file
    crt.write_bytes(cert.read_bytes() + key.read_bytes())
    port = free_port()
    pin = ""
    if issuer_dns:  # the issuing-CA pin: the client certificate's issuer DN, in RFC 2253 form, among the listed
        values = " ".join(json.dumps(dn) for dn in issuer_dns)
        pin = (f"    acl issuer_listed ssl_c_i_dn(,0,rfc2253) -m str {values}\n"
               "    http-request deny deny_status 403 if !issuer_listed")
    (directory / "haproxy.cfg").write_text(HAPROXY_CONF.format(port=port, crt=crt, bundle=bundle, pin=pin))
    proc = subprocess.Popen([haproxy, "-db", "-f", str(directory / "haproxy.cfg")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 20
    while True:
        assert proc.poll() is None, f"haproxy exited: {proc.stdout.read().decode() if proc.stdout else ''}"
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return proc, port
        assert time.monotonic() < deadline, "haproxy did not come up"
        time.sleep(0.1)


def test_haproxy_with_the_exported_bundle(world: World, tmp_path: Path) -> None:
    exact, completed = tmp_path / "exact.pem", tmp_path / "completed.pem"
    export(world, exact, "--service", "QWAC")
    data = export(world, completed, "--service", "QWAC", "--issuers-from-aia")
    listed = [str(a["issuer_dn"]) for a in data["anchors"] if a["trusted_list_service"]]  # type: ignore[union-attr, index]
    procs = []
    try:
        proc, port = _haproxy(world, tmp_path / "exact", exact, [])
        procs.append(proc)
        assert https_get(port, world.clients["qwac"])[0] is None  # no root at the top: the handshake fails
        proc, port = _haproxy(world, tmp_path / "completed", completed, listed)
        procs.append(proc)
        status, body = https_get(port, world.clients["qwac"])
        assert status == 200 and "accepted" in body, (status, body)
        assert https_get(port, world.clients["unlisted"])[0] == 403
        assert https_get(port, world.clients["foreign"])[0] is None
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
