"""Start `qtsp serve` on a free loopback port for a test, and stop it afterwards."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from collections.abc import Iterator, Sequence

from support import ROOT


_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only, never via a proxy


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(data_dir: Path, *, workers: int = 1, scheduler: bool = False, timeout: float = 30.0,
                   port: int | None = None, env: dict[str, str] | None = None, extra: Sequence[str] = ()) -> Iterator[str]:
    """``qtsp serve`` (``extra``: more options) until the block ends; its output goes to data_dir/serve-<port>.log."""
    port = port or free_port()
    args = [sys.executable, "-m", "cli.main", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
            "--port", str(port), "--workers", str(workers), *extra]
    if not scheduler:
        args.append("--no-scheduler")
    log = open(data_dir / f"serve-{port}.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                            cwd=ROOT, env=env if env is not None else os.environ.copy())
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"qtsp serve exited early: {(data_dir / f'serve-{port}.log').read_text()[-2000:]}")
            try:
                with _NO_PROXY.open(url + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("qtsp serve did not become healthy in time")
            time.sleep(0.2)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        log.close()
