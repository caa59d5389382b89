"""Bulk-issue N PSD2 QWACs through the real path (validate, lint, sign, store) and compare
with the raw cryptography CertificateBuilder rate measured in the same run.

    .venv/bin/python benchmarks/issuance.py [--n 10000] [--workers 2]

Target (issue 2): 10,000 linted QWACs in at most 120 s on a 2-core machine (SQLite, file keys).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sqlite3
import tempfile
import time
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtsp.services import bulk, register
from qtsp.services.hierarchy import init_sandbox

ORG = "PSDBE-NBB-0123456789"


def raw_builder_rate(n: int) -> float:
    """Plain CertificateBuilder + P-384 CA key + fresh P-256 subscriber key: the ceiling."""
    ca_key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])
    now = dt.datetime.now(dt.timezone.utc)
    start = time.perf_counter()
    for i in range(n):
        key = ec.generate_private_key(ec.SECP256R1())
        (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now).not_valid_after(now + dt.timedelta(days=200))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"api{i}.example.com")]), critical=False)
            .sign(ca_key, hashes.SHA384())
        )
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    os.environ.pop("QTSP_DATABASE_URL", None)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "qtsp-data"
        sb = init_sandbox(data_dir)
        register.add_psp(sb, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", locality="Brussels",
                         registration_number="0123.456.789")
        requests = Path(tmp) / "requests.jsonl"
        with requests.open("w") as handle:
            for i in range(args.n):
                handle.write(json.dumps({"kind": "qwac", "org_id": ORG, "domains": [f"api{i}.example.com"]}) + "\n")
        result = bulk.issue_file(sb, requests, Path(tmp) / "out", workers=args.workers)
        count = sqlite3.connect(data_dir / "qtsp.db").execute("select count(*) from certificates").fetchone()[0]
        raw_n = min(args.n, 2000)
        raw = raw_builder_rate(raw_n)
    rate = result.issued / result.seconds
    print(f"qtsp bulk issuance: {result.issued} linted PSD2 QWACs in {result.seconds:.1f} s "
          f"= {rate:.0f} certificates/s with {result.workers} workers (stored rows: {count})")
    print("time per step (validate/reserve/store: wall clock in the parent; keygen/template/lint/sign: summed over workers):")
    for name, seconds in result.steps.items():
        print(f"  {name:18} {seconds:8.2f} s   {1000 * seconds / result.issued:7.3f} ms/cert")
    print(f"raw CertificateBuilder (1 core, no lint, no store, {raw_n} certs): {raw:.0f} certificates/s")
    budget = 120 * args.n / 10_000  # the target, 10,000 in 120 s, scaled to this run's N
    print(f"ratio qtsp/raw: {rate / raw:.3f}   target: 10,000 in <= 120 s, so {args.n} in <= {budget:.1f} s -> "
          f"{'MET' if result.seconds <= budget else 'MISSED'}")


if __name__ == "__main__":
    main()
