"""Counters shared by every process on this host (each a mmap'd file).

The revocation generation: revocation bumps it after the commit and before the acknowledgement;
OCSP workers compare it on each request (a memory read) and drop their in-process response cache
when it moved. So a cached "good" is never served by any worker after ``revoke`` has returned.

The issuance counter (ISSUED): issuance bumps it after the commit; OCSP workers then add the new
serials to their filter of issued ones (``qtsp.responder.issued``) before answering again, so a
certificate is never called "never issued" on its host once ``issue`` has returned.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
from pathlib import Path

from .. import files

REVOCATION = "revocation-generation"
ISSUED = "issued-generation"
_FMT = "<Q"
_SIZE = struct.calcsize(_FMT)


class Generation:
    def __init__(self, data_dir: Path, name: str = REVOCATION) -> None:
        path = data_dir / "run" / name
        files.ensure_dir(path.parent, own=False)
        fd = files.open_shared(path)
        try:
            if os.fstat(fd).st_size < _SIZE:
                os.write(fd, b"\0" * _SIZE)
            self._map = mmap.mmap(fd, _SIZE)
        finally:
            os.close(fd)
        self._path = path

    def value(self) -> int:
        return struct.unpack_from(_FMT, self._map)[0]

    def bump(self) -> int:
        with files.open_lock(self._path) as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                new = self.value() + 1
                struct.pack_into(_FMT, self._map, 0, new)
                self._map.flush()
                return new
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)
