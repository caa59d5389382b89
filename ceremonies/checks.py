"""What the schema alone cannot see, checked before anything is generated: people, files that
must exist and parse, files that must not exist, and rules between fields."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from qtsp import config as config_mod
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import load_csr
from qtsp.core.types import parse_serial

from . import quorum, schema

BACKUP_FORMAT = "qtsp-key-backup/1"


def _bad(message: str, kind: Kind = Kind.MALFORMED) -> QTSPError:
    return QTSPError(kind, message)


def identity(cfg: dict[str, Any]) -> config_mod.Config:
    """The QTSP identity and URLs as qtsp's own configuration (validated by it)."""
    subject = cfg["subject"]
    base_url = (cfg.get("certificate") or {}).get("base-url") or config_mod.Config.base_url
    return config_mod.Config(organization=subject["organization"], country=subject["country"],
                             organization_identifier=subject["organization-identifier"], base_url=base_url)


def read_certificate(path: Path, what: str) -> x509.Certificate:
    try:
        data = path.read_bytes()
        return x509.load_pem_x509_certificate(data) if b"-----BEGIN" in data else x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise _bad(f"{what}: {path} is not a certificate ({exc})") from None


def read_public_key(path: Path) -> Any:
    try:
        return serialization.load_pem_public_key(path.read_bytes())
    except ValueError as exc:
        raise _bad(f"public-key: {path} is not a PEM public key ({exc})") from None


def read_backup(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise _bad(f"backup: {path} is not a backup file (not JSON)") from None
    if not isinstance(data, dict) or data.get("format") != BACKUP_FORMAT:
        raise _bad(f"backup: {path} is not a {BACKUP_FORMAT} file")
    return data


def semantic(cfg: dict[str, Any]) -> None:
    kind = cfg["ceremony-type"]
    _people(cfg, kind)
    _files(cfg)
    if kind in ("root", "intermediate", "ocsp-signer", "root-rollover"):
        identity(cfg)
        if cfg["certificate"]["validity-days"] < 1:
            raise _bad("certificate.validity-days: at least 1", Kind.POLICY)
    if "issuer-certificate" in cfg:
        read_certificate(cfg["issuer-certificate"], "issuer-certificate")
    if kind in ("intermediate", "ocsp-signer"):
        given = [name for name in ("key", "public-key", "csr") if cfg.get(name) is not None]
        if len(given) != 1:
            raise _bad(f"give exactly one of key, public-key, csr (given: {', '.join(given) or 'none'})")
        if cfg.get("key-ref") and cfg.get("key") is not None:
            raise _bad("key-ref: only with public-key or csr (a generated key has its own reference)")
        if cfg.get("csr") is not None:
            load_csr(cfg["csr"].read_bytes())
        if cfg.get("public-key") is not None:
            read_public_key(cfg["public-key"])
    if kind == "crl":
        if not 1 <= cfg["crl"]["validity-days"] <= 365:
            raise _bad("crl.validity-days: 1-365 (BR 4.9.7: an ARL is valid at most 12 months)", Kind.POLICY)
        if cfg["crl"]["number"] < 1:
            raise _bad("crl.number: at least 1", Kind.POLICY)
        for i, entry in enumerate(cfg["crl"]["revoked"]):
            try:
                parse_serial(entry["serial"])
            except ValueError as exc:
                raise _bad(f"crl.revoked[{i}].serial: {exc}") from None
    if kind == "backup":
        _backup(cfg)
    if kind == "restore":
        _restore(cfg)


def _people(cfg: dict[str, Any], kind: str) -> None:
    people = cfg["people"]
    if not people["witnesses"]:
        raise _bad("people.witnesses: at least one witness", Kind.POLICY)
    if people["administrator"] in people["witnesses"]:
        raise _bad("people.witnesses: the administrator cannot witness their own ceremony", Kind.POLICY)
    if kind in ("backup", "restore") and not people["custodians"]:
        raise _bad(f"people.custodians: missing (a {kind} needs its custodians)")


def _files(cfg: dict[str, Any]) -> None:
    seen: dict[Path, str] = {}
    for name, path in schema.inputs(cfg):
        if not path.is_file():
            raise QTSPError(Kind.NOT_FOUND, f"{name}: {path} does not exist")
        seen[path.resolve()] = name
    for name, path in schema.outputs(cfg).items():
        resolved = path.resolve()
        if resolved in seen:
            raise _bad(f"outputs.{name}: {path} is also {seen[resolved]}")
        if path.exists() or path.is_symlink():
            raise QTSPError(Kind.CONFLICT, f"outputs.{name}: {path} exists; refusing to overwrite it")
        seen[resolved] = f"outputs.{name}"


def _backup(cfg: dict[str, Any]) -> None:
    backend = cfg["key"]["backend"]
    if backend["type"] == "vault-transit":
        raise _bad("key.backend: Vault Transit keys are not exportable; back them up with Vault's own tools", Kind.POLICY)
    if backend["type"] == "pkcs11" and not backend.get("so-pin-env"):
        raise _bad("key.backend.so-pin-env: missing (a PKCS#11 backup needs the security officer's PIN)")
    quorum_cfg, custodians = cfg["quorum"], cfg["people"]["custodians"]
    threshold, count = quorum_cfg["threshold"], quorum_cfg["shares"]
    if not 2 <= threshold <= count <= quorum.MAX_SHARES:
        raise _bad(f"quorum: 2 <= threshold <= shares <= {quorum.MAX_SHARES} (got {threshold} of {count})", Kind.POLICY)
    if len(custodians) != count:
        raise _bad(f"quorum.shares is {count} but people.custodians names {len(custodians)}", Kind.POLICY)
    for name in custodians:
        if not schema.LABEL_RE.fullmatch(_slug(name)):
            raise _bad(f"people.custodians: {name!r} cannot name a share file")


def _slug(name: str) -> str:
    return "-".join("".join(c if c.isalnum() else " " for c in name.lower()).split())


def share_file_name(custodian: str) -> str:
    return f"{_slug(custodian)}.txt"


def _restore(cfg: dict[str, Any]) -> None:
    backup = read_backup(cfg["backup"])
    custodians = cfg["people"]["custodians"]
    names = [share["custodian"] for share in cfg["shares"]]
    for name in names:
        if name not in custodians:
            raise _bad(f"shares: {name!r} is not one of people.custodians", Kind.POLICY)
    if len(set(names)) != len(names):
        raise _bad("shares: a custodian is listed twice", Kind.POLICY)
    threshold = int(backup["quorum"]["threshold"])
    if len(names) < threshold:
        raise _bad(f"shares: {len(names)} shares listed, this backup needs {threshold}; nothing was restored", Kind.POLICY)
    if cfg["key"]["backend"]["type"] == "vault-transit":
        raise _bad("key.backend: a backup is restored into a PKCS#11 token or the file backend", Kind.POLICY)
    if all(share.get("file") is not None for share in cfg["shares"]):
        # Every share is at hand: check them all now, so a bad one stops the ceremony before it starts.
        shares = [(s["custodian"], s["file"].read_text()) for s in cfg["shares"]]
        quorum.combine(shares, int(backup["quorum"]["identifier"]), threshold, backup["quorum"]["kcv"])
