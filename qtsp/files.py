"""Every file qtsp writes, one way (and ``tests/unit/test_files.py`` refuses any other in the source).

- A file written on a user's behalf (``--out``, key files, transcripts, shares, exports) is created
  with O_CREAT|O_EXCL|O_NOFOLLOW: an existing file, or a symlink planted where the file will go, is
  refused with a clear error and left as it was, even when it appears after a friendly early check
  (a check followed by a plain write follows a symlink planted in between: the "Low" finding of
  issue 15). Private files are 0600 whatever the umask, from the first byte.
- A data-dir file that is rewritten (the CA certificates AIA serves) goes to a new temporary name in
  the same directory and is renamed over the old one: rename replaces a symlink, never follows it.
- A directory written into must be a real directory of this user: a symlink or another user's
  directory planted at a name in /tmp would let its owner swap the files after they are written.
- The data directory is 0700 and its database and configuration 0600, tightened (with a warning)
  when they were looser: the database holds the token hashes and the NCA credentials, the
  configuration the Vault address (``secure_data_dir`` in ``qtsp/services/context.py``).

Only the standard library and ``core.errors``: the signers, the services, the ceremonies and the
CLI all write through here.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import stat
from pathlib import Path
from typing import IO

from .core.errors import Kind, QTSPError

log = logging.getLogger("qtsp.files")

PUBLIC, PRIVATE, PRIVATE_DIR, PUBLIC_DIR = 0o644, 0o600, 0o700, 0o755
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NEW = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | _CLOEXEC


def create_new(path: Path, *, private: bool = False, mode: int | None = None) -> int:
    """Create ``path`` (0600 if private, else 0644 less the umask) and return its descriptor.

    Refuses, touching nothing, if anything is at ``path``: a file, a directory, a symlink (dangling
    or not)."""
    mode = mode if mode is not None else (PRIVATE if private else PUBLIC)
    try:
        fd = os.open(path, _NEW, mode)
    except (FileExistsError, IsADirectoryError):
        if os.path.islink(path):
            raise QTSPError(Kind.CONFLICT, f"refusing to overwrite {path}: it is a symlink (never followed)") from None
        raise QTSPError(Kind.CONFLICT, f"refusing to overwrite {path}: it exists") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP or os.path.islink(path):  # O_NOFOLLOW's answer on some systems
            raise QTSPError(Kind.CONFLICT, f"refusing to overwrite {path}: it is a symlink (never followed)") from None
        raise
    if private:
        os.fchmod(fd, mode)  # exactly this mode, whatever the umask (which can only remove bits)
    return fd


def write_new(path: Path, data: bytes, *, private: bool = False, mode: int | None = None, sync: bool = False) -> Path:
    """Write a new file; on a failed write, remove what was half written (it is ours)."""
    fd = create_new(path, private=private, mode=mode)
    ours = os.fstat(fd)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if sync:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        remove_ours(path, ours)
        raise
    return path


def replace(path: Path, data: bytes, *, private: bool = False) -> Path:
    """Write ``path`` whole, new or not: a new temporary name in the same directory, then a rename.

    For files of the data directory that are rewritten; a reader sees the old bytes or the new ones,
    and a symlink at ``path`` is replaced, not followed."""
    temp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    write_new(temp, data, private=private, sync=True)
    try:
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def remove_ours(path: Path, ours: os.stat_result) -> None:
    """Remove ``path`` only if it is still the file this process created (not one swapped in since)."""
    try:
        now = os.stat(path, follow_symlinks=False)
    except FileNotFoundError:
        return
    if (now.st_dev, now.st_ino) == (ours.st_dev, ours.st_ino):
        path.unlink(missing_ok=True)


def ensure_dir(path: Path, *, private: bool = False, own: bool = True) -> list[Path]:
    """Make ``path`` (0700 if private) and its missing parents; return those made (deepest last), for
    the caller to undo.

    With ``own``, an existing ``path`` must be a directory of this user, not a symlink: whoever owns
    the directory files go into can swap them after they are written. (The data directory may be a
    symlink an operator made: ``own=False``, and ``tighten_dir`` makes it 0700.)"""
    missing = []
    probe = path
    while not os.path.lexists(probe):
        missing.append(probe)
        probe = probe.parent
    made = []
    try:
        for directory in reversed(missing):
            try:
                os.mkdir(directory, PRIVATE_DIR if private and directory == path else PUBLIC_DIR)
            except FileExistsError:  # made meanwhile by someone else: checked below, not ours to remove
                continue
            made.append(directory)
        if own:
            check_own_dir(path)
        elif not path.is_dir():
            raise NotADirectoryError(errno.ENOTDIR, "not a directory", str(path))
    except BaseException:
        remove_dirs(made)
        raise
    return made


def check_own_dir(path: Path) -> None:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise QTSPError(Kind.STORAGE, f"{path} is gone") from None
    if stat.S_ISLNK(info.st_mode):
        raise QTSPError(Kind.CONFLICT, f"refusing to write into {path}: it is a symlink (name the directory "
                        f"it points to: {os.path.realpath(path)})")
    if not stat.S_ISDIR(info.st_mode):
        raise QTSPError(Kind.CONFLICT, f"refusing to write into {path}: it is not a directory")
    if info.st_uid not in (os.geteuid(), 0):  # root's directories are trusted as the system's
        raise QTSPError(Kind.CONFLICT, f"refusing to write into {path}: it belongs to another user "
                        f"(uid {info.st_uid}), who could replace what is written there")


def remove_dirs(made: list[Path]) -> None:
    """Remove the directories ``ensure_dir`` made, deepest first, stopping at one that is not empty."""
    for directory in reversed(made):
        try:
            directory.rmdir()
        except OSError:  # not empty any more: someone else's files now; keep them
            break


def open_shared(path: Path) -> int:
    """A file of the data directory several processes share (a lock, a mapped counter): created 0600
    if missing, never through a symlink (OSError ELOOP); a read-write descriptor."""
    return os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | _CLOEXEC, PRIVATE)


def open_append(path: Path) -> int:
    """A file only ever appended to (an export): created 0600 if missing, O_APPEND, never through a
    symlink; a read-write descriptor (the caller reads what is there before it appends)."""
    return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | _CLOEXEC, PRIVATE)


def open_read(path: Path) -> int:
    """A read-only descriptor, never through a symlink (OSError ELOOP); FileNotFoundError if missing."""
    return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC)


def open_lock(path: Path) -> IO[bytes]:
    """``open_shared`` as a file object, for ``fcntl.flock``."""
    return os.fdopen(open_shared(path), "r+b")


def tighten_dir(path: Path) -> None:
    """The directory ``path`` (already there) readable by its owner only: 0700; a warning if it was looser."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        os.chmod(path, PRIVATE_DIR)
        log.warning("%s was mode %04o, open to other users; now 0700", path, mode)


_O_PATH = getattr(os, "O_PATH", 0)


def _tighten_in_place(path: Path) -> None:
    """``private_file`` on a file that exists, through an O_PATH descriptor: closing it does not drop the
    process's POSIX locks on the file (Linux skips lock removal for O_PATH files), where closing an ordinary
    descriptor drops *all* of them. That matters for SQLite's database and -shm files: a sandbox opened a
    second time in a process used to release the first one's locks here, after which another process took
    itself for the database's only user and the first one's later writes went unseen by it."""
    try:
        fd = os.open(path, _O_PATH | os.O_NOFOLLOW | _CLOEXEC)  # a symlink is opened as the link itself
    except FileNotFoundError:  # gone meanwhile (SQLite's side files)
        return
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISREG(info.st_mode) and mode & 0o077:
            os.chmod(f"/proc/self/fd/{fd}", PRIVATE)  # the file this descriptor holds, not whatever path names now
            log.warning("%s was mode %04o, open to other users; now 0600", path, mode)
    finally:
        os.close(fd)


def private_file(path: Path, *, create: bool = False) -> None:
    """``path`` 0600 (created so if missing and ``create``); a warning if it was looser. A symlink is
    left alone (neither followed nor changed): whoever made it chose where the file lives."""
    existed = os.path.lexists(path)
    if not existed and not create:
        return
    if existed and _O_PATH:
        _tighten_in_place(path)
        return
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | _CLOEXEC | (os.O_CREAT if create else 0), PRIVATE)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT):  # a symlink; or gone meanwhile (SQLite's side files)
            return
        raise
    try:
        info = os.fstat(fd)
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISREG(info.st_mode) and mode != PRIVATE and (mode & 0o077 or not existed):
            os.fchmod(fd, PRIVATE)  # made now: exactly 0600 whatever the umask
            if existed:
                log.warning("%s was mode %04o, open to other users; now 0600", path, mode)
    finally:
        os.close(fd)
