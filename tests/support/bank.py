"""The demo bank (``qtsp bank serve``) on a free loopback port for a test, and the TPP's keys and TLS
contexts made from a scenario catalogue's files (tests/system/relying_party/test_bank*.py)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from qtsp.relying_party import tpp_client
from qtsp.relying_party.http_signatures import SealKey

from support import ROOT
from support.server import free_port


@dataclass
class Bank:
    port: int
    cert: Path  # its self-signed server certificate, for the client's --cacert
    log: Path

    @property
    def authority(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.authority}"


@contextlib.contextmanager
def running_bank(work: Path, args: Sequence[str], *, env: dict[str, str] | None = None, timeout: float = 30.0) -> Iterator[Bank]:
    """``qtsp bank serve`` with ``args`` until the block ends (SIGTERM, then a bounded wait)."""
    port = free_port()
    cert = work / f"bank-{port}.pem"
    log = work / f"bank-{port}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cli.main", "bank", "serve", "--port", str(port),
                                 "--tls-cert-out", str(cert), *args], stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=ROOT, env=env if env is not None else os.environ.copy())
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"qtsp bank serve exited early: {log.read_text()[-2000:]}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
                if cert.exists():
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"qtsp bank serve did not listen in time: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield Bank(port, cert, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
            raise AssertionError("qtsp bank serve did not stop on SIGTERM") from None
        assert code == 0, f"qtsp bank serve exited {code} on SIGTERM: {log.read_text()[-2000:]}"


def seal_key(cert_file: Path, key_file: Path) -> SealKey:
    key: Any = load_pem_private_key(key_file.read_bytes(), None)
    return SealKey.from_private_key(key, x509.load_pem_x509_certificate(cert_file.read_bytes()))


def tls_context(work: Path, cert_file: Path, key_file: Path, chain: Sequence[Path], bank: Bank) -> Any:
    """A client context presenting ``cert_file`` (and ``chain``) and trusting only the bank's certificate."""
    combined = work / f"client-{cert_file.stem}.pem"
    if not combined.exists():
        combined.write_bytes(cert_file.read_bytes() + b"".join(p.read_bytes() for p in chain))
    return tpp_client.client_context(certfile=str(combined), keyfile=str(key_file), cafile=str(bank.cert))
