"""The export of signed audit heads: a JSON-lines file that is only ever appended to.

Opened ``O_APPEND`` (every write lands at the end, whatever another writer did), never through a
symbolic link, created 0600 in a 0700 directory; each head is one ``write`` of one line, then
``fsync``. Writers take an exclusive ``flock`` while they read the last line and append the next,
so two anchoring processes (the scheduler and ``qtsp audit anchor``) never fork the line chain.
Nothing here truncates, rewrites or renames the file.
"""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .. import files
from ..core.audit_anchor import MAX_LINE_BYTES, SignedHead, parse_line
from ..core.errors import Kind, QTSPError

MAX_EXPORT_BYTES = 256 * 1024 * 1024  # a head every 5 minutes is ~40 MB a year; far past that is not ours


def _why(exc: OSError) -> str:
    return "it is a symbolic link (never followed)" if exc.errno == errno.ELOOP else str(exc.strerror)


def _read_all(fd: int) -> bytes:
    size = os.fstat(fd).st_size
    if size > MAX_EXPORT_BYTES:
        raise QTSPError(Kind.INTEGRITY, f"the audit export is {size} bytes (at most {MAX_EXPORT_BYTES} are read)")
    chunks, offset = [], 0
    while offset < size:
        chunk = os.pread(fd, min(1 << 20, size - offset), offset)
        if not chunk:
            break
        chunks.append(chunk)
        offset += len(chunk)
    return b"".join(chunks)


def parse(data: bytes) -> tuple[list[SignedHead], list[tuple[int, str]]]:
    """The well-formed heads, and (line, why) for every line that is not one (a torn last line included)."""
    heads: list[SignedHead] = []
    bad: list[tuple[int, str]] = []
    lines = data.split(b"\n")
    torn = lines.pop()  # after the last newline: b"" unless the last write was cut short
    for number, raw in enumerate(lines, start=1):
        try:
            heads.append(parse_line(raw, number))
        except QTSPError as exc:
            bad.append((number, exc.detail))
    if torn:
        bad.append((len(lines) + 1, f"line {len(lines) + 1} of the export is cut short (no newline)"))
    return heads, bad


def read(path: Path) -> tuple[list[SignedHead], list[tuple[int, str]]] | None:
    """The export's heads and bad lines, or None when there is no export."""
    try:
        fd = files.open_read(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise QTSPError(Kind.STORAGE, f"cannot read the audit export {path}: {_why(exc)}") from None
    try:
        return parse(_read_all(fd))
    finally:
        os.close(fd)


class Appender:
    """The export held open and locked: ``last`` is its last head (None if empty), ``append`` adds one line."""

    def __init__(self, fd: int, path: Path) -> None:
        self.fd, self.path = fd, path
        heads, bad = parse(_read_all(fd))
        if bad:
            raise QTSPError(Kind.INTEGRITY, f"the audit export {path} does not parse ({bad[0][1]}); nothing was "
                            "appended (run 'qtsp audit verify')")
        self.count = len(heads)
        self.last = heads[-1] if heads else None

    def append(self, line: bytes) -> int:
        """Append one line (no newline in it); returns its line number."""
        if b"\n" in line or len(line) > MAX_LINE_BYTES:
            raise QTSPError(Kind.MALFORMED, "a signed head is one line of at most 4096 bytes")
        data = memoryview(line + b"\n")
        while data:
            written = os.write(self.fd, data)
            data = data[written:]
        os.fsync(self.fd)
        self.count += 1
        return self.count


@contextmanager
def appending(path: Path) -> Iterator[Appender]:
    try:
        files.ensure_dir(path.parent, private=True)
        fd = files.open_append(path)
    except OSError as exc:
        raise QTSPError(Kind.STORAGE, f"cannot open the audit export {path}: {_why(exc)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield Appender(fd, path)
    finally:
        os.close(fd)  # releases the lock
