"""The issuance pipeline: the configured subscriber key type, lint before the serial is reserved, and bulk
pre-signing OCSP through the same steps as a single issuance."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from cli.main import cli
from qtsp.core.errors import Kind, QTSPError
from qtsp.services import bulk, issuance
from qtsp.services.context import open_sandbox

ORG = "PSDBE-NBB-0123456789"  # registered by conftest


def _run(*args: Any) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _configure(data_dir: Path, **settings: str) -> None:
    """Edit the sandbox's qtsp.toml as an operator would."""
    path = data_dir / "qtsp.toml"
    lines = path.read_text().splitlines()
    for name, value in settings.items():
        lines = [f'{name} = "{value}"' if line.startswith(f"{name} = ") else line for line in lines]
    path.write_text("\n".join(lines) + "\n")


def _counts(data_dir: Path) -> dict[str, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("certificates", "issuance_intents", "ocsp_responses", "audit_events")}
    finally:
        con.close()


def test_generated_keys_follow_the_configured_subscriber_key_type(data_dir: Path, tmp_path: Path) -> None:
    _configure(data_dir, subscriber_key_type="rsa-3072")
    out = tmp_path / "qwac"
    result = _run("issue", "qwac", "--org-id", ORG, "--domain", "api.example.com", "--generate-key", "--out", out,
                  "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), None)
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 3072
    assert isinstance(cert.public_key(), rsa.RSAPublicKey) and cert.public_key().key_size == 3072  # type: ignore[union-attr]

    given = tmp_path / "given"  # --key-type still wins over the configuration
    result = _run("issue", "qsealc", "--org-id", ORG, "--generate-key", "--key-type", "ecdsa-p384", "--out", given,
                  "--data-dir", data_dir)
    assert result.exit_code == 0, result.output
    key = serialization.load_pem_private_key((given / "key.pem").read_bytes(), None)
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp384r1"


def test_bulk_lines_without_a_key_type_follow_the_configuration(data_dir: Path, tmp_path: Path) -> None:
    _configure(data_dir, subscriber_key_type="ecdsa-p384")
    requests = tmp_path / "r.jsonl"
    requests.write_text(json.dumps({"kind": "qsealc", "org_id": ORG}) + "\n"
                        + json.dumps({"kind": "qsealc", "org_id": ORG, "key_type": "rsa-2048"}) + "\n")
    sandbox = open_sandbox(data_dir)
    try:
        result = bulk.issue_file(sandbox, requests, tmp_path / "out", workers=1)
    finally:
        sandbox.engine.dispose()
    keys = [serialization.load_pem_private_key(Path(line.key or "").read_bytes(), None) for line in result.lines]
    assert isinstance(keys[0], ec.EllipticCurvePrivateKey) and keys[0].curve.name == "secp384r1"
    assert isinstance(keys[1], rsa.RSAPrivateKey) and keys[1].key_size == 2048


def test_key_type_help_names_the_configuration() -> None:
    result = _run("issue", "qwac", "--help")
    assert "default from the config" in " ".join(result.output.split())


def test_bulk_pre_signs_ocsp_like_a_single_issuance(data_dir: Path, tmp_path: Path) -> None:
    sandbox = open_sandbox(data_dir)
    try:
        before = _counts(data_dir)
        issuance.issue(sandbox, issuance.IssueRequest("qsealc", ORG, generate_key=True))
        single = _counts(data_dir)
        requests = tmp_path / "r.jsonl"
        requests.write_text("".join(json.dumps({"kind": "qwac", "org_id": ORG, "domains": [f"b{i}.example.com"]}) + "\n"
                                    for i in range(3)))
        assert bulk.issue_file(sandbox, requests, tmp_path / "out", workers=2).issued == 3
        after = _counts(data_dir)
    finally:
        sandbox.engine.dispose()
    per_certificate = single["ocsp_responses"] - before["ocsp_responses"]
    assert per_certificate == 2  # SHA-1 and SHA-256 CertIDs
    assert after["ocsp_responses"] - single["ocsp_responses"] == 3 * per_certificate
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        unanswered = con.execute("select count(*) from certificates c where c.issuer_id != 'nca-ca' and not exists "
                                 "(select 1 from ocsp_responses o where o.certificate_id = c.id)").fetchone()[0]
    finally:
        con.close()
    assert unanswered == 0


class _Refusing:
    def require_clean(self, cert: x509.Certificate, profile: Any) -> None:
        raise QTSPError(Kind.LINT, "refused")


def test_a_single_issuance_lint_refuses_reserves_no_serial(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox = open_sandbox(data_dir)
    monkeypatch.setattr(sandbox.linter, "require_clean", _Refusing().require_clean)
    try:
        before = _counts(data_dir)
        with pytest.raises(QTSPError) as err:
            issuance.issue(sandbox, issuance.IssueRequest("qsealc", ORG, generate_key=True))
        assert err.value.kind is Kind.LINT
        assert _counts(data_dir) == before  # not even an intent: lint comes before the serial is recorded
    finally:
        sandbox.engine.dispose()
