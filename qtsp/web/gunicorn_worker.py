"""gunicorn's gthread worker, made to give a thread only to a request that has fully arrived.

Why (issue 15, finding 1): gthread's main loop accepts a connection and hands it to the thread pool as
soon as a byte can be read; the thread then reads the head and, when the app asks, the body from a
blocking socket with no deadline. Nine clients sending a body at a byte per second held all eight
threads of two workers, and OCSP stopped for everyone.

Here the main loop (non-blocking sockets on gunicorn's own selector) buffers each request, head and
body, before the pool sees it:

- the head must be complete within HEADER_TIMEOUT of the connection (or of the previous answer on a
  kept-alive one) and be at most HEAD_LIMIT bytes: 408 / 431 otherwise;
- the body, framed by Content-Length or chunked encoding, must be complete within the path's deadline
  and bound (``qtsp.web.limits.body_limits``: OCSP 16 KiB within 2 s, the rest 256 KiB within 10 s):
  408 / 413 otherwise, sent from the main loop, the connection closed;
- TLS (``qtsp serve --tls-cert``) is handshaken here too, non-blocking, within the head's deadline.

Then the bytes go into the connection's parser as read-ahead and the thread parses them without
touching the socket. The same framing as granian's front (``qtsp.web.front``), for the other server.
"""

from __future__ import annotations

import re
import selectors
import socket
import ssl
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gsock
from gunicorn.workers.gthread import ThreadWorker

from .limits import HEAD_LIMIT, HEADER_TIMEOUT, body_limits, refusal

_MORE = 0  # framing verdicts besides an HTTP status to refuse with
_COMPLETE = 1
_CHUNK_SIZE = re.compile(rb"[0-9A-Fa-f]{1,8}(?:;[^\r\n]*)?")
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large", 431: "Request Header Fields Too Large"}


@dataclass
class _Pending:
    buf: bytearray
    deadline: float
    handshaking: bool = False
    head_end: int | None = None
    needed: int | None = None  # total bytes when the body has a Content-Length
    chunked: bool = False
    max_body: int = 0
    sent_continue: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class BufferedThreadWorker(ThreadWorker):  # type: ignore[misc, unused-ignore]  # gunicorn ships no types: subclassing Any
    """``worker_class`` for `qtsp serve --server gunicorn`."""

    def init_process(self) -> None:
        self.buffering: dict[Any, _Pending] = {}
        self.tls_context = gsock.ssl_context(self.cfg) if self.cfg.is_ssl else None
        super().init_process()

    # --- every path into the pool goes through the buffer first ------------------------------------

    def enqueue_req(self, conn: Any) -> None:
        if getattr(conn, "qtsp_complete", False):
            conn.qtsp_complete = False
            super().enqueue_req(conn)
            return
        conn.sock.setblocking(False)
        leftover = conn.parser.unreader.take_buffered() if conn.parser is not None else b""
        state = _Pending(bytearray(leftover), time.monotonic() + HEADER_TIMEOUT)
        if self.tls_context is not None and not isinstance(conn.sock, ssl.SSLSocket):
            conn.sock = self.tls_context.wrap_socket(conn.sock, server_side=True, do_handshake_on_connect=False,
                                                     suppress_ragged_eofs=self.cfg.suppress_ragged_eofs)
            state.handshaking = True
        self.buffering[conn] = state
        if leftover and self._advance(conn, state):
            return
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._on_readable, conn))

    def _on_readable(self, conn: Any, _fileobj: Any) -> None:
        state = self.buffering.get(conn)
        if state is None:
            return
        try:
            if state.handshaking:
                conn.sock.do_handshake()
                state.handshaking = False
            received = self._receive(conn.sock, state)
        except (ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (OSError, ValueError):
            self._drop(conn)
            return
        if received == 0:  # the client closed before its request was complete
            self._drop(conn)
            return
        self._advance(conn, state)

    @staticmethod
    def _receive(sock: socket.socket, state: _Pending) -> int | None:
        """Bytes read into the buffer: None if nothing was ready, 0 at end of stream."""
        total: int | None = None
        while True:
            try:
                data = sock.recv(65536)
            except (BlockingIOError, ssl.SSLWantReadError):
                return total
            if not data:
                return total if total else 0
            state.buf += data
            total = (total or 0) + len(data)
            if len(state.buf) > HEAD_LIMIT + 2 * state.max_body + 65536:  # framing decides; this only bounds memory
                return total
            if not isinstance(sock, ssl.SSLSocket) or not sock.pending():
                if len(data) < 65536:
                    return total

    def _advance(self, conn: Any, state: _Pending) -> bool:
        """Hand the request to the pool when complete, refuse it when it cannot be; True when either happened."""
        verdict = _frame(state)
        if verdict == _MORE:
            if state.head_end is not None and not state.sent_continue and state.extra.get("expect_continue"):
                state.sent_continue = True
                self._send_quietly(conn, _CONTINUE)  # the client waits for it before sending its body
            return False
        self._forget(conn)
        if verdict == _COMPLETE:
            if conn.parser is None:
                conn.parser = http.get_parser(self.cfg, conn.sock, conn.client)
            conn.parser.unreader.unread(bytes(state.buf))
            conn.data_ready = True
            conn.qtsp_complete = True
            self.enqueue_req(conn)
        else:
            self._refuse(conn, state, verdict)
        return True

    @staticmethod
    def _send_quietly(conn: Any, data: bytes) -> None:
        try:
            conn.sock.send(data)  # small; on a non-blocking socket, what does not fit now is dropped
        except (OSError, ValueError):
            pass

    def _forget(self, conn: Any) -> None:
        self.buffering.pop(conn, None)
        try:
            self.poller.unregister(conn.sock)
        except (KeyError, ValueError, OSError):
            pass

    def _drop(self, conn: Any) -> None:
        self._forget(conn)
        self.nr_conns -= 1
        conn.close()

    def _refuse(self, conn: Any, state: _Pending, status: int) -> None:
        """Answer from the main loop and close (sent without blocking: what does not fit at once is lost)."""
        self.log.info("refused a request from %s before dispatch: HTTP %d", conn.client, status)
        body, headers = refusal(status, state.max_body) if state.max_body else refusal(status)
        head = f"HTTP/1.1 {status} {_REASONS[status]}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n"
        self._send_quietly(conn, head.encode() + body)
        self.nr_conns -= 1
        conn.close()

    def murder_pending(self) -> None:
        """Every turn of the main loop (at least once a second): also cut requests past their deadline."""
        super().murder_pending()
        now = time.monotonic()
        for conn, state in [(c, s) for c, s in self.buffering.items() if s.deadline <= now]:
            self._forget(conn)
            if state.buf and not state.handshaking:
                self._refuse(conn, state, 408)
            else:  # nothing sent: closed as an idle connection is
                self.nr_conns -= 1
                conn.close()


def _frame(state: _Pending) -> int:
    """_MORE, _COMPLETE, or the HTTP status to refuse the request with."""
    buf = state.buf
    if state.head_end is None:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            return 431 if len(buf) > HEAD_LIMIT else _MORE
        if end + 4 > HEAD_LIMIT:
            return 431
        state.head_end = end + 4
        verdict = _read_head(state, bytes(buf[:end]))
        if verdict != _MORE:
            return verdict
    assert state.head_end is not None
    if state.chunked:
        return _chunked(buf, state.head_end, state.max_body)
    assert state.needed is not None
    return _COMPLETE if len(buf) >= state.needed else _MORE


def _read_head(state: _Pending, head: bytes) -> int:
    """Take the framing from a complete head; the parser in the thread checks everything else."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    target = parts[1] if len(parts) == 3 else b"/"
    path = target.split(b"?", 1)[0].decode("latin-1")
    lengths: set[bytes] = set()
    encodings: list[bytes] = []
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            lengths.add(value)
        elif name == b"transfer-encoding":
            encodings.append(value.lower())
        elif name == b"expect" and value.lower() == b"100-continue":
            state.extra["expect_continue"] = True
    state.max_body, deadline = body_limits(path)
    assert state.head_end is not None
    if encodings:
        if lengths or encodings[-1].split(b",")[-1].strip() != b"chunked":
            return _COMPLETE  # a framing the parser refuses (RFC 9112 6.1): let it say so, reading nothing more
        state.chunked = True
    elif lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            return _COMPLETE  # ditto: refused by the parser without reading the body
        length = int(next(iter(lengths)))
        if length > state.max_body:
            return 413
        state.needed = state.head_end + length
    else:
        state.needed = state.head_end
    state.deadline = time.monotonic() + deadline
    return _MORE


def _chunked(buf: bytearray, start: int, max_body: int) -> int:
    """Whether a chunked body (RFC 9112 7.1) is complete in ``buf`` from ``start``; strict, so that
    the parser in the thread never needs a byte more than what is here."""
    pos, total = start, 0
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return 400 if len(buf) - pos > 1024 else _MORE
        line = bytes(buf[pos:eol])
        if not _CHUNK_SIZE.fullmatch(line):
            return 400
        size = int(line.split(b";", 1)[0], 16)
        total += size
        if total > max_body:
            return 413
        if size == 0:
            trailer = eol + 2
            while True:
                end = buf.find(b"\r\n", trailer)
                if end < 0:
                    return 431 if len(buf) - trailer > HEAD_LIMIT else _MORE
                if end == trailer:
                    return _COMPLETE
                trailer = end + 2
        pos = eol + 2 + size + 2
        if len(buf) < pos:
            return _MORE
        if buf[pos - 2 : pos] != b"\r\n":
            return 400

