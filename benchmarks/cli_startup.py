"""How long ``qtsp`` takes to start, next to a bare ``import click, cryptography.x509`` in the same run.

    .venv/bin/python benchmarks/cli_startup.py [--n 15] [--qtsp .venv/bin/qtsp]

Each command runs N times as a fresh process (what a user or a shell completion pays); the
figures are wall-clock per process, median, min and max, and the ratio of the median to the peer's
median. The peer is the floor any click CLI using cryptography pays on this machine, so the ratio
stays meaningful on a slow or busy machine where the absolute figures do not. Target (issue 13):
0.25 s for these commands. It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COMMANDS = (["--help"], ["--version"], ["issue", "--help"], ["certs", "--help"])


def timed(argv: list[str], n: int, env: dict[str, str]) -> list[float]:
    spans = []
    for _ in range(n):
        start = time.perf_counter()
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT, check=False)
        spans.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.decode(errors='replace')[:500]}")
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=15, help="runs per command (default 15)")
    parser.add_argument("--qtsp", type=Path, default=Path(sys.executable).parent / "qtsp",
                        help="the qtsp entry point (default: beside this interpreter)")
    args = parser.parse_args()
    if not args.qtsp.exists():
        raise SystemExit(f"{args.qtsp} not found: run 'make venv' first, or pass --qtsp")
    # The interpreter the entry point runs under (its shebang), so the peer pays the same start-up.
    python = args.qtsp.read_text(errors="replace").splitlines()[0].removeprefix("#!").strip() or sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith("QTSP_")}
    runs = [("peer: python -c 'import click, cryptography.x509'",
             [python, "-c", "import click, cryptography.x509"])]
    runs += [(f"qtsp {' '.join(c)}", [str(args.qtsp), *c]) for c in COMMANDS]
    for _, argv in runs:  # warm the OS page cache and the .pyc files; not counted
        timed(argv, 1, env)
    results = {label: timed(argv, args.n, env) for label, argv in runs}
    peer = statistics.median(results[runs[0][0]])
    print(f"{args.n} runs each, seconds per process (python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")
    print(f"{'command':52} {'median':>7} {'min':>7} {'max':>7} {'x peer':>7}")
    for label, spans in results.items():
        median = statistics.median(spans)
        print(f"{label:52} {median:7.3f} {min(spans):7.3f} {max(spans):7.3f} {median / peer:7.1f}")


if __name__ == "__main__":
    main()
