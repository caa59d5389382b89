"""Writing an issued certificate to ``--out DIR``: cert.pem, chain.pem, key.pem (0600), bundle.p12.

The files go through ``qtsp.files``, the one way qtsp writes a file: created with
O_CREAT|O_EXCL|O_NOFOLLOW, so an existing file, or a symlink planted where a file will go, is never
followed or overwritten, even when it appears after the friendly early check (a check followed by
a plain write would follow a symlink planted in between).
"""

from __future__ import annotations

import os
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from .. import files
from ..core.errors import Kind, QTSPError

if TYPE_CHECKING:  # the CLI imports this module for every issue command; keep it light
    from .issuance import Issued

PRIVATE_NAMES = frozenset({"key.pem", "bundle.p12"})
create_new = files.create_new
write_new = files.write_new


def planned_files(out: Path, *, with_key: bool, with_p12: bool) -> list[Path]:
    names = ["cert.pem", "chain.pem"] + (["key.pem"] if with_key else []) + (["bundle.p12"] if with_p12 else [])
    return [out / name for name in names]


def check_out_dir(out: Path, *, with_key: bool, with_p12: bool) -> None:
    """Before issuing: the directory is writable and nothing there would be overwritten."""
    probe = out
    while not os.path.lexists(probe):
        probe = probe.parent
    if probe == out:
        files.check_own_dir(out)  # not a symlink, nor another user's directory
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise QTSPError(Kind.STORAGE, f"output directory {out} is not writable")
    if with_p12 and not with_key:
        raise QTSPError(Kind.MALFORMED, "a PKCS#12 bundle needs the private key: use it with --generate-key")
    existing = [p for p in planned_files(out, with_key=with_key, with_p12=with_p12) if os.path.lexists(p)]
    if existing:
        raise QTSPError(Kind.CONFLICT, f"refusing to overwrite {existing[0]}; choose another --out")


class Outputs:
    """The files of one issuance, created empty and exclusively *before* the CA signs.

    Holding the names first closes the window between the check and the write, and means a
    refused output costs no certificate. Used as a context manager: on an error, the files not
    yet written (still empty, still ours) and the directories made for them are removed.
    """

    def __init__(self, out: Path) -> None:
        self.out = out
        self._open: dict[str, tuple[int, os.stat_result]] = {}
        self._made_dirs: list[Path] = []

    @classmethod
    def reserve(cls, out: Path, *, with_key: bool, with_p12: bool) -> Outputs:
        outputs = cls(out)
        try:
            outputs._made_dirs = files.ensure_dir(out)
            for path in planned_files(out, with_key=with_key, with_p12=with_p12):
                fd = files.create_new(path, private=path.name in PRIVATE_NAMES)
                outputs._open[path.name] = (fd, os.fstat(fd))
        except BaseException:
            outputs.discard()
            raise
        return outputs

    def write(self, name: str, data: bytes) -> Path:
        fd, ours = self._open.pop(name)
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        except BaseException:  # a half-written key or certificate is worse than none
            files.remove_ours(self.out / name, ours)
            raise
        return self.out / name

    def discard(self) -> None:
        for name, (fd, ours) in list(self._open.items()):
            os.close(fd)
            files.remove_ours(self.out / name, ours)
        self._open.clear()
        files.remove_dirs(self._made_dirs)
        self._made_dirs.clear()

    def finish(self) -> None:
        """Done writing: drop what was reserved and not written (nothing, when the plan matched); keep the dirs."""
        self._made_dirs.clear()
        self.discard()

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if exc is not None:
            self.discard()


def write_issued(issued: Issued, out: Path | Outputs, *, p12_password: str | None = None) -> list[Path]:
    from cryptography.hazmat.primitives import serialization

    with_key = issued.private_key is not None
    outputs = out if isinstance(out, Outputs) else Outputs.reserve(
        out, with_key=with_key, with_p12=with_key and p12_password is not None)
    written = []
    with outputs:
        written.append(outputs.write("cert.pem", issued.certificate.public_bytes(serialization.Encoding.PEM)))
        written.append(outputs.write("chain.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.chain)))
        if issued.private_key is not None:
            key_pem = issued.private_key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            written.append(outputs.write("key.pem", key_pem))
            if p12_password is not None:
                data = pkcs12_bytes(issued, p12_password)
                written.append(outputs.write("bundle.p12", data))
        outputs.finish()
    return written


def pkcs12_bytes(issued: Issued, password: str) -> bytes:
    """The generated key, the certificate and its chain as PKCS#12, PBES2 with AES-256-CBC and a SHA-256 MAC
    (what OpenSSL 3 makes by default; the legacy RC2/3DES bundles some old tools made are refused by it)."""
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.serialization import pkcs12

    if issued.private_key is None:
        raise QTSPError(Kind.MALFORMED, "a PKCS#12 bundle needs the private key")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(50000)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode())
    )
    return pkcs12.serialize_key_and_certificates(f"{issued.serial}".encode(), issued.private_key, issued.certificate,
                                                 issued.chain, encryption)
