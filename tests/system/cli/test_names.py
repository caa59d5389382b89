"""The CLI takes times without a zone: ``qtsp validate --at`` judges a certificate made by ``openssl req``
(an external program) as of that time, in UTC. (The rest of the names the CLI takes: tests/unit/cli/test_names.py.)"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from support.cli import run


def test_validate_at_without_a_zone(data_dir: Path, tmp_path: Path) -> None:
    key, cert = tmp_path / "k.pem", tmp_path / "self.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=self/organizationIdentifier=PSDBE-NBB-1",
                    "-days", "1000"], check=True, capture_output=True, timeout=60)
    result = run("validate", cert, "--at", "2027-06-01T12:00", "--json", "--data-dir", data_dir)
    assert result.exit_code == 1, result.output  # rejected (self-signed), but judged as of then
    verdict = json.loads(result.stdout)
    assert verdict["at"].startswith("2027-06-01T12:00")
    assert verdict["path"] == ["organizationIdentifier=PSDBE-NBB-1, CN=self"]
    assert "2.5.4.97" not in result.stdout
