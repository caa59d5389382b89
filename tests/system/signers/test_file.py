"""The file backend with other CA key types: a sandbox made with them issues QWACs that ``openssl verify``
accepts. (The file backend itself: tests/unit/signers/test_file.py.)"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from qtsp.services import issuance, register
from qtsp.services.hierarchy import init_sandbox


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "rsa-3072"])
def test_init_with_other_ca_key_types_issues_verifiable_qwacs(tmp_path: Path, key_type: str) -> None:
    sb = init_sandbox(tmp_path / "d", key_type=key_type)
    register.add_psp(sb, org_id="PSDFR-ACPR-12345", name="Exemple SAS", roles="PSP_PI", locality="Paris",
                     registration_number="123456789")
    issued = issuance.issue(sb, issuance.IssueRequest("qwac", "PSDFR-ACPR-12345", domains=("api.exemple.fr",),
                                                      generate_key="rsa-2048"))
    key = issued.chain[0].public_key()
    assert isinstance(key, rsa.RSAPublicKey if key_type.startswith("rsa") else ec.EllipticCurvePublicKey)
    leaf = tmp_path / "leaf.pem"
    leaf.write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
    result = subprocess.run(["openssl", "verify", "-CAfile", str(sb.ca_dir / "root.pem"), "-untrusted",
                             str(sb.ca_dir / "qwac-ca.pem"), str(leaf)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    sb.engine.dispose()
