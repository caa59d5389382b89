"""Batch validation without network: certificates per second, next to peers measured in the same run.

    .venv/bin/python benchmarks/validate_batch.py [--n 1000] [--rounds 3]

N distinct certificates of a foreign demo QTSP (tests/support/foreign_pki.py: the correct QWAC, QSealC,
2-QWAC and their allowed forms, and one broken variant per profile rule) are judged, one process, revocation
off, against the foreign root as the trust anchor, with:

- ``qtsp.relying_party.validate``: path + every profile rule (the target of issue 17: >= 200/s);
- the same with ``pkilint=True`` (pkilint 0.13.3 underneath, as ``qtsp validate`` does by default);
- pyhanko-certvalidator 0.33 (path validation only, no revocation, no qualified/PSD2 content): the peer;
- ``openssl verify`` on the same files in one invocation (path only), where openssl is installed.

Each row is the best of ``--rounds`` runs, in turns (a busy moment on a shared machine hits every row alike).
It also prints the import time of ``qtsp.relying_party`` (target < 0.2 s; benchmarks/relying_party_import.py
has the full comparison). It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402

from qtsp.relying_party import trusted_list_from_anchors, validate  # noqa: E402
from support.foreign_pki import NOW, VALID, VARIANTS, ForeignPKI  # noqa: E402


def certificates(pki: ForeignPKI, n: int) -> list[x509.Certificate]:
    """N distinct certificates (each issued, with its own key and serial), cycling through the specs."""
    specs = list(VALID.values()) + [v.spec for v in VARIANTS]
    return [pki.issue(specs[i % len(specs)]) for i in range(n)]


def ours(pki: ForeignPKI, certs: list[x509.Certificate], *, pkilint: bool) -> Callable[[], int]:
    anchors = trusted_list_from_anchors([pki.root], NOW)

    def run() -> int:
        return sum(validate(c, trusted_list=anchors, at=NOW, intermediates=[pki.ca], revocation="off",
                            pkilint=pkilint).accepted for c in certs)
    return run


def pyhanko(pki: ForeignPKI, certs: list[x509.Certificate]) -> Callable[[], int]:
    from asn1crypto import x509 as ax
    from pyhanko_certvalidator import CertificateValidator, ValidationContext

    def a(c: x509.Certificate) -> ax.Certificate:
        return ax.Certificate.load(c.public_bytes(Encoding.DER))

    root, ca, leaves = a(pki.root), a(pki.ca), [a(c) for c in certs]

    async def judge_all() -> int:
        accepted = 0
        for leaf in leaves:
            context = ValidationContext(trust_roots=[root], other_certs=[ca], allow_fetching=False,
                                        revocation_mode="soft-fail", moment=NOW)
            try:
                await CertificateValidator(leaf, validation_context=context).async_validate_usage(set())
                accepted += 1
            except Exception:  # noqa: BLE001  # pyhanko's refusals are exceptions
                pass
        return accepted

    return lambda: asyncio.run(judge_all())


def openssl(pki: ForeignPKI, certs: list[x509.Certificate], work: Path) -> Callable[[], int] | None:
    binary = shutil.which("openssl")
    if binary is None:
        return None
    root, ca = pki.write_cas(work)
    files = [pki.write(work, f"leaf-{i}", c) for i, c in enumerate(certs)]
    args = [binary, "verify", "-attime", str(int(NOW.timestamp())), "-CAfile", str(root), "-untrusted", str(ca),
            *map(str, files)]

    def run() -> int:
        done = subprocess.run(args, capture_output=True, text=True, timeout=600, check=False)
        return done.stdout.count(": OK")
    return run


def import_time() -> float:
    probe = "import time\nstart = time.perf_counter()\nimport qtsp.relying_party\nprint(time.perf_counter() - start)\n"
    spans = [float(subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT,
                                  check=True).stdout) for _ in range(7)]
    return statistics.median(spans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="certificates per run (default 1000)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per row; the best counts (default 3)")
    parser.add_argument("--no-pkilint", action="store_true", help="leave out the pkilint row (the slow one)")
    args = parser.parse_args()
    pki = ForeignPKI()
    certs = certificates(pki, args.n)
    with tempfile.TemporaryDirectory() as tmp:
        rows: dict[str, Callable[[], int]] = {"qtsp validate (path + profile rules)": ours(pki, certs, pkilint=False)}
        if not args.no_pkilint:
            rows["qtsp validate + pkilint 0.13.3"] = ours(pki, certs, pkilint=True)
        rows["peer: pyhanko-certvalidator (path only)"] = pyhanko(pki, certs)
        verify = openssl(pki, certs, Path(tmp))
        if verify is not None:
            rows["peer: openssl verify, one process (path only)"] = verify
        for run in rows.values():  # warm-up: pkilint builds its validators, caches fill; not counted
            run()
        best: dict[str, float] = {label: float("inf") for label in rows}
        accepted: dict[str, int] = {}
        for _ in range(args.rounds):
            for label, run in rows.items():
                start = time.perf_counter()
                accepted[label] = run()
                best[label] = min(best[label], time.perf_counter() - start)
    peer = args.n / best["peer: pyhanko-certvalidator (path only)"]
    print(f"{args.n} distinct certificates, revocation off, one process, best of {args.rounds} "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"{'validator':48} {'cert/s':>8} {'accepted':>9} {'x pyhanko':>10}")
    for label, seconds in best.items():
        rate = args.n / seconds
        print(f"{label:48} {rate:8.0f} {accepted[label]:9d} {rate / peer:10.2f}")
    print(f"import qtsp.relying_party: {import_time():.3f} s (median of 7; target < 0.2 s)")
    print("accepted differs by design: the peers judge the path only, qtsp the PSD2 profile too "
          f"({len(VARIANTS)} of the specs are broken variants).")


if __name__ == "__main__":
    main()
