"""A DNS server on 127.0.0.1 that knows one name: ``qtsp.localtest.me`` is 127.0.0.1.

nginx resolves the OCSP URL a certificate names through its own ``resolver`` (never /etc/hosts or
the system resolver) for ``ssl_ocsp`` and ``ssl_stapling``; pointing that resolver here lets it
reach the test server under the name the certificates carry, with no traffic leaving loopback.
A (IN) for that name: 127.0.0.1; anything else about it: no data; other names: NXDOMAIN.
"""

from __future__ import annotations

import socket
import struct
import threading

from support.loopback import HOST

_A, _IN = 1, 1


def _question(packet: bytes) -> tuple[str, int, int, int] | None:
    """(name, qtype, qclass, end of the question) of a query, or None if it is not one we read."""
    pos, labels = 12, []
    while pos < len(packet):
        length = packet[pos]
        if length == 0:
            pos += 1
            break
        if length & 0xC0 or pos + 1 + length > len(packet):
            return None
        labels.append(packet[pos + 1:pos + 1 + length].decode("ascii", "replace"))
        pos += 1 + length
    if pos + 4 > len(packet):
        return None
    qtype, qclass = struct.unpack("!HH", packet[pos:pos + 4])
    return ".".join(labels).lower(), qtype, qclass, pos + 4


def answer(query: bytes) -> bytes | None:
    if len(query) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", query[:6])
    parsed = _question(query) if qdcount == 1 else None
    if parsed is None:
        return struct.pack("!HHHHHH", ident, 0x8000 | (flags & 0x0100) | 1, 0, 0, 0, 0)  # FORMERR
    name, qtype, qclass, end = parsed
    question = query[12:end]
    ours = name.rstrip(".") == HOST
    rcode = 0 if ours else 3  # NXDOMAIN for every other name
    answers = b""
    if ours and qtype == _A and qclass == _IN:
        answers = struct.pack("!HHHIH", 0xC00C, _A, _IN, 60, 4) + socket.inet_aton("127.0.0.1")
    header = struct.pack("!HHHHHH", ident, 0x8400 | (flags & 0x0100) | 0x0080 | rcode, 1, 1 if answers else 0, 0, 0)
    return header + question + answers


class LoopbackDns:
    """``with LoopbackDns() as dns:`` then ``resolver 127.0.0.1:{dns.port}`` in nginx."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = int(self.sock.getsockname()[1])
        self.queries: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="loopback-dns", daemon=True)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                query, peer = self.sock.recvfrom(512)
            except TimeoutError:
                continue
            except OSError:
                return
            reply = answer(query)
            parsed = _question(query) if len(query) >= 12 else None
            if parsed is not None:
                self.queries.append(parsed[0])
            if reply is not None:
                self.sock.sendto(reply, peer)

    def __enter__(self) -> LoopbackDns:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()
