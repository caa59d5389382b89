"""The audit anchor key in the other custodians: a key made on an HSM (SoftHSM2) and named by
``audit_anchor_key``, and the default key in Vault Transit (OpenBao) for a ``--keystore vault``
sandbox. The file-key case and every tampering: tests/unit/services/test_audit_integrity.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from cli.main import cli
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import KeyType
from qtsp.services import audit, tokens
from qtsp.services.context import open_sandbox
from qtsp.signers.pkcs11 import Pkcs11Backend
from support.softhsm import SoftHSM

TOKEN = "qtsp-audit"
REF = f"pkcs11:token={TOKEN};object=audit-anchor"


def _configure(data_dir: Path, key: str, value: str) -> None:
    cfg = data_dir / "qtsp.toml"
    lines = [line for line in cfg.read_text().splitlines() if not line.startswith(f"{key} =")]
    cfg.write_text(f'{key} = "{value}"\n' + "\n".join(lines) + "\n")  # top-level keys go above the first [table]


def test_anchor_key_on_an_hsm(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hsm = SoftHSM(tmp_path / "hsm")
    pin = hsm.init_token(TOKEN)
    for name, value in {**hsm.env, "QTSP_PKCS11_PIN": pin, "QTSP_PKCS11_TOKEN": TOKEN}.items():
        monkeypatch.setenv(name, value)
    _configure(data_dir, "audit_anchor_key", REF)
    sandbox = open_sandbox(data_dir)
    try:
        with pytest.raises(QTSPError) as missing:  # a configured key is never made on the fly
            audit.anchor(sandbox)
        assert missing.value.kind is Kind.SIGNER_UNAVAILABLE and REF in missing.value.detail
        assert not audit.export_path(sandbox).exists() or audit.export_path(sandbox).read_bytes() == b""

        Pkcs11Backend(token=TOKEN).generate("audit-anchor", KeyType.ECDSA_P256)  # the key ceremony's part
        done = audit.anchor(sandbox)
        assert done.key == REF and done.written
        tokens.create(sandbox, "ops", "auditor", actor="test")
        assert audit.check(sandbox).ok
        assert not list((data_dir / "keys").glob("audit-anchor*"))  # nothing of it on disk

        with sandbox.engine.begin() as conn:  # tamper: a token raised to operator
            conn.execute(sa.text("UPDATE api_tokens SET role = 'operator'"))
        assert [p.subject for p in audit.check(sandbox).state_problems] == ["API token 1"]
    finally:
        sandbox.engine.dispose()


def test_anchor_key_in_vault_transit(vault_env, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    data_dir = tmp_path / "vault-sandbox"
    runner = CliRunner()
    assert runner.invoke(cli, ["init", "--keystore", "vault", "--data-dir", str(data_dir)]).exit_code == 0
    anchored = runner.invoke(cli, ["audit", "anchor", "--json", "--data-dir", str(data_dir)])
    assert anchored.exit_code == 0, anchored.output
    key = json.loads(anchored.stdout)["key"]
    assert key.startswith("vault-transit:qtsp-") and key.endswith("audit-anchor@1")
    name = key.split(":", 1)[1].rsplit("@", 1)[0]
    described = vault_env.client().secrets.transit.read_key(name=name)["data"]
    assert described["exportable"] is False  # the custodian never lets it out
    verified = runner.invoke(cli, ["audit", "verify", "--json", "--data-dir", str(data_dir)])
    assert verified.exit_code == 0 and json.loads(verified.stdout)["signed_heads"]["count"] == 1

    sandbox = open_sandbox(data_dir)
    try:  # the chain cut back by one event and its head reset: the signed head shows it
        with sandbox.engine.begin() as conn:
            last = conn.execute(sa.text("SELECT max(seq) FROM audit_events")).scalar_one()
            prev = conn.execute(sa.text("SELECT hash FROM audit_events WHERE seq = :s"), {"s": last - 1}).scalar_one()
            conn.execute(sa.text("DELETE FROM audit_events WHERE seq = :s"), {"s": last})
            conn.execute(sa.text("UPDATE audit_head SET seq = :s, hash = :h"), {"s": last - 1, "h": prev})
    finally:
        sandbox.engine.dispose()
    failed = runner.invoke(cli, ["audit", "verify", "--json", "--data-dir", str(data_dir)])
    assert failed.exit_code == 10, failed.output
    assert "events were removed" in json.loads(failed.stdout)["signed_heads"]["listed"][0]["problem"]
