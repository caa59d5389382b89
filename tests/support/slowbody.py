"""Slow request bodies against a loopback server, and an OCSP prober beside them.

Used by tests/system/ops/test_slow_bodies.py and benchmarks/slow_body.py.

- ``SlowBodies``: N connections that each send a complete POST head at once, then the body one byte
  per ``interval`` seconds (a body that would take minutes to finish). A connection the server cuts
  (EOF, reset, or an answer) is counted, with the status it got, and replaced by a new one, so N are
  held for as long as the block lasts. One thread, non-blocking sockets.
- ``probe``: requests from another client, one after the other on a new connection each (as a relying
  party that keeps no connection), with a per-request timeout; each latency, failures counted at the
  timeout.
"""

from __future__ import annotations

import contextlib
import http.client
import selectors
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from collections.abc import Iterator


@dataclass
class SlowStats:
    opened: int = 0
    cut: int = 0  # connections the server closed or answered before the body was complete
    statuses: dict[int, int] = field(default_factory=dict)  # HTTP status of an answer -> how many
    lifetimes: list[float] = field(default_factory=list)  # seconds from the head sent to the cut
    bytes_sent: int = 0


class SlowBodies:
    """Hold ``count`` slow-body POSTs to ``path`` on 127.0.0.1:``port`` until stopped (a context manager)."""

    def __init__(self, port: int, count: int = 40, *, path: str = "/ocsp", content_type: str = "application/ocsp-request",
                 declared: int = 300, interval: float = 1.0, host: str = "127.0.0.1") -> None:
        self.port, self.count, self.path, self.content_type = port, count, path, content_type
        self.declared, self.interval, self.host = declared, interval, host
        self.stats = SlowStats()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slow-bodies", daemon=True)
        self._head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
                      f"Content-Length: {declared}\r\n\r\n").encode()

    def __enter__(self) -> SlowBodies:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _open(self, selector: selectors.BaseSelector) -> None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=5)
            sock.sendall(self._head)
        except OSError:
            return  # counted as not opened; retried next tick
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, {"start": time.monotonic(), "sent": 0})
        self.stats.opened += 1

    def _cut(self, selector: selectors.BaseSelector, sock: socket.socket, data: bytes) -> None:
        info = selector.get_key(sock).data
        selector.unregister(sock)
        sock.close()
        self.stats.cut += 1
        self.stats.lifetimes.append(time.monotonic() - info["start"])
        if data.startswith(b"HTTP/"):
            with contextlib.suppress(ValueError, IndexError):
                status = int(data.split(b" ", 2)[1])
                self.stats.statuses[status] = self.stats.statuses.get(status, 0) + 1

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            next_tick = time.monotonic()
            while not self._stop.is_set():
                while len(selector.get_map()) < self.count and not self._stop.is_set():
                    before = len(selector.get_map())
                    self._open(selector)
                    if len(selector.get_map()) == before:
                        break
                for key, _ in selector.select(timeout=max(0.0, min(0.05, next_tick - time.monotonic()))):
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    try:
                        data = sock.recv(4096)
                    except BlockingIOError:
                        continue
                    except OSError:
                        data = b""
                    self._cut(selector, sock, data)
                if time.monotonic() >= next_tick:
                    next_tick += self.interval
                    for key in list(selector.get_map().values()):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        if key.data["sent"] >= self.declared - 1:  # never finish the body
                            continue
                        try:
                            sock.send(b"\x30")
                            key.data["sent"] += 1
                            self.stats.bytes_sent += 1
                        except OSError:
                            self._cut(selector, sock, b"")
            for key in list(selector.get_map().values()):
                key.fileobj.close()  # type: ignore[union-attr]


@dataclass
class Probe:
    latencies: list[float] = field(default_factory=list)  # seconds, failures counted at the timeout
    failures: list[str] = field(default_factory=list)

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]

    def summary(self) -> str:
        return (f"{len(self.latencies)} requests, p50 {self.percentile(50) * 1000:.1f} ms, "
                f"p99 {self.percentile(99) * 1000:.1f} ms, max {max(self.latencies, default=0) * 1000:.1f} ms, "
                f"{len(self.failures)} failed")


def request_once(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
                 timeout: float = 5.0, context: ssl.SSLContext | None = None) -> tuple[int, bytes]:
    """One request on a new connection (never through a proxy)."""
    conn: http.client.HTTPConnection
    if context is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def probe(port: int, path: str, duration: float, *, timeout: float = 3.0, pause: float = 0.02) -> Probe:
    """GET ``path`` again and again for ``duration`` seconds; a non-200 or a timeout is a failure."""
    result = Probe()
    end = time.monotonic() + duration
    while time.monotonic() < end:
        started = time.monotonic()
        try:
            status, _ = request_once(port, "GET", path, timeout=timeout)
            if status != 200:
                result.failures.append(f"HTTP {status}")
        except OSError as exc:
            result.failures.append(f"{type(exc).__name__}: {exc}")
        result.latencies.append(time.monotonic() - started)
        time.sleep(pause)
    return result


@contextlib.contextmanager
def attack(port: int, count: int, **kwargs: object) -> Iterator[SlowBodies]:
    with SlowBodies(port, count, **kwargs) as slow:  # type: ignore[arg-type]
        yield slow
