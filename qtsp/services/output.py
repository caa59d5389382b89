"""Writing an issued certificate to ``--out DIR``: cert.pem, chain.pem, key.pem (0600), bundle.p12."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ..core.errors import Kind, QTSPError
from ..signers.file import write_private
from .issuance import Issued


def planned_files(out: Path, *, with_key: bool, with_p12: bool) -> list[Path]:
    names = ["cert.pem", "chain.pem"] + (["key.pem"] if with_key else []) + (["bundle.p12"] if with_p12 else [])
    return [out / name for name in names]


def check_out_dir(out: Path, *, with_key: bool, with_p12: bool) -> None:
    """Before issuing: the directory is writable and nothing there would be overwritten."""
    probe = out
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise QTSPError(Kind.STORAGE, f"output directory {out} is not writable")
    if with_p12 and not with_key:
        raise QTSPError(Kind.MALFORMED, "a PKCS#12 bundle needs the private key: use it with --generate-key")
    existing = [p for p in planned_files(out, with_key=with_key, with_p12=with_p12) if p.exists()]
    if existing:
        raise QTSPError(Kind.CONFLICT, f"refusing to overwrite {existing[0]}; choose another --out")


def write_issued(issued: Issued, out: Path, *, p12_password: str | None = None) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    cert_pem = issued.certificate.public_bytes(serialization.Encoding.PEM)
    (out / "cert.pem").write_bytes(cert_pem)
    written.append(out / "cert.pem")
    (out / "chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.chain))
    written.append(out / "chain.pem")
    if issued.private_key is not None:
        key_pem = issued.private_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        write_private(out / "key.pem", key_pem)
        written.append(out / "key.pem")
        if p12_password is not None:
            encryption = (
                serialization.PrivateFormat.PKCS12.encryption_builder()
                .kdf_rounds(50000)
                .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
                .hmac_hash(hashes.SHA256())
                .build(p12_password.encode())
            )
            data = pkcs12.serialize_key_and_certificates(
                f"{issued.serial}".encode(), issued.private_key, issued.certificate, issued.chain, encryption  # type: ignore[arg-type]
            )
            write_private(out / "bundle.p12", data)
            written.append(out / "bundle.p12")
    return written
