"""What importing the relying-party package costs, next to a bare ``import cryptography.x509`` in the same run.

    .venv/bin/python benchmarks/relying_party_import.py [--n 15]

Each import runs N times in a fresh interpreter, the rows taking turns; the figure is the import alone (``time.perf_counter``
around the import statement, interpreter start-up excluded), median, min and max, and the ratio of
the median to the peer's. The peer is the floor: the validator parses certificates with cryptography,
so it cannot import for less. Target (issue 14): ``import qtsp.relying_party`` under 0.2 s. The
Trusted List reader (lxml + signxml) and the NCA client (joserfc) load on first use and are shown
apart. It prints figures; it asserts nothing (tests/unit/relying_party/test_purity.py keeps a
generous bound).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPORTS = (
    ("peer: import cryptography.x509", "import cryptography.x509"),
    ("import qtsp.relying_party", "import qtsp.relying_party"),
    ("+ the Trusted List reader", "from qtsp.relying_party import parse_and_verify_trusted_list"),
    ("+ the NCA client and joserfc", "import qtsp.relying_party.nca_client, joserfc.jws"),
)
PROBE = "import time\nstart = time.perf_counter()\n{statement}\nprint(time.perf_counter() - start)\n"


def timed(statement: str) -> float:
    done = subprocess.run([sys.executable, "-c", PROBE.format(statement=statement)], capture_output=True,
                          text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{statement!r} failed: {done.stderr[:500]}")
    return float(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15, help="runs per import (default 15)")
    args = parser.parse_args()
    for _, statement in IMPORTS:  # warm the OS page cache and the .pyc files; not counted
        timed(statement)
    results: dict[str, list[float]] = {label: [] for label, _ in IMPORTS}
    for _ in range(args.n):  # round robin: a busy moment on a shared machine hits every row alike
        for label, statement in IMPORTS:
            results[label].append(timed(statement))
    peer = statistics.median(results[IMPORTS[0][0]])
    print(f"{args.n} runs each, seconds of import (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"{'import':40} {'median':>7} {'min':>7} {'max':>7} {'x peer':>7}")
    for label, spans in results.items():
        median = statistics.median(spans)
        print(f"{label:40} {median:7.3f} {min(spans):7.3f} {max(spans):7.3f} {median / peer:7.1f}")


if __name__ == "__main__":
    main()
