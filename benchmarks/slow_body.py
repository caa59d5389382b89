"""Slow request bodies against `qtsp serve`: does OCSP keep answering everyone else?

    .venv/bin/python benchmarks/slow_body.py [--server granian|gunicorn|both] [--slow 40] [--duration 30]

Starts `qtsp serve` on loopback (2 workers x 4 threads, as the finding measured it) over a fresh
sandbox with one QWAC, then: OCSP GET latency alone; the same while ``--slow`` connections POST a body
to /ocsp at one byte per second (each replaced as soon as the server cuts it); a normal OCSP POST
during the attack; how long the server held the slow connections and what it answered them.
tests/system/ops/test_slow_bodies.py asserts the bound (p99 < 100 ms); this prints the figures.
"""

from __future__ import annotations

import argparse
import base64
import os
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from support.chaos import ORG, Service, ocsp_request, parse_ocsp  # noqa: E402
from support.slowbody import SlowBodies, probe, request_once  # noqa: E402


def sandbox(tmp: Path) -> tuple[Path, bytes]:
    from qtsp.services import issuance, register
    from qtsp.services.hierarchy import init_sandbox

    data = tmp / "qtsp-data"
    sb = init_sandbox(data)
    register.add_psp(sb, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", locality="Brussels",
                     registration_number="0123.456.789")
    issued = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("slow.example.com",), generate_key="ecdsa-p256"))
    sb.engine.dispose()
    der = ocsp_request(issued.certificate, issued.chain[0])
    return data, der, issued.certificate.serial_number  # type: ignore[return-value]


def run(server: str, data: Path, der: bytes, serial: int, slow: int, duration: float, threads: int) -> None:
    get_path = "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe="")
    service = Service(data, workers=2, threads=threads, scheduler=False, server=server)
    service.start()
    try:
        quiet = probe(service.port, get_path, 3.0)
        print(f"[{server}] OCSP GET alone: {quiet.summary()}")
        with SlowBodies(service.port, slow) as attack:
            time.sleep(2.0)  # let the slow connections take hold
            started = time.monotonic()
            try:
                status, body = request_once(service.port, "POST", "/ocsp", der,
                                            {"Content-Type": "application/ocsp-request"}, timeout=10)
                post = f"HTTP {status}, {parse_ocsp(body, serial).status}" if status == 200 else f"HTTP {status}"
            except OSError as exc:
                post = f"{type(exc).__name__}"
            post += f" in {(time.monotonic() - started) * 1000:.0f} ms"
            loaded = probe(service.port, get_path, duration - 2.0)
        stats = attack.stats
        held = sorted(stats.lifetimes)
        print(f"[{server}] OCSP GET during {slow} slow bodies ({duration:.0f} s): {loaded.summary()}"
              + (f"; first failures: {loaded.failures[:3]}" if loaded.failures else ""))
        print(f"[{server}] a normal OCSP POST meanwhile: {post}")
        print(f"[{server}] slow connections: {stats.opened} opened, {stats.cut} cut by the server"
              + (f" after {held[0]:.1f}-{held[-1]:.1f} s" if held else "") + f", answers {stats.statuses}")
    finally:
        service.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", choices=["granian", "gunicorn", "both"], default="both")
    parser.add_argument("--slow", type=int, default=40, help="slow-body connections held")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds the attack lasts")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    os.environ.pop("QTSP_DATABASE_URL", None)
    tmp = Path(tempfile.mkdtemp(prefix="qtsp-slow-body-"))
    try:
        data, der, serial = sandbox(tmp)
        for server in (["granian", "gunicorn"] if args.server == "both" else [args.server]):
            run(server, data, der, serial, args.slow, args.duration, args.threads)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
