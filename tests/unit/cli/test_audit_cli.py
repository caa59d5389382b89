"""``qtsp audit verify`` / ``anchor`` and the operator recorded for CLI actions (issue 15, finding 4).

The services' side, tampering by tampering: tests/unit/services/test_audit_integrity.py."""

from __future__ import annotations

import json
import pwd
import os
import sqlite3
from contextlib import closing
from pathlib import Path

from support.cli import assert_refused, ok, ok_json, run, snapshot


def _actors(data_dir: Path) -> list[tuple[str, str]]:
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as conn:
        return list(conn.execute("SELECT actor, action FROM audit_events ORDER BY seq"))


def test_anchor_then_verify_and_tampering_exits_10_with_the_report(data_dir: Path) -> None:
    anchored = ok_json(run("audit", "anchor", "--json", "--data-dir", data_dir))
    assert anchored["written"] is True and anchored["line"] == 1 and anchored["key"] == "file:audit-anchor-1"
    assert Path(anchored["export"]) == data_dir / "audit" / "anchors.jsonl"
    report = ok_json(run("audit", "verify", "--json", "--data-dir", data_dir))
    assert report["ok"] is True and report["signed_heads"]["count"] == 1
    assert report["signed_heads"]["last"]["seq"] == report["head"]["seq"] == report["events"]
    text = ok(run("audit", "verify", "--data-dir", data_dir))
    assert "audit chain verifies" in text and text.rstrip().endswith("audit log verifies")

    ok(run("tokens", "create", "--name", "ops", "--role", "auditor", "--data-dir", data_dir))
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as conn, conn:  # an auditor token made an operator's
        conn.execute("UPDATE api_tokens SET role = 'operator'")
    failed = run("audit", "verify", "--json", "--data-dir", data_dir)
    assert failed.exit_code == 10
    report = json.loads(failed.stdout)
    assert report["ok"] is False and report["chain"] is None and report["state"]["problems"] == 1
    assert "role 'operator' in the store, 'auditor'" in report["state"]["listed"][0]["problem"]
    text = run("audit", "verify", "--data-dir", data_dir)
    assert text.exit_code == 10 and "audit log does NOT verify" in text.stdout


def test_verify_against_a_copy_of_the_export(data_dir: Path, tmp_path: Path) -> None:
    ok(run("audit", "anchor", "--data-dir", data_dir))
    copy = tmp_path / "copy.jsonl"
    copy.write_bytes((data_dir / "audit" / "anchors.jsonl").read_bytes())
    assert ok_json(run("audit", "verify", "--json", "--export", copy, "--data-dir", data_dir))["ok"] is True
    missing = run("audit", "verify", "--json", "--export", tmp_path / "none.jsonl", "--data-dir", data_dir)
    assert missing.exit_code == 10 and "there is no export" in missing.stdout


def test_anchor_refuses_time_travel(data_dir: Path) -> None:
    before = snapshot(data_dir)
    assert_refused(run("audit", "anchor", "--at", "2030-01-01", "--data-dir", data_dir), "--at does not apply")
    assert snapshot(data_dir) == before


def test_cli_actions_record_the_operator(data_dir: Path) -> None:
    os_user = pwd.getpwuid(os.geteuid()).pw_name
    ok(run("tokens", "create", "--name", "a", "--role", "auditor", "--data-dir", data_dir))
    ok(run("--operator", "alice", "tokens", "create", "--name", "b", "--role", "auditor", "--data-dir", data_dir))
    ok(run("tokens", "revoke", "b", "--data-dir", data_dir, env={"QTSP_OPERATOR": "bob@example.eu"}))
    ok(run("--operator", os_user, "register", "withdraw", "PSDBE-NBB-0123456789", "--data-dir", data_dir))
    assert _actors(data_dir)[-4:] == [
        (f"cli:{os_user}", "api_token.create"),
        (f"cli:alice (os user {os_user})", "api_token.create"),
        (f"cli:bob@example.eu (os user {os_user})", "api_token.revoke"),
        (f"cli:{os_user}", "register.withdrawn"),
    ]


def test_init_records_the_operator(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    ok(run("--operator", "carol", "init", "--data-dir", fresh))
    os_user = pwd.getpwuid(os.geteuid()).pw_name
    actors = _actors(fresh)
    assert {actor for actor, _ in actors} == {f"cli:carol (os user {os_user})"}
    # Two roots and three issuing CAs; the issuing CAs' certificates are also certificates of their roots (for
    # OCSP and CRL status), each with its issuance event.
    assert sorted(action for _, action in actors) == ["ca.create"] * 5 + ["certificate.issue"] * 3


def test_a_bad_operator_name_is_refused_and_changes_nothing(data_dir: Path) -> None:
    before = snapshot(data_dir)
    for bad in ("", "has space", "-dash", "x" * 65, "tab\there", "new\nline"):
        result = run("--operator", bad, "tokens", "create", "--name", "c", "--role", "auditor", "--data-dir", data_dir)
        assert result.exit_code == 2 and "--operator" in result.output, (bad, result.output)
    result = run("tokens", "create", "--name", "c", "--role", "auditor", "--data-dir", data_dir,
                 env={"QTSP_OPERATOR": "semi;colon"})
    assert result.exit_code == 2
    assert snapshot(data_dir) == before
