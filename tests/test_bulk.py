"""Bulk issuance: every line validated first; workers lint and sign; the store gets them all."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509

from qtsp.core.errors import Kind, QTSPError
from qtsp.services import bulk
from qtsp.services.context import Sandbox

ORG = "PSDBE-NBB-0123456789"


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def _counts(data_dir: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return tuple(con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("certificates", "issuance_intents", "audit_events"))
    finally:
        con.close()


def test_bulk_issues_every_request_on_two_workers(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    lines = [{"kind": "qwac", "org_id": ORG, "domains": [f"api{i}.example.com"]} for i in range(12)]
    lines += [{"kind": "qsealc", "org_id": ORG, "qscd": True, "roles": "PSP_AI"} for _ in range(4)]
    before = _counts(data_dir)
    result = bulk.issue_file(sandbox, _write(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=2)
    assert result.issued == 16
    after = _counts(data_dir)
    assert after[0] - before[0] == 16 and after[2] - before[2] == 16
    dirs = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert len(dirs) == 16
    serials = set()
    for d in dirs:
        cert = x509.load_pem_x509_certificate((d / "cert.pem").read_bytes())
        serials.add(cert.serial_number)
        assert (d / "key.pem").stat().st_mode & 0o777 == 0o600
        chain = tmp_path / "out" / ("chain-qwac-ca.pem" if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature else "chain-qseal-ca.pem")
        ok = subprocess.run(["openssl", "verify", "-partial_chain", "-CAfile", str(chain), str(d / "cert.pem")],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    assert len(serials) == 16
    con = sqlite3.connect(data_dir / "qtsp.db")
    states = dict(con.execute("select state, count(*) from issuance_intents group by state").fetchall())
    assert states.get("reserved", 0) == 0


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        {"kind": "qwac", "org_id": ORG, "domains": ["bad..example.com"]},
        {"kind": "qwac", "org_id": ORG, "domains": ["ok.example.com"], "roles": "PSP_IC"},
        {"kind": "qwac", "org_id": "PSDBE-NBB-999", "domains": ["ok.example.com"]},
        {"kind": "qsealc", "org_id": ORG, "surprise": 1},
        {"kind": "certificate", "org_id": ORG},
    ],
)
def test_one_bad_line_issues_nothing(sandbox: Sandbox, data_dir: Path, tmp_path: Path, bad: object) -> None:
    lines = [{"kind": "qwac", "org_id": ORG, "domains": ["good.example.com"]}, bad]
    before = _counts(data_dir)
    with pytest.raises(QTSPError) as err:
        bulk.issue_file(sandbox, _write(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=2)
    assert err.value.kind in (Kind.MALFORMED, Kind.POLICY)
    assert "2" in err.value.detail  # names the offending line
    assert _counts(data_dir) == before
    assert not (tmp_path / "out").exists()
