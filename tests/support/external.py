"""The external programs the system tests judge with: openssl, pkilint's command-line linters (in the
virtual environment's bin), each run with a timeout and its output captured. Missing ones fail the test
(never skip it), with the package that brings them."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent  # pkilint's lint_* commands are installed beside the interpreter


def find_openssl() -> str:
    path = shutil.which("openssl")
    assert path, "openssl missing: apt-get install openssl"
    return path


def run_tool(args: list[str], timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, **kwargs)


def output(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr
