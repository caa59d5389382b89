"""``qtsp tokens``: create (the secret shown once), list (never the secret or its hash), revoke."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli.commands_tokens import tokens as tokens_group
from qtsp.services import tokens
from qtsp.services.context import Sandbox


def test_tokens_cli_create_list_revoke(data_dir: Path, sandbox: Sandbox) -> None:
    runner = CliRunner()
    created = runner.invoke(tokens_group, ["create", "--name", "ops", "--role", "operator", "--json",
                                           "--data-dir", str(data_dir)], catch_exceptions=False)
    assert created.exit_code == 0, created.output
    data = json.loads(created.stdout)
    assert data["role"] == "operator" and tokens.authenticate(sandbox, data["token"]).token_id == data["id"]
    text = runner.invoke(tokens_group, ["create", "--name", "reader", "--role", "auditor", "--data-dir", str(data_dir)])
    assert text.exit_code == 0 and "qtsp_" in text.stdout and "only time" in text.stdout

    listed = runner.invoke(tokens_group, ["list", "--json", "--data-dir", str(data_dir)])
    rows = json.loads(listed.stdout)
    assert [(r["name"], r["role"], r["revoked_at"]) for r in rows] == [("ops", "operator", None), ("reader", "auditor", None)]
    assert "qtsp_" not in listed.stdout and "hash" not in listed.stdout

    revoked = runner.invoke(tokens_group, ["revoke", str(data["id"]), "--data-dir", str(data_dir)])
    assert revoked.exit_code == 0 and f"revoked token {data['id']}" in revoked.stdout
    again = runner.invoke(tokens_group, ["revoke", str(data["id"]), "--data-dir", str(data_dir)])
    assert again.exit_code == 5 and again.stderr.startswith("error: ")
    bad_role = runner.invoke(tokens_group, ["create", "--name", "x", "--role", "root", "--data-dir", str(data_dir)])
    assert bad_role.exit_code == 2
