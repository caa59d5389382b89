"""API tokens (qtsp.services.tokens): the secret is returned once and only its hash is kept; bad names,
roles and secrets are refused and change nothing."""

from __future__ import annotations

import base64
import hashlib
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from qtsp.core.errors import Kind, QTSPError
from qtsp.services import tokens
from qtsp.services.context import Sandbox
from support.api import store_state


def test_token_secret_is_returned_once_and_only_its_hash_is_kept(sandbox: Sandbox, data_dir: Path) -> None:
    token_id, secret = tokens.create(sandbox, "ci pipeline", "auditor")
    assert secret.startswith("qtsp_") and len(base64.urlsafe_b64decode(secret[5:] + "=")) == 32
    caller = tokens.authenticate(sandbox, secret)
    assert (caller.token_id, caller.name, caller.role) == (token_id, "ci pipeline", "auditor")
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        (stored,) = db.execute("SELECT token_hash FROM api_tokens WHERE id = ?", (token_id,)).fetchone()
        everything = "\n".join(str(row) for table in ("api_tokens", "audit_events")
                               for row in db.execute(f"SELECT * FROM {table}"))
        actions = [r[0] for r in db.execute("SELECT action FROM audit_events WHERE subject = ?", (f"token:{token_id}",))]
    assert stored == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in everything and secret[5:] not in everything
    assert actions == ["api_token.create"]
    assert [t.name for t in tokens.list_tokens(sandbox)] == ["ci pipeline"]

    tokens.revoke_token(sandbox, token_id)
    with pytest.raises(QTSPError) as refused:
        tokens.authenticate(sandbox, secret)
    assert refused.value.kind is Kind.UNAUTHORISED
    with pytest.raises(QTSPError) as again:
        tokens.revoke_token(sandbox, token_id)
    assert again.value.kind is Kind.ALREADY_REVOKED
    with pytest.raises(QTSPError) as missing:
        tokens.revoke_token(sandbox, token_id + 100)
    assert missing.value.kind is Kind.NOT_FOUND


@pytest.mark.parametrize("name, role", [("x", "admin"), ("", "operator"), ("a" * 65, "operator"), ("bad\nname", "auditor")])
def test_token_create_refuses_bad_name_or_role(sandbox: Sandbox, data_dir: Path, name: str, role: str) -> None:
    before = store_state(data_dir)
    with pytest.raises(QTSPError) as refused:
        tokens.create(sandbox, name, role)
    assert refused.value.kind is Kind.MALFORMED
    assert store_state(data_dir) == before


@pytest.mark.parametrize("secret", ["", "qtsp_", "qtsp_" + "A" * 42, "qtsp_" + "A" * 44, "Bearer x", "qtsp_" + "é" * 43])
def test_token_authenticate_refuses_malformed_secrets(sandbox: Sandbox, secret: str) -> None:
    with pytest.raises(QTSPError) as refused:
        tokens.authenticate(sandbox, secret)
    assert refused.value.kind is Kind.UNAUTHORISED
