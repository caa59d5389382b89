"""What the OCSP benchmarks share: a sandbox with N issued QWACs (pre-signed answers refreshed), `qtsp serve`
and other servers started on loopback and stopped, and wrk driven by a Lua script that prints one RESULT
line. Used by ocsp_load.py and ocsp_unused_serials.py."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

ROOT = Path(__file__).resolve().parent.parent
ORG = "PSDBE-NBB-0123456789"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def wait_port(port: int, timeout: float = 30) -> None:
    # A bare TCP probe would wedge `openssl ocsp` (it blocks on a connection that sends nothing),
    # so watch the listening socket table instead.
    deadline = time.monotonic() + timeout
    needle = f":{port:04X} "
    while time.monotonic() < deadline:
        if any(needle in Path(f).read_text() for f in ("/proc/net/tcp", "/proc/net/tcp6") if Path(f).exists()):
            return
        time.sleep(0.1)
    raise RuntimeError(f"port {port} not listening")


@contextlib.contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen[bytes]]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env, cwd=ROOT)
        try:
            yield proc
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def lua_bytes(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def wrk_script(path: Path, method: str, bodies: list[bytes] | None, get_paths: list[str] | None) -> Path:
    """A wrk script that skips wrk's connect-and-close address probe (it wedges openssl ocsp)."""
    lines = ["wrk.resolve = function(host, service) wrk.addrs = wrk.lookup(host, service) end",
             'local ctype = {["Content-Type"] = "application/ocsp-request"}']
    if method == "POST":
        lines.append("local bodies = {" + ",".join(lua_bytes(b) for b in bodies or []) + "}")
        lines.append("local i = 0")
        lines.append('request = function() i = i % #bodies + 1; return wrk.format("POST", "/ocsp", ctype, bodies[i]) end')
    else:
        lines.append("local paths = {" + ",".join(json.dumps(p) for p in get_paths or []) + "}")
        lines.append("local i = 0")
        lines.append('request = function() i = i % #paths + 1; return wrk.format("GET", paths[i]) end')
    lines.append("""done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %d %d %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end""")
    path.write_text("\n".join(lines))
    return path


def run_wrk(url: str, script: Path, duration: int, connections: int) -> dict[str, float]:
    wrk = shutil.which("wrk")
    if not wrk:
        sys.exit("wrk is missing: apt-get install wrk")
    out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{duration}s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=duration + 60).stdout
    match = re.search(r"RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+)", out)
    if not match:
        raise RuntimeError(out)
    requests, seconds, p50, p99, errors = match.groups()
    return {"rps": int(requests) / float(seconds), "p50_ms": int(p50) / 1000, "p99_ms": int(p99) / 1000, "errors": int(errors)}


@dataclass
class IssuedSandbox:
    data: Path  # the data dir
    ca: x509.Certificate  # the QWAC CA
    certs: list[x509.Certificate]  # the issued QWACs, in file order
    sandbox: object  # qtsp.services.context.Sandbox, engine disposed (reconnects on use)


def issued_sandbox(tmp: Path, certs: int, workers: int, config_text: str | None = None) -> IssuedSandbox:
    """A new sandbox under ``tmp`` with ``certs`` QWACs of one PSP issued in bulk and every pre-signed OCSP
    answer made: what the responder serves from memory."""
    os.environ.pop("QTSP_DATABASE_URL", None)
    sys.path.insert(0, str(ROOT))
    from qtsp.services import bulk, ocsp_refresh, register
    from qtsp.services.hierarchy import init_sandbox

    data = tmp / "qtsp-data"
    config = None
    if config_text is not None:
        config = tmp / "qtsp.toml"
        config.write_text(config_text)
    sb = init_sandbox(data, config_file=config) if config else init_sandbox(data)
    register.add_psp(sb, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", locality="Brussels",
                     registration_number="0123.456.789")
    reqfile = tmp / "requests.jsonl"
    reqfile.write_text("".join(json.dumps({"kind": "qwac", "org_id": ORG, "domains": [f"api{i}.example.com"]}) + "\n"
                               for i in range(certs)))
    bulk.issue_file(sb, reqfile, tmp / "out", workers=workers)
    ocsp_refresh.refresh_due(sb, dt.datetime.now(dt.timezone.utc))
    sb.engine.dispose()
    ca = x509.load_pem_x509_certificate((data / "ca" / "qwac-ca.pem").read_bytes())
    issued = [x509.load_pem_x509_certificate(p.read_bytes()) for p in sorted((tmp / "out").glob("*/cert.pem"))]
    return IssuedSandbox(data, ca, issued, sb)


def serve_cmd(data: Path, port: int, workers: int) -> list[str]:
    """`qtsp serve` as the benchmarks run it: no scheduler, so nothing but the load moves."""
    return [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data), "--port", str(port),
            "--workers", str(workers), "--no-scheduler"]
