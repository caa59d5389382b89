"""Logging for the service's processes (`qtsp serve`, its web workers, the scheduler): one level, one
format (text, or JSON with one object per line) on stderr, and the access log.

Settings come from ``--log-level``/``--log-format``/``--no-access-log`` or QTSP_LOG_LEVEL,
QTSP_LOG_FORMAT, QTSP_ACCESS_LOG; `qtsp serve` puts them in the environment, so the workers and the
scheduler it starts use the same ones.

No secret reaches a log line: access lines carry the path without its query string and never a
header; libraries that log request data at debug (SQL parameters, HTTP clients) stay at warning;
and every line passes through ``redact`` (bearer tokens, passwords, PEM private keys) in case an
exception message carries one.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.config
import multiprocessing.util
import os
import re
import sys
import threading
import time
import weakref
from collections import deque
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from collections.abc import Iterator, Mapping

from .core.errors import Kind, QTSPError

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}
FORMATS = ("text", "json")
LEVEL_ENV, FORMAT_ENV, ACCESS_LOG_ENV = "QTSP_LOG_LEVEL", "QTSP_LOG_FORMAT", "QTSP_ACCESS_LOG"
ACCESS_LOGGER = "qtsp.access"

# Libraries whose debug (or info) lines carry request data or fire every second: SQLAlchemy logs SQL
# with its parameters, urllib3/hvac the Vault calls, APScheduler every job run (each second), signxml
# whole documents.
QUIET = ("sqlalchemy", "urllib3", "hvac", "apscheduler", "alembic", "asyncio", "filelock", "signxml")

_TRUE, _FALSE = ("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off")  # as click reads flags

request_id: ContextVar[str | None] = ContextVar("qtsp_request_id", default=None)


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "text"
    access_log: bool = True

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise QTSPError(Kind.MALFORMED, f"log level {self.level!r}: one of {', '.join(LEVELS)}")
        if self.format not in FORMATS:
            raise QTSPError(Kind.MALFORMED, f"log format {self.format!r}: one of {', '.join(FORMATS)}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LogSettings:
        """The settings in QTSP_LOG_LEVEL, QTSP_LOG_FORMAT, QTSP_ACCESS_LOG (unset or empty: the default)."""
        access = environ.get(ACCESS_LOG_ENV, "").strip().lower() or "1"
        if access not in _TRUE + _FALSE:
            raise QTSPError(Kind.MALFORMED, f"{ACCESS_LOG_ENV}={access!r}: 1 or 0")
        return cls(environ.get(LEVEL_ENV, "").strip().lower() or "info",
                   environ.get(FORMAT_ENV, "").strip().lower() or "text",
                   access in _TRUE)

    def to_env(self) -> dict[str, str]:
        return {LEVEL_ENV: self.level, FORMAT_ENV: self.format, ACCESS_LOG_ENV: "1" if self.access_log else "0"}


# --- redaction --------------------------------------------------------------------------------

_SECRETS = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)"
    r"|(?P<scheme>(?i:\b(?:bearer|basic)\s+))[A-Za-z0-9._~+/=-]+"
    r"|\bqtsp_[A-Za-z0-9_-]{8,}"
    r"|(?P<flag>--[a-z0-9-]*(?:password|passphrase|token|secret)(?:=|\s+))\S+"
    r"|(?P<key>(?i:(?<![A-Za-z0-9])(?:password|passphrase|passwd|secret|token|authorization)[\"']?\s*[:=]\s*))"
    r"(?:(?i:bearer|basic)\s+)?(?:\"[^\"]*\"|'[^']*'|[^\s,;&\"']+)",
    re.DOTALL,
)
_MAYBE_SECRET = re.compile(r"(?i)PRIVATE KEY|bearer|basic|qtsp_|pass|secret|token|authorization")


def redact(text: str) -> str:
    """The text with anything that looks like a secret replaced (one cheap search when there is none)."""
    if not _MAYBE_SECRET.search(text):
        return text
    return _SECRETS.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    if match.group(0).startswith("-----"):
        return "[private key redacted]"
    return (match.group("scheme") or match.group("flag") or match.group("key") or "") + "[redacted]"


# --- formatters -------------------------------------------------------------------------------


class _Clock:
    """``2026-05-01T10:00:00.123Z`` for a time.time() value; formatted once a millisecond at most (under
    load, many access lines share one)."""

    def __init__(self) -> None:
        self._ms = -1
        self._text = ""

    def iso(self, now: float) -> str:
        ms = int(now * 1000)
        if ms != self._ms:
            second, frac = divmod(ms, 1000)
            self._text = f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(second))}.{frac:03d}Z"
            self._ms = ms
        return self._text


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger> <message> [request_id=<id>]``, exceptions on the lines after."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        message = redact(record.getMessage())
        if "\n" in message or "\r" in message:  # one record, one line: a request path cannot forge another
            message = message.replace("\r", "\\r").replace("\n", "\\n")
        line = f"{self._clock.iso(record.created)} {record.levelname} {record.name} {message}"
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            line += f" request_id={rid}"
        if record.exc_info:
            line += "\n" + redact(self.formatException(record.exc_info))
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and exc (a traceback)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clock = _Clock()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {"time": self._clock.iso(record.created), "level": record.levelname.lower(),
                                 "logger": record.name, "message": redact(record.getMessage())}
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def dict_config(settings: LogSettings) -> dict[str, Any]:
    """A logging.config.dictConfig for these settings: granian and gunicorn apply it in every worker."""
    level = LEVELS[settings.level]
    quiet = logging.getLevelName(max(level, logging.WARNING))
    formatter = JsonFormatter if settings.format == "json" else TextFormatter
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"qtsp": {"()": f"{formatter.__module__}.{formatter.__qualname__}"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "qtsp", "stream": "ext://sys.stderr"}},
        "root": {"level": logging.getLevelName(level), "handlers": ["stderr"]},
        "loggers": {
            **{name: {"level": quiet, "handlers": [], "propagate": True} for name in QUIET},
            "qtsp.serve": {"level": "INFO", "handlers": [], "propagate": True},  # where it serves: always said
            # granian and gunicorn: their own lines through ours; their access logs stay off (ours covers them)
            "_granian": {"level": logging.getLevelName(level), "handlers": [], "propagate": True},
            "granian.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
            "gunicorn.error": {"level": logging.getLevelName(level), "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def configure(settings: LogSettings) -> None:
    logging.config.dictConfig(dict_config(settings))


# --- access lines -----------------------------------------------------------------------------

MAX_LOGGED_PATH = 512  # an OCSP GET path can be 22 KiB; the head of it is enough to find the request
# A path logged as it is: printable ASCII without space, quote or backslash (safe in text and inside a
# JSON string), not too long. Anything else goes through safe_path.
_PLAIN_PATH = re.compile(rf"[!#-\[\]-~]{{0,{MAX_LOGGED_PATH}}}").fullmatch


def safe_path(path: str) -> str:
    """The path as one line of printable ASCII, bounded, with a token in it redacted."""
    if len(path) > MAX_LOGGED_PATH:
        path = f"{path[:MAX_LOGGED_PATH]}...(+{len(path) - MAX_LOGGED_PATH})"
    if not (path.isascii() and path.isprintable()) or " " in path or '"' in path or "\\" in path:
        path = path.encode("unicode_escape").decode("ascii").replace(" ", "\\x20").replace('"', "\\x22")
    if "qtsp_" in path:
        path = _SECRETS.sub("[redacted]", path)
    return path


class AccessLog:
    """Access lines: the request path only queues its fields; a thread formats and writes them.

    Through logging a line costs ~9 us (a LogRecord, handler locks) on the request path, and even a
    line formatted by hand and written by its own os.write costs ~2.5 us there; the OCSP fast path
    answers in ~3 us of Python. So a request appends one tuple to a deque (thread-safe, ~0.2 us), and
    every FLUSH_SECONDS, and at exit, this process's flusher formats the queued lines (text or JSON,
    as the other log lines) and writes them with os.write calls of at most PIPE_BUF bytes (never
    interleaved with another worker's writes on a pipe). A worker killed outright loses at most that
    last fraction of a second of access lines."""

    FLUSH_SECONDS = 0.1
    CHUNK = 4096  # PIPE_BUF on Linux: a write up to this size to a pipe is atomic

    def __init__(self, settings: LogSettings, fd: int | None = None) -> None:
        self.json = settings.format == "json"
        self.fd = _stderr_fd() if fd is None else fd
        self._pending: deque[tuple[float, str, str, str, float, str]] = deque()
        self._lock = threading.Lock()  # one flush at a time
        self._flushing = False  # the flusher thread runs in this process
        self._clock = _Clock()
        forked = weakref.WeakMethod(self._forked)
        os.register_at_fork(after_in_child=lambda: (method := forked()) is not None and method())

    def write(self, method: str, path: str, status: str, duration_ms: float, rid: str) -> None:
        """Queue one line (``status``: the WSGI status line, "200 OK")."""
        self._pending.append((time.time(), method, path, status, duration_ms, rid))
        if not self._flushing:
            self._start_flusher()

    def line(self, method: str, path: str, status: int, duration_ms: float, rid: str, now: float) -> str:
        logged = safe_path(path)
        if not (method.isascii() and method.isalpha()):
            method = safe_path(method)
        if self.json:
            # A path safe_path left alone is printable and holds no quote or backslash: valid inside a JSON
            # string as it is. The few others go through json.dumps.
            text = logged if logged is path else json.dumps(logged)[1:-1]
            method = method if method.isalpha() else json.dumps(method)[1:-1]
            return (f'{{"time": "{self._clock.iso(now)}", "level": "info", "logger": "{ACCESS_LOGGER}", '
                    f'"message": "{method} {text} {status} {duration_ms:.2f}ms", "method": "{method}", '
                    f'"path": "{text}", "status": {status}, "duration_ms": {duration_ms:.3f}, "request_id": "{rid}"}}\n')
        return f"{self._clock.iso(now)} INFO {ACCESS_LOGGER} {method} {logged} {status} {duration_ms:.2f}ms request_id={rid}\n"

    def flush(self) -> None:
        with self._lock:
            pending = self._pending
            take = pending.popleft
            batch = [take() for _ in range(len(pending))]  # what is queued now; later lines wait for the next flush
            chunk: list[str] = []
            size = 0
            for text in self._format(batch):
                if size + len(text) > self.CHUNK:  # characters = bytes: lines are ASCII (safe_path)
                    self._write("".join(chunk).encode())
                    chunk, size = [], 0
                chunk.append(text)
                size += len(text)
            if chunk:
                self._write("".join(chunk).encode())

    def _format(self, batch: list[tuple[float, str, str, str, float, str]]) -> Iterator[str]:
        """The lines, in one tight loop: this runs for every request the service answers."""
        iso, plain, slow = self._clock.iso, _PLAIN_PATH, self._slow_line
        if self.json:
            for now, method, path, status, ms, rid in batch:
                if plain(path) is None or not (method.isascii() and method.isalpha()) or "qtsp_" in path \
                        or not status[:3].isdigit():
                    yield slow(now, method, path, status, ms, rid)
                    continue
                yield (f'{{"time": "{iso(now)}", "level": "info", "logger": "{ACCESS_LOGGER}", '
                       f'"message": "{method} {path} {status[:3]} {ms:.2f}ms", "method": "{method}", "path": "{path}", '
                       f'"status": {status[:3]}, "duration_ms": {ms:.3f}, "request_id": "{rid}"}}\n')
        else:
            for now, method, path, status, ms, rid in batch:
                if plain(path) is None or not (method.isascii() and method.isalpha()) or "qtsp_" in path \
                        or not status[:3].isdigit():
                    yield slow(now, method, path, status, ms, rid)
                    continue
                yield f"{iso(now)} INFO {ACCESS_LOGGER} {method} {path} {status[:3]} {ms:.2f}ms request_id={rid}\n"

    def _slow_line(self, now: float, method: str, path: str, status: str, ms: float, rid: str) -> str:
        """A path or method that needs escaping, cutting or redacting."""
        try:
            code = int(status[:3])
        except ValueError:
            code = 0
        return self.line(method, path, code, ms, rid, now)

    def _write(self, data: bytes) -> None:
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            pass  # a closed or broken stderr must not stop the service

    def _forked(self) -> None:
        """In a new worker: none of the parent's lines (it writes them), no flusher thread yet."""
        self._lock = threading.Lock()
        self._pending, self._flushing = deque(), False

    def _start_flusher(self) -> None:
        with self._lock:
            if self._flushing:
                return
            self._flushing = True
        threading.Thread(target=self._flush_every, name="qtsp-access-log", daemon=True).start()
        # granian's workers are multiprocessing children, which leave by os._exit after running these
        # finalizers (not atexit); gunicorn's leave by sys.exit, which runs atexit.
        multiprocessing.util.Finalize(self, self.flush, exitpriority=10)
        atexit.register(self.flush)

    def _flush_every(self) -> None:
        while True:
            time.sleep(self.FLUSH_SECONDS)
            self.flush()


def _stderr_fd() -> int:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by an object without a descriptor
        return 2
