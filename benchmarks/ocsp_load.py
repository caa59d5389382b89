"""OCSP load: qtsp (as `qtsp serve` runs it) against `openssl ocsp` and a bare WSGI ceiling.

    .venv/bin/python benchmarks/ocsp_load.py [--duration 10] [--connections 32] [--certs 200]

Starts on loopback, in one run: (a) `qtsp serve`, (b) `openssl ocsp` over the same CA, responder
key and an index of the same certificates, (c) a bare WSGI app returning a constant OCSP response
under the same WSGI server and settings. Loads each with wrk (Debian package `wrk`) for GET and POST of
pre-signed responses and POST with a fresh nonce per request; prints requests/s, p50, p99 and the
ratios. Then: revocation-to-OCSP latency, and CRL generation time for 100,000 revoked entries.
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from asn1crypto import ocsp as aocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsp_setup import ORG, ROOT, free_port, issued_sandbox, process, run_wrk, serve_cmd, wait_http, wait_port, wrk_script


def with_nonce(der: bytes, n: int) -> bytes:
    req = aocsp.OCSPRequest.load(der)
    tbs = req["tbs_request"]
    tbs["request_extensions"] = [{"extn_id": "nonce", "extn_value": n.to_bytes(16, "big")}]
    return aocsp.OCSPRequest({"tbs_request": tbs}).dump()


CEILING_APP = '''
from pathlib import Path
BODY = Path(__import__("os").environ["QTSP_BENCH_BODY"]).read_bytes()
HEADERS = [("Content-Type", "application/ocsp-response"), ("Content-Length", str(len(BODY)))]
def app(environ, start_response):
    environ["wsgi.input"].read()
    start_response("200 OK", HEADERS)
    return [BODY]
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--certs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--max-age", type=int, default=5, help="ocsp_max_age_seconds for this run (cache bound)")
    parser.add_argument("--openssl-multi", type=int, default=1, help="openssl ocsp -multi N (default: one process)")
    args = parser.parse_args()
    from qtsp.services import revocation

    tmp = Path(tempfile.mkdtemp(prefix="qtsp-ocsp-bench-"))
    try:
        made = issued_sandbox(tmp, args.certs, args.workers, f"ocsp_max_age_seconds = {args.max_age}\n")
        data, ca, certs, sb = made.data, made.ca, made.certs, made.sandbox
        for cert in certs[: len(certs) // 10]:
            revocation.revoke(sb, format(cert.serial_number, "X"), "superseded")
        sb.engine.dispose()

        # openssl ocsp: same CA, the same delegated responder key and certificate, an index of the same certificates.
        from ca_store import repositories as repo
        from qtsp.signers.file import FileBackend

        with sb.transaction() as session:
            row = repo.get_ca(session, "qwac-ca")
            responder_der, ocsp_ref = row.ocsp_responder_der, row.ocsp_key.ref
        backend = FileBackend(data)
        key = serialization.load_pem_private_key(backend._path(ocsp_ref).read_bytes(), backend._passphrase(create=False))
        (tmp / "rkey.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
        (tmp / "rsigner.pem").write_bytes(x509.load_der_x509_certificate(responder_der).public_bytes(serialization.Encoding.PEM))
        revoked = {c.serial_number for c in certs[: len(certs) // 10]}
        with open(tmp / "index.txt", "w") as index:
            for cert in certs:
                exp = cert.not_valid_after_utc.strftime("%y%m%d%H%M%SZ")
                serial = format(cert.serial_number, "X")
                serial = serial if len(serial) % 2 == 0 else "0" + serial
                if cert.serial_number in revoked:
                    index.write(f"R\t{exp}\t{dt.datetime.now(dt.timezone.utc):%y%m%d%H%M%SZ},superseded\t{serial}\tunknown\t/CN=x\n")
                else:
                    index.write(f"V\t{exp}\t\t{serial}\tunknown\t/CN=x\n")

        (tmp / "index.txt.attr").write_text("unique_subject = no\n")
        good = [c for c in certs if c.serial_number not in revoked]
        sha1 = [ocsp.OCSPRequestBuilder().add_certificate(c, ca, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
                for c in good]
        nonce_bodies = [with_nonce(sha1[i % len(sha1)], i + 1) for i in range(2000)]
        get_paths = ["/ocsp/" + urllib.request.quote(base64.b64encode(b).decode(), safe="") for b in sha1]
        # openssl ocsp takes GET requests at its root ("/<base64>"), qtsp at its AIA path ("/ocsp/<base64>").
        openssl_get = wrk_script(tmp / "get-openssl.lua", "GET", None, [p[len("/ocsp"):] for p in get_paths])
        scripts = {
            "GET": wrk_script(tmp / "get.lua", "GET", None, get_paths),
            "POST": wrk_script(tmp / "post.lua", "POST", sha1, None),
            "POST+nonce": wrk_script(tmp / "nonce.lua", "POST", nonce_bodies, None),
        }
        results: dict[str, dict[str, dict[str, float]]] = {"qtsp": {}, "openssl": {}, "ceiling": {}}

        def qtsp_cmd(port: int) -> list[str]:
            return serve_cmd(data, port, args.workers)

        port = free_port()
        with process(qtsp_cmd(port), tmp / "qtsp.log"):
            wait_http(f"http://127.0.0.1:{port}/healthz")
            for name, script in scripts.items():
                results["qtsp"][name] = run_wrk(f"http://127.0.0.1:{port}", script, args.duration, args.connections)

        for name in ("GET", "POST", "POST+nonce"):
            oport = free_port()  # afresh for each run: openssl ocsp 3.0 wedges after an idle connection
            cmd = ["openssl", "ocsp", "-index", str(tmp / "index.txt"), "-port", str(oport), "-rsigner",
                   str(tmp / "rsigner.pem"), "-rkey", str(tmp / "rkey.pem"), "-CA", str(data / "ca" / "qwac-ca.pem"),
                   "-nmin", "600"] + (["-multi", str(args.openssl_multi)] if args.openssl_multi > 1 else [])
            with process(cmd, tmp / f"openssl-{name}.log"):
                wait_port(oport)
                script = openssl_get if name == "GET" else scripts[name]
                results["openssl"][name] = run_wrk(f"http://127.0.0.1:{oport}", script, args.duration, args.connections)

        (tmp / "ceiling.py").write_text(CEILING_APP)
        body_holder = tmp / "body.der"
        port = free_port()
        with process(qtsp_cmd(port), tmp / "q2.log"):
            wait_http(f"http://127.0.0.1:{port}/healthz")
            req = urllib.request.Request(f"http://127.0.0.1:{port}/ocsp", data=sha1[0], headers={"Content-Type": "application/ocsp-request"})
            body_holder.write_bytes(urllib.request.urlopen(req, timeout=5).read())
        cport = free_port()
        env = dict(os.environ, QTSP_BENCH_BODY=str(body_holder), PYTHONPATH=str(tmp))
        # The ceiling runs under the same WSGI server and settings as `qtsp serve` (granian, N workers, 4 threads).
        granian = [str(Path(sys.executable).parent / "granian"), "--interface", "wsgi", "--host", "127.0.0.1", "--port",
                   str(cport), "--workers", str(args.workers), "--blocking-threads", "4", "--backlog", "2048",
                   "--no-access-log", "ceiling:app"]
        with process(granian, tmp / "ceiling.log", env):
            wait_http(f"http://127.0.0.1:{cport}/")
            for name, script in scripts.items():
                results["ceiling"][name] = run_wrk(f"http://127.0.0.1:{cport}", script, args.duration, args.connections)

        print(f"OCSP load, {args.connections} connections, {args.duration} s per run, wrk -t2, {len(certs)} certificates, "
              f"server workers {args.workers}")
        print(f"{'':12}{'qtsp':>24}{'openssl ocsp':>24}{'bare WSGI':>24}{'qtsp/openssl':>14}{'qtsp/ceiling':>14}")
        for name in scripts:
            row = [results[s][name] for s in ("qtsp", "openssl", "ceiling")]
            cells = "".join(f"{r['rps']:>9.0f}/s p50 {r['p50_ms']:>5.1f} p99 {r['p99_ms']:>5.1f}" for r in row)
            print(f"{name:12}{cells}{row[0]['rps'] / row[1]['rps']:>14.2f}{row[0]['rps'] / row[2]['rps']:>14.2f}")
            if any(r["errors"] for r in row):
                print(f"   errors: {[r['errors'] for r in row]}")

        print(nginx_benchmark(tmp, data, qtsp_cmd, get_paths, scripts["GET"], results["openssl"]["GET"], args, good, sha1, sb))

        # Revocation-to-OCSP: the new status is served before revoke() returns.
        sb = __import__("qtsp.services.context", fromlist=["open_sandbox"]).open_sandbox(data)
        port = free_port()
        with process(qtsp_cmd(port), tmp / "q3.log"):
            wait_http(f"http://127.0.0.1:{port}/healthz")
            latencies = []
            for cert, der in list(zip(good, sha1, strict=True))[:20]:
                urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/ocsp", data=der,
                                                              headers={"Content-Type": "application/ocsp-request"}), timeout=5).read()
                start = time.perf_counter()
                revocation.revoke(sb, format(cert.serial_number, "X"), "key-compromise")
                returned = time.perf_counter()
                body = urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/ocsp", data=der,
                                                                     headers={"Content-Type": "application/ocsp-request"}), timeout=5).read()
                status = ocsp.load_der_ocsp_response(body).certificate_status
                assert status == ocsp.OCSPCertStatus.REVOKED, f"stale {status} after revoke returned ({len(latencies)} before, serial {cert.serial_number:X}, issuer {cert.issuer.rfc4514_string()})"
                latencies.append(returned - start)
            latencies.sort()
            print(f"revoke() to acknowledgement, OCSP already revoked on the first request after it: "
                  f"median {1000 * latencies[len(latencies) // 2]:.1f} ms, max {1000 * latencies[-1]:.1f} ms (20 revocations)")
        try:
            from qtsp.services import crl as crl_svc  # noqa: F401
            print(crl_benchmark(sb))
        except ImportError:
            print("CRL benchmark: qtsp.services.crl not available")
    finally:
        if not os.environ.get("QTSP_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


def nginx_benchmark(tmp, data, qtsp_cmd, get_paths, script, openssl_get, args, good, sha1, sb) -> str:  # type: ignore[no-untyped-def]
    """GET through nginx's cache in front of qtsp, against `openssl ocsp` measured above; then how
    long a revocation takes to show through the cache (bounded by the max-age qtsp sends)."""
    sys.path.insert(0, str(ROOT / "tests"))
    from support.nginx import Nginx
    from qtsp.services import revocation

    port = free_port()
    with process(qtsp_cmd(port), tmp / "q-nginx.log"):
        wait_http(f"http://127.0.0.1:{port}/healthz")
        with Nginx([f"http://127.0.0.1:{port}"], tmp / "nginx") as lb:
            for path in get_paths:  # warm the cache
                urllib.request.urlopen(lb.url + path, timeout=5).read()
            cached = run_wrk(lb.url, script, args.duration, args.connections)
            cert, der = good[-1], get_paths[-1]
            urllib.request.urlopen(lb.url + der, timeout=5).read()
            start = time.monotonic()
            revocation.revoke(sb, format(cert.serial_number, "X"), "key-compromise")
            while ocsp.load_der_ocsp_response(urllib.request.urlopen(lb.url + der, timeout=5).read()).certificate_status \
                    != ocsp.OCSPCertStatus.REVOKED:
                if time.monotonic() - start > args.max_age + 10:
                    raise RuntimeError("the cache kept serving good past max-age")
                time.sleep(0.05)
            seen = time.monotonic() - start
    return (f"GET through nginx cache {cached['rps']:9.0f}/s p50 {cached['p50_ms']:.1f} p99 {cached['p99_ms']:.1f}  "
            f"vs openssl ocsp {openssl_get['rps']:.0f}/s: ratio {cached['rps'] / openssl_get['rps']:.2f} (target >= 3)\n"
            f"revocation visible through the cache after {seen:.1f} s (max-age sent: {args.max_age} s)")


def crl_benchmark(sb) -> str:  # type: ignore[no-untyped-def]
    """Insert 100,000 synthetic revoked certificates under the QSealC CA and time one full CRL."""
    import hashlib

    from sqlalchemy import func, insert, select

    from ca_store.models import Certificate, Revocation
    from qtsp.services import crl as crl_svc

    now = dt.datetime.now(dt.timezone.utc)
    n = 100_000
    with sb.transaction() as session:
        base = session.execute(select(func.max(Certificate.id))).scalar_one() or 0
        rows = [{"id": base + i + 1, "issuer_id": "qseal-ca", "serial": format((1 << 100) + i, "X"), "profile": "qsealc",
                 "subject": "CN=bench", "org_id": ORG, "nca_id": "BE-NBB", "roles": "PSP_AI", "dns_names": None,
                 "not_before": now, "not_after": now + dt.timedelta(days=365),
                 "fingerprint_sha256": hashlib.sha256(str(i).encode()).hexdigest(), "der": b"\x30\x00",
                 "status": "revoked", "created_at": now} for i in range(n)]
        session.execute(insert(Certificate), rows)
        session.execute(insert(Revocation), [{"certificate_id": base + i + 1, "revoked_at": now, "reason": "superseded",
                                              "requested_by": "bench"} for i in range(n)])
    start = time.perf_counter()
    record = crl_svc.generate(sb, "qseal-ca", now)
    seconds = time.perf_counter() - start
    return f"CRL regeneration with {record.entries} revoked entries: {seconds:.2f} s (build, sign, store; target < 2 s)"


if __name__ == "__main__":
    main()
