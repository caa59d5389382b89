"""What the bank-side request verifier adds to each API call, on a warm cache, with peers in the same run.

    .venv/bin/python benchmarks/bank_verifier.py [--n 2000]

A throwaway sandbox issues a QWAC and a QSealC (ECDSA P-256, the sandbox default); a first request per
scheme fills the verdict cache (revocation is then answered from the cache: no OCSP or CRL fetch is made
in the timed part, which the script checks). Then N requests per scheme, each signed beforehand with its
own X-Request-ID, go through ``SignatureVerifier`` around the demo bank's WSGI app, in process (no
socket, no TLS: the TLS handshake is the server's cost, not the verifier's). Rows, taking turns:

* the bare app without the middleware (the floor);
* the app behind the verifier, per scheme; "added" is its p50/p99 minus the bare app's;
* peer: ``http-message-signatures`` (PyPI) verifying the same RFC 9421 requests (signature and
  Content-Digest only: no certificate, no policy), and our ``rfc9421.verify`` doing the same work.

Target (issue 19): the verifier adds at most 2 ms per request at p50. Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ORG = "PSDBE-NBB-0123456789"


def _setup(work: Path) -> dict[str, Any]:
    from cryptography import x509

    from qtsp.core.errors import Kind, QTSPError
    from qtsp.relying_party import Fetcher, trusted_list_from_anchors
    from qtsp.relying_party.bank_verifier import Trust
    from qtsp.relying_party.http_signatures import SealKey
    from qtsp.services import register
    from qtsp.services.hierarchy import init_sandbox
    from qtsp.services.issuance import IssueRequest, issue
    from qtsp.web import create_app

    os.environ.pop("QTSP_DATABASE_URL", None)
    data_dir = work / "qtsp-data"
    sandbox = init_sandbox(data_dir)
    register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")
    qwac = issue(sandbox, IssueRequest("qwac", ORG, domains=("tpp.example.be",), generate_key="ecdsa-p256"))
    seal = issue(sandbox, IssueRequest("qsealc", ORG, generate_key="ecdsa-p256"))
    client = create_app({"data_dir": data_dir}).test_client()

    class AppFetcher(Fetcher):
        fetched = 0

        def fetch(self, url: str, *, body: bytes | None = None, content_type: str | None = None, limit: int) -> bytes:
            AppFetcher.fetched += 1
            path = urlsplit(url).path
            answer = client.post(path, data=body, content_type=content_type) if body is not None else client.get(path)
            if answer.status_code != 200:
                raise QTSPError(Kind.NOT_FOUND, f"{url}: HTTP {answer.status_code}")
            return bytes(answer.data)

    now = dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=2)
    root = x509.load_pem_x509_certificate((data_dir / "ca" / "root.pem").read_bytes())
    trust = Trust(trusted_list_from_anchors([root], now), [qwac.chain[0], seal.chain[0]], AppFetcher())
    return {"trust": trust, "now": now, "qwac": qwac.certificate, "fetcher": AppFetcher,
            "key": SealKey.from_private_key(seal.private_key, seal.certificate), "seal": seal}


def _environ(request: Any, qwac_der: bytes) -> dict[str, Any]:
    env: dict[str, Any] = {"REQUEST_METHOD": request.method, "REQUEST_URI": request.target,
                           "PATH_INFO": request.target.split("?")[0], "HTTP_HOST": request.authority,
                           "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(request.body),
                           "CONTENT_LENGTH": str(len(request.body)), "qtsp.peer_certificate": qwac_der}
    for name, value in request.headers:
        key = name.upper().replace("-", "_")
        env[key if key == "CONTENT_TYPE" else f"HTTP_{key}"] = value
    return env


def _time(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000, help="requests per row (default 2000)")
    args = parser.parse_args()

    import http_message_signatures as hms
    import requests
    from cryptography.hazmat.primitives.serialization import Encoding

    from qtsp.relying_party.bank_verifier import SignatureVerifier
    from qtsp.relying_party.demo_bank import ROLES, app
    from qtsp.relying_party.http_signatures import ALGORITHMS, Request, key_id, rfc9421, sign

    with tempfile.TemporaryDirectory() as tmp:
        ctx = _setup(Path(tmp))
    now, qwac_der = ctx["now"], ctx["qwac"].public_bytes(Encoding.DER)
    verifier = SignatureVerifier(app, trust=ctx["trust"], roles=ROLES, clock=lambda: now)
    body = b'{"instructedAmount": {"currency": "EUR", "amount": "12.50"}}'

    def signed(scheme: str) -> Any:
        request = Request("POST", "/v1/payments/sepa-credit-transfers", "bank.example:443",
                          [("Content-Type", "application/json")], body)
        return sign(request, ctx["key"], scheme, now=now)

    def done(status: list[str]) -> Callable[..., None]:
        return lambda s, h: status.append(s)

    schemes = ("berlin-group", "rfc9421", "jades")
    for scheme in schemes:  # warm: one verdict per certificate, then the cache answers
        seen: list[str] = []
        b"".join(verifier(_environ(signed(scheme), qwac_der), done(seen)))
        assert seen[0].startswith("201"), seen
    fetched = ctx["fetcher"].fetched

    requests_by_scheme = {s: [signed(s) for _ in range(args.n)] for s in schemes}
    environs = {s: [_environ(r, qwac_der) for r in rs] for s, rs in requests_by_scheme.items()}
    bare = [_environ(signed("rfc9421"), qwac_der) for _ in range(args.n)]
    for env in bare:
        env["qtsp.tpp"] = {}
    seal_cert = ctx["key"].certificate
    resolver = hms.resolvers.MappingKeyResolver(public_keys={key_id(seal_cert): seal_cert.public_key()}, private_keys={})
    peer = hms.HTTPMessageVerifier(signature_algorithm=hms.algorithms.ECDSA_P256_SHA256, key_resolver=resolver)
    peer.max_clock_skew = dt.timedelta(days=1)
    prepared = [requests.Request(r.method, r.target_uri, headers=dict(r.headers), data=r.body).prepare()
                for r in requests_by_scheme["rfc9421"]]

    rows: dict[str, list[float]] = {"bare app (no middleware)": []}
    rows.update({f"verifier + app, {s}": [] for s in schemes})
    rows["peer: http-message-signatures verify (RFC 9421)"] = []
    rows["ours: rfc9421.verify alone"] = []
    required = ("@method", "@target-uri", "content-digest")
    for i in range(args.n):  # round robin: a busy moment on a shared machine hits every row alike
        rows["bare app (no middleware)"].append(_time(lambda env=bare[i]: b"".join(app(env, done([])))))
        for s in schemes:
            status: list[str] = []
            rows[f"verifier + app, {s}"].append(
                _time(lambda env=environs[s][i], seen=status: b"".join(verifier(env, done(seen)))))
            if not status[0].startswith("201"):
                raise SystemExit(f"{s}: {status[0]}")
        rows["peer: http-message-signatures verify (RFC 9421)"].append(
            _time(lambda msg=prepared[i]: peer.verify(msg, body=body, require_components=required)))
        rows["ours: rfc9421.verify alone"].append(
            _time(lambda req=requests_by_scheme["rfc9421"][i]: rfc9421.verify(req, allowed=ALGORITHMS)))
    assert ctx["fetcher"].fetched == fetched, "the timed requests fetched revocation data: the cache was not warm"

    def pct(values: list[float], q: float) -> float:
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    floor50, floor99 = pct(rows["bare app (no middleware)"], 0.5), pct(rows["bare app (no middleware)"], 0.99)
    print(f"{args.n} requests per row, ms per request (python {sys.version.split()[0]}, {os.cpu_count()} CPUs; "
          f"ECDSA P-256; warm verdict cache: {verifier.cache.hits} hits, {verifier.cache.misses} misses, "
          f"0 revocation fetches in the timed part)")
    print(f"{'row':50} {'p50':>7} {'p99':>7} {'mean':>7} {'added p50':>10} {'added p99':>10}")
    for label, spans in rows.items():
        p50, p99 = pct(spans, 0.5), pct(spans, 0.99)
        added = f"{p50 - floor50:10.3f} {p99 - floor99:10.3f}" if label.startswith("verifier") else f"{'-':>10} {'-':>10}"
        print(f"{label:50} {p50:7.3f} {p99:7.3f} {statistics.mean(spans) * 1000:7.3f} {added}")


if __name__ == "__main__":
    main()
