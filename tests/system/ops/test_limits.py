"""Resource limits, against `qtsp serve` as production runs it (granian, 2 workers, the limits set
in cli/commands_serve.py `_run_granian`), on loopback:

- slow clients that send their request head one byte per 100 ms do not hold up anyone else
  (OCSP keeps answering within a bound, more slow clients than there are Python threads), and the
  server cuts each of them off once the header timeout has passed;
- huge request heads (a 64 KiB header, hundreds of header fields, a 64 KiB request line; over
  HTTP/1.1 and HTTP/2 with prior knowledge) are refused with 4xx or a closed connection, while the
  longest legitimate request (an OCSP GET with 32 CertIDs) and a 16 KiB header still work;
- huge bodies to /ocsp, /api/v1 and /nca/v1 (a declared Content-Length of 10 MiB, or a chunked body
  of 1 MiB) get 413 without the body being buffered;
- 2000 idle TCP connections held open (fresh ones that never send a byte, and keep-alive ones after
  a request) do not stop the service from accepting: OCSP answers within a bound meanwhile;
- after each of these the service is alive (/healthz) and no worker died (same worker PIDs).
"""

from __future__ import annotations

import base64
import contextlib
import json
import resource
import select
import shutil
import socket
import struct
import threading
import time
import urllib.parse
from pathlib import Path
from collections.abc import Iterator

import pytest
from asn1crypto import ocsp as aocsp
from cryptography import x509
from cryptography.x509 import ocsp

from cli.commands_serve import HEAD_LIMIT, HEADER_TIMEOUT_MS
from qtsp.services import issuance, tokens
from qtsp.services.context import open_sandbox

from support.chaos import ORG, Http, Service, ocsp_request, parse_ocsp, rss_kib

OCSP_BOUND = 1.5  # seconds: the slowest OCSP answer allowed while the service is under attack
SLOW_CLIENTS = 64  # more than the Python threads (2 workers x 4) there are to block
IDLE_CONNECTIONS = 2000
KEEPALIVE_SHARE = 4  # one in four idle connections made a request first
IDLE_HOLD = 3.0


class Target:
    def __init__(self, service: Service, cert: x509.Certificate, issuer: x509.Certificate, token: str) -> None:
        self.service, self.cert, self.issuer, self.token = service, cert, issuer, token
        self.port = service.port
        self.workers = service.worker_pids()

    def connect(self, timeout: float = 10.0) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=timeout)

    def ocsp_once(self, method: str) -> float:
        """One OCSP request on a new connection (it must be accepted); its latency in seconds."""
        der = ocsp_request(self.cert, self.issuer)
        http = Http(self.service.url, timeout=30)
        started = time.monotonic()
        if method == "POST":
            status, _, body = http.request("POST", "/ocsp", der, {"Content-Type": "application/ocsp-request"})
        else:
            status, _, body = http.request("GET", "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
        elapsed = time.monotonic() - started
        http.close()
        assert status == 200, f"OCSP {method} answered HTTP {status}"
        assert parse_ocsp(body, self.cert.serial_number).status == "good"
        return elapsed

    def assert_healthy(self) -> None:
        status, _, body = Http(self.service.url, timeout=10).request("GET", "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok", f"/healthz answered {status} {body[:200]!r}"
        assert self.service.alive(), "qtsp serve exited"
        assert self.service.worker_pids() == self.workers, \
            f"a worker died and was respawned: {self.workers} -> {self.service.worker_pids()}"


@pytest.fixture(scope="module")
def target(_sandbox_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    data_dir = tmp_path_factory.mktemp("limits") / "qtsp-data"
    shutil.copytree(_sandbox_template, data_dir)
    sb = open_sandbox(data_dir)
    issued = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("limits.example.com",), generate_key="ecdsa-p256"))
    _, token = tokens.create(sb, "limits", "operator")
    sb.engine.dispose()
    service = Service(data_dir, workers=2, scheduler=False)
    service.start()
    try:
        yield Target(service, issued.certificate, issued.chain[0], token)
    finally:
        service.stop()


def readable(sock: socket.socket) -> bool:
    """Data or EOF waiting on ``sock`` (poll, not select: descriptors here go past 1024)."""
    poller = select.poll()
    poller.register(sock, select.POLLIN | select.POLLHUP | select.POLLERR)
    return bool(poller.poll(0))


def closed_by_peer(sock: socket.socket) -> bool:
    if not readable(sock):
        return False
    try:
        return sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""  # EOF, not the rest of an answer
    except BlockingIOError:
        return False
    except OSError:
        return True


def read_status(sock: socket.socket, timeout: float = 10.0) -> int | None:
    """The HTTP status of the first response on ``sock``, or None if the server closed it without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while b"\r\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, BrokenPipeError):
        pass
    if not data.startswith(b"HTTP/"):
        return None
    return int(data.split(b" ", 2)[1])


def probe_ocsp(target: Target, stop: threading.Event, latencies: list[float], errors: list[str]) -> None:
    n = 0
    while not stop.is_set():
        try:
            latencies.append(target.ocsp_once("POST" if n % 2 else "GET"))
        except Exception as exc:  # noqa: BLE001 - every failure is a finding
            errors.append(f"{type(exc).__name__}: {exc}")
        n += 1
        time.sleep(0.05)


@contextlib.contextmanager
def ocsp_prober(target: Target) -> Iterator[tuple[list[float], list[str]]]:
    latencies: list[float] = []
    errors: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(target=probe_ocsp, args=(target, stop, latencies, errors), daemon=True)
    thread.start()
    try:
        yield latencies, errors
    finally:
        stop.set()
        thread.join(timeout=60)


def assert_ocsp_kept_answering(what: str, latencies: list[float], errors: list[str], minimum: int) -> None:
    assert not errors, f"OCSP failed while {what}: {errors[:5]}"
    assert len(latencies) >= minimum, f"only {len(latencies)} OCSP answers while {what} (expected >= {minimum})"
    assert max(latencies) < OCSP_BOUND, f"OCSP took {max(latencies):.2f} s while {what} (bound {OCSP_BOUND} s)"


# --- slow clients ----------------------------------------------------------------------------------


def test_slow_clients_do_not_block_others_and_are_cut_off(target: Target) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 400 + b"\r\n\r\n"  # 45 s at 10 bytes/s
    timeout = HEADER_TIMEOUT_MS / 1000
    socks = [target.connect() for _ in range(SLOW_CLIENTS)]
    first_byte: dict[socket.socket, float] = {}
    cut_off: dict[socket.socket, float] = {}
    answered: list[int] = []
    position = 0
    started = time.monotonic()
    with ocsp_prober(target) as (latencies, errors):
        while len(cut_off) < len(socks) and time.monotonic() - started < timeout + 5:
            for sock in socks:
                if sock in cut_off:
                    continue
                try:
                    sock.send(head[position : position + 1])
                    first_byte.setdefault(sock, time.monotonic())
                except OSError:
                    cut_off[sock] = time.monotonic()
            for sock in [s for s in socks if s not in cut_off and readable(s)]:  # closed by the server (or answered)
                with contextlib.suppress(OSError):
                    data = sock.recv(4096)
                    if data.startswith(b"HTTP/"):
                        answered.append(int(data.split(b" ", 2)[1]))
                cut_off[sock] = time.monotonic()
            position += 1
            assert position < len(head), "a slow client finished its head: make it longer"
            time.sleep(0.1)
    for sock in socks:
        sock.close()
    held = [cut_off[s] - first_byte[s] for s in cut_off if s in first_byte]
    print(f"\n[limits] {SLOW_CLIENTS} slow clients (1 byte / 100 ms): cut off after {min(held):.1f}-{max(held):.1f} s "
          f"(header timeout {timeout:.0f} s); meanwhile {len(latencies)} OCSP answers, slowest {max(latencies) * 1000:.0f} ms")
    assert_ocsp_kept_answering("slow clients held connections", latencies, errors, 20)
    assert len(cut_off) == len(socks), f"{len(socks) - len(cut_off)} slow clients were never cut off (header timeout {timeout} s)"
    assert max(held) < timeout + 3, f"a slow client held its connection for {max(held):.1f} s"
    assert all(status == 408 or 400 <= status < 500 for status in answered), f"slow clients got {answered}"
    target.assert_healthy()


# --- huge heads ------------------------------------------------------------------------------------


def _h1_status(target: Target, head: bytes) -> int | None:
    with target.connect() as sock:
        # The server may refuse while we are still sending: then read what it said.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head)
        return read_status(sock)


def _hpack_int(value: int, prefix_bits: int) -> bytes:
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([value])
    out, value = [limit], value - limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    return bytes(out + [value])


def _h2_frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def _h2_get(target: Target, path: bytes, extra_header: bytes = b"") -> str:
    """A GET over cleartext HTTP/2 with prior knowledge; 'ok' for a 200 with a body, 'refused' for
    anything else (a 4xx, RST_STREAM, GOAWAY or a closed connection)."""
    block = b"\x82\x86" + b"\x04" + _hpack_int(len(path), 7) + path + b"\x01" + _hpack_int(9, 7) + b"127.0.0.1"
    if extra_header:  # a literal header field without indexing, new name (RFC 7541 6.2.2)
        block += b"\x00" + _hpack_int(5, 7) + b"x-big" + _hpack_int(len(extra_header), 7) + extra_header
    pieces = [block[i : i + 16384] for i in range(0, len(block), 16384)]  # SETTINGS_MAX_FRAME_SIZE default
    frames = _h2_frame(1, 0x1 | (0x4 if len(pieces) == 1 else 0), 1, pieces[0])  # HEADERS, END_STREAM
    for i, piece in enumerate(pieces[1:], 1):
        frames += _h2_frame(9, 0x4 if i == len(pieces) - 1 else 0, 1, piece)  # CONTINUATION
    with target.connect() as sock:
        try:
            sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0, b"") + frames)
        except (BrokenPipeError, ConnectionResetError):
            return "refused"
        buffer, status_ok, deadline = b"", False, time.monotonic() + 10
        sock.settimeout(1)
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except ConnectionResetError:
                return "refused"
            if not chunk:
                return "refused"
            buffer += chunk
            while len(buffer) >= 9 and len(buffer) >= 9 + int.from_bytes(buffer[:3], "big"):
                length, kind = int.from_bytes(buffer[:3], "big"), buffer[3]
                stream = int.from_bytes(buffer[5:9], "big") & 0x7FFFFFFF
                payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
                if kind == 1 and stream == 1:
                    status_ok = payload[:1] == b"\x88"  # indexed :status 200
                    if not status_ok:
                        return "refused"
                elif kind == 0 and stream == 1 and status_ok:
                    return "ok"
                elif kind in (3, 7):  # RST_STREAM, GOAWAY
                    return "refused"
        raise AssertionError("no HTTP/2 answer within 10 s")


def test_huge_heads_are_refused_and_normal_ones_pass(target: Target) -> None:
    big = 64 * 1024
    assert big > HEAD_LIMIT, "the test's huge header must exceed the configured limit"
    outcomes = {
        "64 KiB header": _h1_status(target, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * big + b"\r\n\r\n"),
        "1 MiB of headers": _h1_status(target, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                       + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 1000) for i in range(1024)) + b"\r\n"),
        "500 header fields": _h1_status(target, b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
                                        + b"".join(b"X-H%d: v\r\n" % i for i in range(500)) + b"\r\n"),
        "64 KiB request line": _h1_status(target, b"GET /ocsp/" + b"A" * big + b" HTTP/1.1\r\nHost: x\r\n\r\n"),
    }
    for what, status in outcomes.items():
        assert status is None or 400 <= status < 500, f"{what}: answered {status}, expected 4xx or a closed connection"
    assert _h2_get(target, b"/healthz") == "ok", "HTTP/2 with prior knowledge does not work at all: the next check would prove nothing"
    h2_big = _h2_get(target, b"/healthz", b"a" * big)
    assert h2_big == "refused", "a 64 KiB header over HTTP/2 was accepted"
    # What must still pass: a 16 KiB header, and the longest OCSP GET a client sends (32 CertIDs).
    assert _h1_status(target, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Ok: " + b"a" * 16384 + b"\r\n\r\n") == 200
    single = aocsp.OCSPRequest.load(ocsp_request(target.cert, target.issuer, sha256=True))
    tbs = single["tbs_request"]
    tbs["request_list"] = [tbs["request_list"][0]] * 32  # the most CertIDs the responder takes in one request
    der = aocsp.OCSPRequest({"tbs_request": tbs}).dump()
    status, _, body = Http(target.service.url).request("GET", "/ocsp/" + urllib.parse.quote(base64.b64encode(der).decode(), safe=""))
    assert status == 200 and ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    print(f"\n[limits] huge heads: {outcomes} (None: connection closed), HTTP/2 64 KiB header: {h2_big}; "
          f"a 16 KiB header and a {len(der)}-byte OCSP GET pass")
    target.assert_healthy()


# --- huge bodies -----------------------------------------------------------------------------------


def _post_huge(target: Target, path: str, ctype: str, auth: bool, chunked: bool) -> int | None:
    headers = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {ctype}\r\n"
    if auth:
        headers += f"Authorization: Bearer {target.token}\r\n"
    headers += "Transfer-Encoding: chunked\r\n\r\n" if chunked else f"Content-Length: {10 * 1024 * 1024}\r\n\r\n"
    with target.connect() as sock:
        try:
            sock.sendall(headers.encode())
            piece = b"a" * 65536
            for _ in range(16):  # 1 MiB; the server answers long before
                sock.sendall((b"%x\r\n%s\r\n" % (len(piece), piece)) if chunked else piece)
                if readable(sock):
                    break
        except (BrokenPipeError, ConnectionResetError):
            pass
        return read_status(sock)


def test_huge_bodies_get_413_without_being_buffered(target: Target) -> None:
    rss_before = sum(rss_kib(p) for p in target.workers)
    outcomes = {}
    for path, ctype, auth in (("/ocsp", "application/ocsp-request", False),
                              ("/api/v1/certificates", "application/json", True),
                              ("/nca/v1/authorisations", "application/jose", False),
                              ("/nca/v1/revocation-requests", "application/jose", False)):
        for chunked in (False, True):
            status = _post_huge(target, path, ctype, auth, chunked)
            outcomes[f"{path} {'chunked' if chunked else 'Content-Length 10 MiB'}"] = status
            assert status == 413, f"POST {path} with a huge {'chunked ' if chunked else ''}body: {status}, expected 413"
    # Without a token the API refuses before it reads anything.
    unauthenticated = _post_huge(target, "/api/v1/certificates", "application/json", False, False)
    assert unauthenticated is not None and 400 <= unauthenticated < 500
    growth = (sum(rss_kib(p) for p in target.workers) - rss_before) / 1024
    print(f"\n[limits] huge bodies: {outcomes}; unauthenticated API: {unauthenticated}; worker RSS growth {growth:.1f} MiB")
    assert growth < 32, f"the workers grew by {growth:.0f} MiB: bodies are being buffered"
    target.assert_healthy()


# --- idle connections ------------------------------------------------------------------------------


def _ensure_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        if hard != resource.RLIM_INFINITY and hard < needed:
            raise AssertionError(f"this test holds {needed} descriptors; the hard limit is {hard} (raise `ulimit -Hn`)")
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, hard))


def _worker_fd_limit(pid: int) -> int:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            value = line.split()[3]
            return 2**31 if value == "unlimited" else int(value)
    raise AssertionError(f"no open-files limit for {pid}")


def test_thousands_of_idle_connections_do_not_stop_ocsp(target: Target) -> None:
    _ensure_fd_limit(IDLE_CONNECTIONS + 512)
    limits = [_worker_fd_limit(p) for p in target.workers]
    assert min(limits) > IDLE_CONNECTIONS, f"the workers may open only {limits} descriptors"
    socks: list[socket.socket] = []
    try:
        for i in range(IDLE_CONNECTIONS):
            sock = target.connect()
            if i % KEEPALIVE_SHARE == 0:  # a keep-alive connection left idle after one request
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                assert read_status(sock) == 200, f"request on connection {i} of {IDLE_CONNECTIONS} was not answered"
            socks.append(sock)
        held = sum(len(list(Path(f"/proc/{p}/fd").iterdir())) for p in target.workers)
        with ocsp_prober(target) as (latencies, errors):
            time.sleep(IDLE_HOLD)
        still_open = sum(1 for sock in socks if not closed_by_peer(sock))
        print(f"\n[limits] {len(socks)} idle connections ({len(socks) // KEEPALIVE_SHARE} after a request), "
              f"{held} descriptors open in the workers; {len(latencies)} OCSP answers on new connections meanwhile, "
              f"slowest {max(latencies) * 1000:.0f} ms; {still_open} still open after {IDLE_HOLD:.0f} s")
        assert_ocsp_kept_answering(f"{IDLE_CONNECTIONS} idle connections were open", latencies, errors, 10)
    finally:
        for sock in socks:
            sock.close()
    target.assert_healthy()
