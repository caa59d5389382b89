"""Signing through Vault Transit (OpenBao) next to the file signer, in one run; then re-signing
the OCSP responses of 100,000 certificates through Transit.

    .venv/bin/python benchmarks/signing.py [--n 2000] [--certs 100000]

Targets (issue 4): batched Transit signing >= 1,000 signatures/s; the 100,000-response refresh
well inside the OCSP half-life (under 5 minutes).
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:9.0f} signatures/s  ({1e6 * seconds / n:7.1f} us each)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--certs", type=int, default=100_000)
    args = parser.parse_args()
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    from bao import OpenBao

    bao = OpenBao().start()
    os.environ.update(QTSP_VAULT_ADDR=bao.addr, QTSP_VAULT_TOKEN=bao.token)
    os.environ.pop("QTSP_DATABASE_URL", None)
    try:
        from qtsp.signers import backend_for
        from qtsp.signers.file import FileBackend

        tmp = Path(tempfile.mkdtemp(prefix="qtsp-sign-bench-"))
        messages = [os.urandom(200) for _ in range(args.n)]
        algorithm = ec.ECDSA(hashes.SHA256())
        file_signer = FileBackend(tmp).signer(FileBackend(tmp).generate("bench-1", "ecdsa-p256").ref)
        start = time.perf_counter()
        for m in messages:
            file_signer.sign(m, algorithm)
        file_s = time.perf_counter() - start
        vault = backend_for("vault-transit", tmp)
        ref = vault.generate(f"bench-{os.urandom(3).hex()}", "ecdsa-p256").ref
        signer = vault.signer(ref)
        single_n = min(args.n, 500)
        start = time.perf_counter()
        for m in messages[:single_n]:
            signer.sign(m, algorithm)
        single_s = time.perf_counter() - start
        start = time.perf_counter()
        signer.sign_many(messages, algorithm)
        batch_s = time.perf_counter() - start
        print("ECDSA P-256 signatures (each Transit signature verified locally against its key version):")
        print(f"  file signer (in process)         {rate(args.n, file_s)}")
        print(f"  Transit, one call per signature  {rate(single_n, single_s)}")
        print(f"  Transit, batch_input of 250      {rate(args.n, batch_s)}   target >= 1,000/s: "
              f"{'MET' if args.n / batch_s >= 1000 else 'MISSED'}")
        print(f"  ratio batched Transit / file: {file_s / batch_s:.3f}")
        print(refresh_benchmark(tmp, args.certs))
    finally:
        bao.stop()


def refresh_benchmark(tmp: Path, n: int) -> str:
    from sqlalchemy import func, insert, select

    from ca_store.models import Certificate
    from qtsp.services import ocsp as ocsp_svc
    from qtsp.services.hierarchy import init_sandbox

    sb = init_sandbox(tmp / "sandbox", keystore="vault")
    now = dt.datetime.now(dt.timezone.utc)
    with sb.transaction() as session:
        base = session.execute(select(func.max(Certificate.id))).scalar_one() or 0
        session.execute(insert(Certificate), [
            {"id": base + i + 1, "issuer_id": "qwac-ca", "serial": format((1 << 100) + i, "X"), "profile": "qwac",
             "subject": "CN=bench", "org_id": "PSDBE-NBB-1", "nca_id": "BE-NBB", "roles": "PSP_AI", "dns_names": None,
             "not_before": now, "not_after": now + dt.timedelta(days=200),
             "fingerprint_sha256": hashlib.sha256(str(i).encode()).hexdigest(), "der": b"\x30\x00", "status": "good",
             "created_at": now} for i in range(n)])
    start = time.perf_counter()
    count = ocsp_svc.resign_issuer(sb, "qwac-ca", now)
    seconds = time.perf_counter() - start
    half_life = sb.config.ocsp_validity_hours / 2
    return (f"OCSP refresh through Transit: {count} responses ({n} certificates x SHA-1 and SHA-256 CertIDs) "
            f"signed and stored in {seconds:.1f} s = {count / seconds:.0f}/s; half-life {half_life:.0f} h; "
            f"target < 300 s: {'MET' if seconds < 300 else 'MISSED'}")


if __name__ == "__main__":
    main()
