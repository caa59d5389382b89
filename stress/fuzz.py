"""The longer fuzz run of the harness: the suite's property-based fuzzers with many more cases.

    .venv/bin/python stress/fuzz.py [--examples 5000]

Runs the hypothesis fuzzers of the OCSP request parser, the OCSP endpoint, the REST API, the
NCA API and CSR / identifier intake (tests/test_hostile.py, tests/test_ocsp_parser.py) with
QTSP_FUZZ_EXAMPLES set, and schemathesis over the OpenAPI document; prints what ran and the result.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--examples", type=int, default=5000)
    args = parser.parse_args()
    env = dict(os.environ, QTSP_FUZZ_EXAMPLES=str(args.examples))
    targets = ["tests/test_hostile.py", "tests/test_ocsp_parser.py", "tests/test_schemathesis.py",
               "tests/test_ocsp.py::test_fuzz_ocsp_endpoint_never_fails", "tests/test_api.py"]
    start = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                             f"--hypothesis-seed={int(time.time())}", *targets], cwd=ROOT, env=env)
    print(f"fuzz run: {args.examples} examples per hypothesis fuzzer, {time.monotonic() - start:.0f} s, "
          f"{'no failure' if result.returncode == 0 else 'FAILURES (see above)'}")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
