"""``qtsp crl generate`` and ``qtsp crl show``, in process (CliRunner)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from cryptography import x509

from qtsp.core.ocsp import REASONS
from qtsp.core.types import serial_hex
from qtsp.services.context import Sandbox


def test_cli_generate_and_show(data_dir: Path, sandbox: Sandbox, revoked: dict[str, x509.Certificate]) -> None:
    from cli.commands_crl import crl

    runner = CliRunner()
    result = runner.invoke(crl, ["generate", "--data-dir", str(data_dir), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["issuer"] for r in rows} == {"root", "qwac-ca", "qseal-ca", "browser-root", "qwac-browser-ca"} and all(r["kind"] == "full" for r in rows)

    result = runner.invoke(crl, ["generate", "--ca", "qwac-ca", "--delta", "--data-dir", str(data_dir), "--json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["kind"] == "delta"

    result = runner.invoke(crl, ["show", "--ca", "qwac-ca", "--entries", "--data-dir", str(data_dir), "--json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["number"] == 1 and shown["entries"] == len(REASONS) and shown["kind"] == "full"
    assert {e["serial"] for e in shown["revoked"]} == {serial_hex(c.serial_number) for r, c in revoked.items() if r != "good"}

    text = runner.invoke(crl, ["show", "--ca", "qwac-ca", "--delta", "--data-dir", str(data_dir)], catch_exceptions=False)
    assert text.exit_code == 0 and "number       2 (delta of 1)" in text.output and "nextUpdate" in text.output

    missing = runner.invoke(crl, ["show", "--ca", "nope", "--data-dir", str(data_dir)])
    assert missing.exit_code == 4 and "no CA" in missing.output
