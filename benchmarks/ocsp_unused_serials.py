"""OCSP for never-issued serials against OCSP for known ones, measured in the same run (issue 15, finding 3).

    .venv/bin/python benchmarks/ocsp_unused_serials.py [--duration 10] [--connections 32] [--certs 200]

Starts `qtsp serve` on loopback and loads it with wrk (Debian package `wrk`), POST /ocsp both times:
(a) known serials: SHA-1 requests for the issued certificates, round robin (pre-signed, cached);
(b) random serials: a fresh 128-bit serial per request, made in wrk's Lua, so that no two requests are
    alike and no cache can help: the scanner's (or attacker's) load.
Prints requests/s, p50 and p99 for each, their ratio (target: random within 2x of known), what a
random-serial request is answered, and how much the workers' memory grew over the random run
(nothing is kept per request for a serial never issued).
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

from asn1crypto import ocsp as aocsp
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ocsp_setup import free_port, issued_sandbox, lua_bytes, process, run_wrk, serve_cmd, wait_http, wrk_script

MARK = b"\x11" + b"\x22" * 15  # the serial's 16 content octets in the template, replaced per request


def random_serial_script(path: Path, template: bytes) -> Path:
    """A wrk script that POSTs ``template`` with its 16-octet serial made random per request."""
    at = template.index(MARK)
    prefix, suffix = template[:at], template[at + len(MARK):]
    path.write_text("\n".join([
        'local ctype = {["Content-Type"] = "application/ocsp-request"}',
        f"local prefix = {lua_bytes(prefix)}",
        f"local suffix = {lua_bytes(suffix)}",
        "local threads = 0",
        "function setup(thread) threads = threads + 1; thread:set('id', threads) end",
        "function init(args) math.randomseed(os.time() * 1000 + id) end",
        "request = function()",
        "  local t = {string.char(math.random(1, 127))}",  # non-zero, positive: always 16 octets
        "  for i = 2, 16 do t[i] = string.char(math.random(0, 255)) end",
        '  return wrk.format("POST", "/ocsp", ctype, prefix .. table.concat(t) .. suffix)',
        "end",
        """done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %d %d %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50), latency:percentile(99), summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.timeout))
end""",
    ]))
    return path


def template_request(known: bytes) -> bytes:
    """A known certificate's request with its serial replaced by MARK (same issuer hashes)."""
    req = aocsp.OCSPRequest.load(known)
    tbs = req["tbs_request"]
    cert_id = tbs["request_list"][0]["req_cert"]
    one = {"req_cert": {"hash_algorithm": cert_id["hash_algorithm"].native, "issuer_name_hash": cert_id["issuer_name_hash"].native,
                        "issuer_key_hash": cert_id["issuer_key_hash"].native, "serial_number": int.from_bytes(MARK, "big")}}
    der = aocsp.OCSPRequest({"tbs_request": {"request_list": [one]}}).dump()
    assert der.count(MARK) == 1
    return der


def rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants (the server and its workers)."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, StopIteration, ProcessLookupError):
            continue
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--certs", type=int, default=200)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="qtsp-unused-bench-"))
    try:
        made = issued_sandbox(tmp, args.certs, args.workers)
        data, ca, certs = made.data, made.ca, made.certs
        known = [ocsp.OCSPRequestBuilder().add_certificate(c, ca, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
                 for c in certs]
        known_script = wrk_script(tmp / "known.lua", "POST", known, None)
        random_script = random_serial_script(tmp / "random.lua", template_request(known[0]))

        port = free_port()
        with process(serve_cmd(data, port, args.workers), tmp / "qtsp.log") as server:
            url = f"http://127.0.0.1:{port}"
            wait_http(f"{url}/healthz")
            probe = template_request(known[0]).replace(MARK, bytes.fromhex("7f" + "5a" * 15))
            body = urllib.request.urlopen(urllib.request.Request(f"{url}/ocsp", data=probe, headers={
                "Content-Type": "application/ocsp-request"}), timeout=5).read()
            answer = ocsp.load_der_ocsp_response(body)
            said = answer.response_status.name if answer.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL \
                else answer.certificate_status.name
            known_run = run_wrk(url, known_script, args.duration, args.connections)
            before = rss_kib(server.pid)
            random_run = run_wrk(url, random_script, args.duration, args.connections)
            after = rss_kib(server.pid)

        requests = random_run["rps"] * args.duration
        print(f"OCSP POST, {args.connections} connections, {args.duration} s per run, wrk -t2, {len(certs)} certificates, "
              f"server workers {args.workers}")
        for name, run in (("known serials", known_run), ("random serials", random_run)):
            print(f"{name:15} {run['rps']:>9.0f}/s p50 {run['p50_ms']:>6.1f} ms p99 {run['p99_ms']:>6.1f} ms"
                  + (f"  errors {run['errors']}" if run["errors"] else ""))
        ratio = known_run["rps"] / random_run["rps"]
        print(f"known/random: {ratio:.2f} (target <= 2)")
        print(f"a never-issued serial is answered: {said} ({len(body)} bytes)")
        print(f"server RSS over the random run: {before / 1024:.1f} MiB -> {after / 1024:.1f} MiB "
              f"({(after - before) * 1024 / max(requests, 1):.0f} bytes per request, {requests:.0f} requests)")
    finally:
        if not os.environ.get("QTSP_BENCH_KEEP"):
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
