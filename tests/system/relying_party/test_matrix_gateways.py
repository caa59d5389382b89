"""HAProxy with a crl-file refreshed at run time, and a Python ssl server with VERIFY_CRL_CHECK_CHAIN.

Rows of the relying-party matrix (docs/relying-parties.md): tests/support/rp_world.py serves the world once for
the package, tests/support/rp_matrix.py holds what each row must conclude."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
from pathlib import Path


from qtsp.clock import utcnow
from qtsp.services import crl as crl_svc, revocation

from support.rp_world import World, http_verdict, https_get, check_row, issue_case, listening
from support.rp_matrix import ACCEPTED, CASES, REFUSED
from support.server import free_port


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
    late = issue_case(world.sandbox, world.work, "qwac", "revoked-later")
    crls = world.crl_bundle("haproxy/crls.pem")
    port = free_port()
    (directory / "haproxy.cfg").write_text(HAPROXY_CONF.format(dir=directory, port=port, crt=crt, root=world.root, crls=crls))
    proc = subprocess.Popen([haproxy, "-db", "-f", str(directory / "haproxy.cfg")], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not listening(port):
            assert proc.poll() is None, f"haproxy exited: {proc.stdout.read().decode() if proc.stdout else ''}"
            assert time.monotonic() < deadline, "haproxy did not come up"
            time.sleep(0.1)
        observed, seen = {}, {}
        for name in CASES:
            status, body = https_get(port, world.case("qwac", name))
            observed[name], seen[name] = http_verdict(status, body), f"HTTP {status} {body.strip()[:200]}"
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

