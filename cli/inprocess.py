"""A relying-party ``Fetcher`` that asks this sandbox's own web application in process (Flask's test client)
instead of over the network: the same OCSP and CRL answers ``qtsp serve`` would give, for commands that judge
the sandbox's certificates without a server running (``qtsp scenarios matrix``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qtsp.core.errors import Kind, QTSPError
from qtsp.core.http import TIME_HEADER
from qtsp.relying_party import Fetcher


class InProcessFetcher(Fetcher):
    def __init__(self, data_dir: Path) -> None:
        from qtsp.web.app import create_app

        super().__init__()
        self._client: Any = create_app({"data_dir": str(data_dir)}).test_client()

    def fetch(self, url: str, *, body: bytes | None = None, content_type: str | None = None, limit: int) -> bytes:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise QTSPError(Kind.MALFORMED, f"not an http(s) URL: {url[:200]!r}")
        headers = {"Host": parts.netloc, "User-Agent": "qtsp-validate"}
        if content_type:
            headers["Content-Type"] = content_type
        if self.at is not None:
            headers[TIME_HEADER] = self.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        response = self._client.open(target, method="POST" if body is not None else "GET", data=body, headers=headers)
        if response.status_code != 200:
            raise QTSPError(Kind.NOT_FOUND, f"{url}: HTTP {response.status_code}")
        data: bytes = response.get_data()
        if len(data) > limit:
            raise QTSPError(Kind.MALFORMED, f"{url}: answer larger than {limit} bytes")
        return data
