"""Soak: `qtsp serve` (granian workers + scheduler) under mixed load for minutes, on loopback.

    .venv/bin/python stress/soak.py [--minutes 3] [--connections 16] [--issue-rate 5] [--revoke-rate 2]
                                    [--workers N] [--database-url postgresql://...] [--keep]

At the same time, for the whole run:
- OCSP load with wrk (Debian package `wrk`; without it a bounded Python client does it): GET and
  POST alternating, SHA-1 and SHA-256 CertIDs over a pool of certificates (a tenth of them revoked),
  every tenth POST with a nonce (signed on demand);
- issuance through the REST API (POST /api/v1/certificates with a fresh CSR) at --issue-rate per second;
- revocation through the REST API of certificates issued during the run, at --revoke-rate per second;
- a checker asking OCSP about acknowledged revocations (must be `revoked`) and about pool
  certificates nobody revokes (must be `good`).

Prints one line per minute (OCSP requests, rate, p50/p99 from wrk, API p99, counts, errors, worker
RSS), the RSS (VmRSS) of every service process at the start and at the end, and the error total,
which must be 0: the exit status is 1 otherwise. At the end: every acknowledged revocation must be
on the CRL within 15 s, and the audit chain must verify.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import http.client
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from chaos import ORG, Http, Service, csr_pem, ocsp_request, parse_ocsp, rss_kib  # noqa: E402

MAX_MINUTES = 60
POOL = 300
REASONS = ("superseded", "cessation-of-operation", "affiliation-changed", "privilege-withdrawn", "key-compromise")


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    api: list[tuple[float, str, float]] = field(default_factory=list)  # (finished at, kind, seconds)
    errors: list[str] = field(default_factory=list)
    checks: int = 0
    issued: list[tuple[str, object]] = field(default_factory=list)  # (issuer, certificate) issued during the run
    revoked: dict[int, tuple[str, object]] = field(default_factory=dict)  # serial -> (issuer, certificate), acknowledged

    def error(self, text: str) -> None:
        with self.lock:
            self.errors.append(text)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


# --- setup -------------------------------------------------------------------------------------


def make_sandbox(data_dir: Path, workers: int) -> tuple[list, list, dict, str]:  # type: ignore[type-arg]
    from cryptography import x509

    from qtsp.services import bulk, register, revocation, tokens
    from qtsp.services.hierarchy import init_sandbox

    sb = init_sandbox(data_dir)
    register.add_psp(sb, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")
    requests = data_dir.parent / "pool.jsonl"
    requests.write_text("".join(json.dumps({"kind": "qwac", "org_id": ORG, "domains": [f"pool{i}.soak.example.com"]}
                                           if i % 3 else {"kind": "qsealc", "org_id": ORG}) + "\n" for i in range(POOL)))
    bulk.issue_file(sb, requests, data_dir.parent / "pool", workers=workers)
    cas = {}
    for name in ("qwac-ca", "qseal-ca"):
        cas[name] = x509.load_pem_x509_certificate((data_dir / "ca" / f"{name}.pem").read_bytes())
    by_subject = {c.subject: n for n, c in cas.items()}
    pool = []
    for path in sorted((data_dir.parent / "pool").glob("*/cert.pem")):
        cert = x509.load_pem_x509_certificate(path.read_bytes())
        pool.append((by_subject[cert.issuer], cert))
    revoked = pool[: len(pool) // 10]
    for _issuer, cert in revoked:
        revocation.revoke(sb, format(cert.serial_number, "X"), "superseded", actor="soak-setup")
    _, token = tokens.create(sb, "soak", "operator")
    from qtsp.services import ocsp as ocsp_svc

    ocsp_svc.refresh_due(sb, dt.datetime.now(dt.timezone.utc))  # bulk certificates get pre-signed answers too
    sb.engine.dispose()
    return pool, revoked, cas, token


# --- OCSP load ---------------------------------------------------------------------------------


def lua_string(data: bytes) -> str:
    return '"' + "".join(f"\\{b}" for b in data) + '"'


def wrk_script(path: Path, pool: list, cas: dict) -> Path:  # type: ignore[type-arg]
    import secrets

    from asn1crypto import ocsp as aocsp

    gets, posts, nonces = [], [], []
    for i, (issuer, cert) in enumerate(pool):
        der = ocsp_request(cert, cas[issuer], sha256=bool(i % 2))
        gets.append("/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
        posts.append(der)
    for i in range(100):
        issuer, cert = pool[i % len(pool)]
        req = aocsp.OCSPRequest.load(ocsp_request(cert, cas[issuer]))
        tbs = req["tbs_request"]
        tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": secrets.token_bytes(16)}]
        nonces.append(aocsp.OCSPRequest({"tbs_request": tbs}).dump())
    lines = [
        'local ctype = {["Content-Type"] = "application/ocsp-request"}',
        "local gets = {" + ",".join(json.dumps(p) for p in gets) + "}",
        "local posts = {" + ",".join(lua_string(b) for b in posts) + "}",
        "local nonces = {" + ",".join(lua_string(b) for b in nonces) + "}",
        "local i = 0",
        "request = function()",
        "  i = i + 1",
        "  local k = math.floor(i / 2)",
        "  if i % 2 == 0 then return wrk.format(\"GET\", gets[k % #gets + 1]) end",
        "  if i % 20 == 1 then return wrk.format(\"POST\", \"/ocsp\", ctype, nonces[math.floor(i / 20) % #nonces + 1]) end",
        "  return wrk.format(\"POST\", \"/ocsp\", ctype, posts[k % #posts + 1])",
        "end",
        "done = function(summary, latency, requests)",
        '  io.write(string.format("RESULT %d %f %d %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration / 1e6,',
        "    latency:percentile(50), latency:percentile(99), latency.max, summary.errors.status, summary.errors.connect,",
        "    summary.errors.read, summary.errors.write, summary.errors.timeout, latency:percentile(99.9)))",
        "end",
    ]
    path.write_text("\n".join(lines))
    return path


@dataclass
class Segment:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    detail: str


def run_wrk(wrk: str, url: str, script: Path, seconds: int, connections: int) -> Segment:
    out = subprocess.run([wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), url],
                         capture_output=True, text=True, timeout=seconds + 60)
    match = re.search(r"RESULT (\d+) ([\d.]+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not match:
        raise RuntimeError(f"wrk printed no result: {out.stdout[-2000:]} {out.stderr[-2000:]}")
    n, secs, p50, p99, mx, status, connect, read, write, timeout = (float(x) for x in match.groups())
    errors = int(status + connect + read + write + timeout)
    detail = f"status {int(status)}, connect {int(connect)}, read {int(read)}, write {int(write)}, timeout {int(timeout)}"
    return Segment(int(n), secs, p50 / 1000, p99 / 1000, mx / 1000, errors, detail)


def run_python_load(url: str, pool: list, cas: dict, seconds: int, threads: int) -> Segment:  # type: ignore[type-arg]
    """Without wrk: a bounded Python OCSP client, GET and POST alternating."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    requests = [ocsp_request(cert, cas[issuer]) for issuer, cert in pool]

    def worker(k: int) -> None:
        client = Http(url, timeout=10)
        i = k
        while time.monotonic() < deadline:
            der = requests[i % len(requests)]
            started = time.monotonic()
            try:
                if i % 2:
                    status, _, _ = client.request("POST", "/ocsp", der, {"Content-Type": "application/ocsp-request"})
                else:
                    status, _, _ = client.request("GET", "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
                ok = status == 200
            except (OSError, http.client.HTTPException) as exc:
                ok = False
                status = str(exc)  # type: ignore[assignment]
            with lock:
                latencies.append(time.monotonic() - started)
                if not ok:
                    errors.append(str(status))
            i += threads

    pool_threads = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool_threads:
        t.start()
    for t in pool_threads:
        t.join()
    return Segment(len(latencies), float(seconds), percentile(latencies, 50) * 1000, percentile(latencies, 99) * 1000,
                   max(latencies, default=0) * 1000, len(errors), f"python client, {len(errors)} errors")


# --- API load and checks -------------------------------------------------------------------------------


def issuer_loop(url: str, token: str, rate: float, stop: threading.Event, stats: Stats) -> None:
    from cryptography import x509

    client = Http(url, timeout=60)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    n = 0
    next_at = time.monotonic()
    while not stop.is_set():
        n += 1
        kind = "qwac" if n % 3 else "qsealc"
        body = {"kind": kind, "org_id": ORG, "csr": csr_pem()}
        if kind == "qwac":
            body["domains"] = [f"s{n}-{random.randrange(10**9)}.soak.example.com"]
        started = time.monotonic()
        try:
            status, _, raw = client.request("POST", "/api/v1/certificates", json.dumps(body).encode(), auth)
        except (OSError, http.client.HTTPException) as exc:
            stats.error(f"issue: {type(exc).__name__}: {exc}")
            continue
        elapsed = time.monotonic() - started
        if status != 201:
            stats.error(f"issue answered {status}: {raw[:200]!r}")
        else:
            answer = json.loads(raw)
            cert = x509.load_pem_x509_certificate(answer["certificate"].encode())
            with stats.lock:
                stats.api.append((time.monotonic(), "issue", elapsed))
                stats.issued.append((answer["issuer"], cert))
        next_at += 1 / rate
        stop.wait(max(0.0, next_at - time.monotonic()))


def issuer_loop_once(url: str, token: str, stats: Stats) -> None:
    """Issue certificates for a second on one new connection."""
    stop = threading.Event()
    thread = threading.Thread(target=issuer_loop, args=(url, token, 1000.0, stop, stats))
    thread.start()
    time.sleep(1.0)
    stop.set()
    thread.join()


def revoke_once(url: str, token: str, issuer: str, cert: object, stats: Stats) -> None:
    status, _, raw = Http(url, timeout=60).request(
        "POST", f"/api/v1/certificates/{cert.serial_number:X}/revoke", json.dumps({"reason": "superseded"}).encode(),  # type: ignore[attr-defined]
        {"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    if status != 200:
        stats.error(f"warm-up revoke answered {status}: {raw[:200]!r}")


def revoker_loop(url: str, token: str, rate: float, stop: threading.Event, stats: Stats) -> None:
    client = Http(url, timeout=60)
    auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    done = 0
    next_at = time.monotonic()
    while not stop.is_set():
        with stats.lock:
            candidates = stats.issued[done:]
        if not candidates:
            stop.wait(0.2)
            continue
        issuer, cert = candidates[0]
        done += 1
        serial = cert.serial_number  # type: ignore[attr-defined]
        started = time.monotonic()
        try:
            status, _, raw = client.request("POST", f"/api/v1/certificates/{serial:X}/revoke",
                                            json.dumps({"reason": random.choice(REASONS)}).encode(), auth)
        except (OSError, http.client.HTTPException) as exc:
            stats.error(f"revoke: {type(exc).__name__}: {exc}")
            continue
        elapsed = time.monotonic() - started
        if status != 200:
            stats.error(f"revoke answered {status}: {raw[:200]!r}")
        else:
            with stats.lock:
                stats.api.append((time.monotonic(), "revoke", elapsed))
                stats.revoked[serial] = (issuer, cert)
        next_at += 1 / rate
        stop.wait(max(0.0, next_at - time.monotonic()))


def checker_loop(url: str, pool_good: list, pool_revoked: list, cas: dict, stop: threading.Event,  # type: ignore[type-arg]
                 stats: Stats) -> None:
    client = Http(url, timeout=30)
    ctype = {"Content-Type": "application/ocsp-request"}
    rng = random.Random(7)
    while not stop.wait(0.1):
        with stats.lock:
            acked = list(stats.revoked.values())
        cases = [(rng.choice(pool_good), "good"), (rng.choice(pool_revoked), "revoked")]
        if acked:
            cases.append((rng.choice(acked), "revoked"))
        for (issuer, cert), expected in cases:
            try:
                status, _, body = client.request("POST", "/ocsp", ocsp_request(cert, cas[issuer]), ctype)
                got = parse_ocsp(body, cert.serial_number).status if status == 200 else f"HTTP {status}"
            except Exception as exc:  # noqa: BLE001
                got = f"{type(exc).__name__}: {exc}"
            with stats.lock:
                stats.checks += 1
            if got != expected:
                stats.error(f"OCSP for {cert.serial_number:X}: {got}, expected {expected}")


# --- processes -----------------------------------------------------------------------------------------


def rss_report(service: Service) -> dict[str, int]:
    report = {f"serve {service.pgid}": rss_kib(service.pgid)}
    for pid in service.worker_pids():
        report[f"worker {pid}"] = rss_kib(pid)
    for pid in service.scheduler_pids():
        report[f"scheduler {pid}"] = rss_kib(pid)
    return report


def fmt_rss(report: dict[str, int]) -> str:
    return ", ".join(f"{name} {kib / 1024:.1f} MiB" for name, kib in report.items())


def final_checks(data_dir: Path, url: str, stats: Stats, cas: dict) -> None:  # type: ignore[type-arg]
    from cryptography import x509

    from qtsp.services import audit
    from qtsp.services.context import open_sandbox

    wanted: dict[str, set[int]] = {"qwac-ca": set(), "qseal-ca": set()}
    for serial, (issuer, _cert) in stats.revoked.items():
        wanted[issuer].add(serial)
    client = Http(url, timeout=30)
    deadline = time.monotonic() + 15
    for issuer, serials in wanted.items():
        while True:
            status, _, body = client.request("GET", f"/crl/{issuer}.crl")
            listed = {entry.serial_number for entry in x509.load_der_x509_crl(body)} if status == 200 else set()
            if serials <= listed or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        if not serials <= listed:
            stats.error(f"{len(serials - listed)} acknowledged revocations of {issuer} not on its CRL 15 s after the run")
    sb = open_sandbox(data_dir)
    events, problem = audit.verify(sb)
    sb.engine.dispose()
    if problem is not None:
        stats.error(f"audit chain: event {problem.seq}: {problem.problem}")
    print(f"final: CRLs list all {sum(len(s) for s in wanted.values())} acknowledged revocations; "
          f"audit chain of {events} events {'verifies' if problem is None else 'BROKEN'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=int, default=3, help=f"length of the run, 1-{MAX_MINUTES} (default 3)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--issue-rate", type=float, default=5.0, help="API issuances per second (default 5)")
    parser.add_argument("--revoke-rate", type=float, default=2.0, help="API revocations per second (default 2)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="granian workers (default: CPU count)")
    parser.add_argument("--database-url", help="PostgreSQL URL (default: SQLite in the temporary data dir)")
    parser.add_argument("--python-client", action="store_true", help="load OCSP with the Python client even if wrk exists")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    args = parser.parse_args()
    if not 1 <= args.minutes <= MAX_MINUTES:
        parser.error(f"--minutes must be 1-{MAX_MINUTES}")
    if args.database_url:
        os.environ["QTSP_DATABASE_URL"] = args.database_url
    else:
        os.environ.pop("QTSP_DATABASE_URL", None)
    wrk = None if args.python_client else shutil.which("wrk")

    tmp = Path(tempfile.mkdtemp(prefix="qtsp-soak-"))
    data_dir = tmp / "qtsp-data"
    print(f"soak: setting up in {tmp} ({POOL} pool certificates)", flush=True)
    pool, pool_revoked, cas, token = make_sandbox(data_dir, args.workers)
    revoked_serials = {c.serial_number for _, c in pool_revoked}
    pool_good = [p for p in pool if p[1].serial_number not in revoked_serials]
    script = wrk_script(tmp / "ocsp.lua", pool, cas)
    service = Service(data_dir, workers=args.workers, scheduler=True, env=dict(os.environ))
    stats = Stats()
    stop = threading.Event()
    try:
        url = service.start()
        # Warm every worker up (pkilint validators, CA signers, caches) so that the start figure is the
        # steady state, not the import-time one: issuances and revocations on separate connections, then OCSP.
        warm = Stats()
        warmers = [threading.Thread(target=issuer_loop_once, args=(url, token, warm)) for _ in range(2 * args.workers)]
        for thread in warmers:  # at the same time, on separate connections, so that every worker gets some
            thread.start()
        for thread in warmers:
            thread.join()
        for issuer, cert in list(warm.issued):
            revoke_once(url, token, issuer, cert, warm)
        if warm.errors:
            raise RuntimeError(f"warm-up failed: {warm.errors}")
        if wrk:
            run_wrk(wrk, url, script, 5, args.connections)
        else:
            run_python_load(url, pool, cas, 5, 4)
        rss_start = rss_report(service)
        print(f"soak: {args.minutes} min on {url}, {args.workers} workers + scheduler, store "
              f"{'PostgreSQL' if args.database_url else 'SQLite'}; OCSP load: "
              f"{f'wrk -t2 -c{args.connections}' if wrk else 'Python client, 4 threads'} (GET/POST alternating, "
              f"1 in 20 with a nonce); API: {args.issue_rate:g} issuances/s, {args.revoke_rate:g} revocations/s")
        print(f"RSS at start (after a warm-up: issuances, revocations, 5 s of OCSP): {fmt_rss(rss_start)}", flush=True)
        threads = [threading.Thread(target=issuer_loop, args=(url, token, args.issue_rate, stop, stats), daemon=True),
                   threading.Thread(target=revoker_loop, args=(url, token, args.revoke_rate, stop, stats), daemon=True),
                   threading.Thread(target=checker_loop, args=(url, pool_good, pool_revoked, cas, stop, stats), daemon=True)]
        for thread in threads:
            thread.start()
        print(f"{'min':>3} {'ocsp req':>9} {'req/s':>7} {'p50 ms':>7} {'p99 ms':>7} {'max ms':>7} {'ocsp err':>8} "
              f"{'issued':>6} {'revoked':>7} {'api p99 ms':>10} {'checks':>6} {'errors':>6}  worker RSS MiB")
        segments = []
        for minute in range(1, args.minutes + 1):
            started = time.monotonic()
            with stats.lock:
                api_mark, checks_mark, errors_mark = len(stats.api), stats.checks, len(stats.errors)
            segment = (run_wrk(wrk, url, script, 60, args.connections) if wrk
                       else run_python_load(url, pool, cas, 60, 4))
            segments.append(segment)
            if segment.errors:
                stats.error(f"minute {minute}: {segment.errors} OCSP load errors ({segment.detail})")
            with stats.lock:
                api = stats.api[api_mark:]
                checks, errors = stats.checks - checks_mark, len(stats.errors) - errors_mark
            issued = sum(1 for _, kind, _ in api if kind == "issue")
            revoked = sum(1 for _, kind, _ in api if kind == "revoke")
            api_p99 = percentile([s for _, _, s in api], 99) * 1000
            workers_rss = " ".join(f"{rss_kib(p) / 1024:.1f}" for p in service.worker_pids())
            print(f"{minute:>3} {segment.requests:>9} {segment.requests / segment.seconds:>7.0f} {segment.p50_ms:>7.2f} "
                  f"{segment.p99_ms:>7.2f} {segment.max_ms:>7.1f} {segment.errors:>8} {issued:>6} {revoked:>7} "
                  f"{api_p99:>10.0f} {checks:>6} {errors:>6}  {workers_rss}  ({time.monotonic() - started:.0f} s)", flush=True)
            if not service.alive():
                stats.error("qtsp serve exited during the run")
                break
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
        rss_end = rss_report(service)
        print(f"RSS at end:   {fmt_rss(rss_end)}")
        for name in rss_start:
            if name in rss_end:
                print(f"  {name}: {rss_start[name] / 1024:.1f} -> {rss_end[name] / 1024:.1f} MiB "
                      f"({(rss_end[name] - rss_start[name]) / 1024:+.1f})")
            else:
                stats.error(f"{name} is gone at the end (a worker died?)")
        p99s = [s.p99_ms for s in segments]
        total = sum(s.requests for s in segments)
        print(f"OCSP: {total} requests in {sum(s.seconds for s in segments):.0f} s ({total / sum(s.seconds for s in segments):.0f}/s), "
              f"p99 per minute {', '.join(f'{p:.2f}' for p in p99s)} ms (spread {max(p99s) - min(p99s):.2f} ms, "
              f"median {statistics.median(p99s):.2f} ms)")
        with stats.lock:
            issued_total = sum(1 for _, k, _ in stats.api if k == "issue")
            revoked_total = sum(1 for _, k, _ in stats.api if k == "revoke")
            api_p99 = percentile([s for _, _, s in stats.api], 99) * 1000
        print(f"API: {issued_total} certificates issued, {revoked_total} revoked (p99 {api_p99:.0f} ms); "
              f"OCSP content checks: {stats.checks}")
        final_checks(data_dir, url, stats, cas)
    finally:
        stop.set()
        service.stop()
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"errors: {len(stats.errors)}")
    for line in stats.errors[:20]:
        print(f"  {line}")
    return 1 if stats.errors else 0


if __name__ == "__main__":
    sys.exit(main())
