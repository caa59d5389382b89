"""nginx as a mutual-TLS gateway (ssl_ocsp leaf / on), nginx stapling, and curl against the gateway.

Rows of the relying-party matrix (docs/relying-parties.md): tests/support/rp_world.py serves the world once for
the package, tests/support/rp_matrix.py holds what each row must conclude."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from support.dns import LoopbackDns
from support.external import find_openssl, output, run_tool
from support.loopback import HOST
from support.nginx import nginx_binary
from support.rp_world import World, http_verdict, https_get, check_row, listening
from support.rp_matrix import CASES, NO_STAPLE, STAPLED_GOOD
from support.server import free_port
from support.nginx import TEMP_PATHS


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
            while not listening(ports["on"]):
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



@pytest.mark.parametrize("mode", ["leaf", "on"])
def test_nginx_mtls_gateway(world: World, nginx: Nginx, mode: str) -> None:
    observed, seen = {}, {}
    for name in CASES:
        status, body = https_get(nginx.ports[mode], world.case("qwac", name))
        observed[name], seen[name] = http_verdict(status, body), f"HTTP {status} {body.strip()[:80]}"
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
        observed[name] = http_verdict(int(code) if code.isdigit() and code != "000" else None, output(result))
        seen[name] = output(result)
    check_row("curl", "qwac", observed, seen)

