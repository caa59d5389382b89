"""Bulk issuance on two workers, every certificate verified by ``openssl verify`` against the chain the run
wrote. (The rest of bulk issuance, in process: tests/unit/services/test_bulk.py.)"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

from cryptography import x509

from qtsp.services import bulk
from qtsp.services.context import Sandbox

from support.bulk import bulk_counts, write_requests

ORG = "PSDBE-NBB-0123456789"


def test_bulk_issues_every_request_on_two_workers(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    lines = [{"kind": "qwac", "org_id": ORG, "domains": [f"api{i}.example.com"]} for i in range(12)]
    lines += [{"kind": "qsealc", "org_id": ORG, "qscd": True, "roles": "PSP_AI"} for _ in range(4)]
    before = bulk_counts(data_dir)
    result = bulk.issue_file(sandbox, write_requests(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=2)
    assert result.issued == 16
    after = bulk_counts(data_dir)
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
