"""A sandbox served on 127.0.0.1 under the public name its certificates carry, for relying-party tests.

Certificates name ``http://qtsp.localtest.me:<port>/...`` for caIssuers, OCSP, CRLs and the Trusted
List, so the sandbox is initialised with that base_url and ``qtsp serve`` listens on 127.0.0.1:<port>.
Each relying party is pointed at 127.0.0.1 for that one name only, without touching /etc/hosts:
``patch_dns`` for in-process validators (pyhanko), ``jdk.net.hosts.file`` for Java, --connect-to for
``qtsp validate``; openssl gets files fetched from loopback. No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Iterator

import pytest

from qtsp.services.context import Sandbox
from qtsp.services.hierarchy import init_sandbox

from support.server import free_port, running_server

HOST = "qtsp.localtest.me"
QTSP_ENV = ("QTSP_DATA_DIR", "QTSP_DATABASE_URL", "QTSP_KEY_PASSPHRASE")
PROXY_ENV = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


@dataclass
class Served:
    sandbox: Sandbox
    data_dir: Path
    url: str  # where the server listens: http://127.0.0.1:<port>
    base: str  # what the certificates say: http://qtsp.localtest.me:<port>

    def local(self, public_url: str) -> str:
        """A URL from a certificate, rewritten to the loopback address it resolves to here."""
        assert public_url.startswith(self.base + "/"), f"{public_url} is not on {self.base}"
        return self.url + public_url[len(self.base):]


@contextlib.contextmanager
def served_sandbox(work: Path, config: str = "", *, workers: int = 1,
                   prepare: Callable[[Sandbox, Path], None] | None = None) -> Iterator[Served]:
    """A fresh sandbox in ``work`` (extra TOML ``config`` lines), ``prepare``d, then served until the block ends."""
    port = free_port()
    base = f"http://{HOST}:{port}"
    config_file = work / "qtsp-config.toml"
    config_file.write_text(f'base_url = "{base}"\n{config}')
    data_dir = work / "qtsp-data"
    with pytest.MonkeyPatch.context() as mp:
        for name in QTSP_ENV:
            mp.delenv(name, raising=False)
        sandbox = init_sandbox(data_dir, config_file=config_file)
        try:
            assert sandbox.config.base == base
            if prepare is not None:
                prepare(sandbox, data_dir)
            env = {k: v for k, v in os.environ.items() if k not in QTSP_ENV}
            with running_server(data_dir, workers=workers, port=port, env=env) as url:
                yield Served(sandbox, data_dir, url, base)
        finally:
            sandbox.engine.dispose()


def server_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in QTSP_ENV}


def patch_dns(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``qtsp.localtest.me`` resolves to 127.0.0.1 in this process; other names are untouched. Returns
    the list of lookups of that name, to show a validator really went to the network."""
    real = socket.getaddrinfo
    lookups: list[str] = []

    def getaddrinfo(host, port, *args, **kwargs):  # type: ignore[no-untyped-def]
        name = host.decode() if isinstance(host, bytes) else host
        if isinstance(name, str) and name.lower().rstrip(".") == HOST:
            lookups.append(f"{name}:{port}")
            host = "127.0.0.1"
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    for name in PROXY_ENV:
        monkeypatch.delenv(name, raising=False)
    return lookups
