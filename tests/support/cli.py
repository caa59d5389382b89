"""Helpers for the CLI tests (tests/unit/cli/, tests/system/cli/): run ``qtsp`` in process (CliRunner),
read its answers, check refusals (one line, nothing changed), and build ``qtsp issue`` arguments."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from cli.main import cli
from support import SAMPLE_ORG

NEW_ORG = "PSDNL-DNB-R161162"
DOMAIN = "api.example-fintech.eu"
TABLES = ("certificates", "issuance_intents", "audit_events", "psp_authorisations")
# SQLite's WAL side files come and go with open connections; they are not store content.
SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def run(*args: Any, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, catch_exceptions=False)


def ok(result: Result) -> str:
    assert result.exit_code == 0, f"exit {result.exit_code}: {result.output}"
    return result.stdout


def ok_json(result: Result) -> Any:
    return json.loads(ok(result))


def assert_refused(result: Result, fragment: str = "") -> None:
    assert result.exit_code != 0, result.output
    err = result.stderr.strip()
    assert err.startswith("error: ") and "\n" not in err, f"not a one-line error: {err!r}"
    assert fragment in err, err
    assert "PRIVATE KEY" not in result.output
    assert "Traceback" not in result.output


def snapshot(data_dir: Path) -> tuple[dict[str, int], list[str]]:
    """Row counts of the tables an issuance or registration touches, and every file in the dir."""
    counts: dict[str, int] = {}
    db = data_dir / "qtsp.db"
    if db.exists():
        with closing(sqlite3.connect(db)) as conn:
            counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    files = sorted(
        str(p.relative_to(data_dir)) for p in data_dir.rglob("*") if not p.name.endswith(SQLITE_SIDE_FILES)
    ) if data_dir.exists() else []
    return counts, files


def file_hashes(directory: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(directory.iterdir())}


def csr_der(key: Any) -> bytes:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Example Fintech Seal")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(subject).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.DER)


def bad_signature_csr() -> bytes:
    der = bytearray(csr_der(rsa.generate_private_key(public_exponent=65537, key_size=2048)))
    signature = x509.load_der_x509_csr(bytes(der)).signature
    at = bytes(der).rindex(signature) + len(signature) // 2  # inside the signature BIT STRING
    der[at] ^= 0x01
    return bytes(der)


def issue_args(data_dir: Path, out: Path, *, kind: str = "qwac", org: str = SAMPLE_ORG,
               domains: tuple[str, ...] = (DOMAIN,), roles: str | None = None) -> list[Any]:
    args: list[Any] = ["issue", kind, "--data-dir", data_dir, "--org-id", org, "--generate-key", "--out", out]
    if kind == "qwac":
        for domain in domains:
            args += ["--domain", domain]
    if roles is not None:
        args += ["--roles", roles]
    return args


def assert_issue_refused(data_dir: Path, out: Path, args: list[Any], fragment: str) -> None:
    before = snapshot(data_dir)
    assert_refused(run(*args), fragment)
    assert snapshot(data_dir) == before
    assert not (out / "cert.pem").exists()
