"""The audit log against someone who can write the database (issue 15, finding 4).

Each test replays one tampering in raw SQL, behind the services' back, as an attacker with the
database's credentials would: every one used to pass ``qtsp audit verify`` (the chain alone, still
``audit.verify``, is shown fooled where it was), and ``audit.check`` must now report it. An honest
history verifies. On SQLite here; ``tests/system/services/test_audit_postgres.py`` runs the same
tests on PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine

from ca_store import repositories as repo
from qtsp.core import audit_anchor
from qtsp.core.audit import GENESIS, ChainEvent, event_hash
from qtsp.core.errors import Kind, QTSPError
from qtsp.services import audit, revocation, tokens
from qtsp.services.context import Sandbox
from qtsp.services.issuance import Issued, IssueRequest, issue
from support import SAMPLE_ORG
from support.api import Api


@dataclass
class History:
    sandbox: Sandbox
    engine: Engine
    good: Issued  # a QWAC that stays good
    revoked: Issued  # a QWAC revoked (key-compromise)
    reader: int  # an auditor token, revoked
    anchored_at: int  # the event the export's last signed head names


@pytest.fixture
def history(issued: tuple[Sandbox, Issued], engines: Callable[[str], Engine], store_env: str) -> History:
    """An honest history: init, a PSP, two QWACs (one revoked), two tokens (one revoked), a signed head."""
    sandbox, good = issued
    second = issue(sandbox, IssueRequest("qwac", SAMPLE_ORG, domains=("b.example.com",), generate_key="ecdsa-p256"))
    revocation.revoke(sandbox, second.serial, "key-compromise", actor="test")
    tokens.create(sandbox, "ops", "operator", actor="test")
    reader, _ = tokens.create(sandbox, "reader", "auditor", actor="test")
    tokens.revoke_token(sandbox, reader, actor="test")
    done = audit.anchor(sandbox)
    return History(sandbox, engines(store_env), good, second, reader, done.seq)


def _problems(report: audit.Report) -> list[str]:
    return ([] if report.chain is None else [report.chain.problem]) + [p.problem for p in report.head_problems] \
        + [f"{p.subject}: {p.problem}" for p in report.state_problems]


def _rehash_from(h: History, seq: int, change: Callable[[ChainEvent], str]) -> None:
    """Rewrite the chain as a careful attacker would: event ``seq``'s actor changed, it and every later
    event re-hashed, the head moved to the new last hash."""
    with h.sandbox.transaction() as session:
        events, _ = repo.audit_chain(session)
    prev = GENESIS if seq == 1 else events[seq - 2].hash
    with h.engine.begin() as conn:
        for e in events[seq - 1:]:
            actor = change(e) if e.seq == seq else e.actor
            digest = event_hash(prev, e.seq, e.at, actor, e.action, e.subject, e.details)
            conn.execute(sa.text("UPDATE audit_events SET actor = :a, prev_hash = :p, hash = :h WHERE seq = :s"),
                         {"a": actor, "p": prev, "h": digest, "s": e.seq})
            prev = digest
        conn.execute(sa.text("UPDATE audit_head SET hash = :h WHERE id = 1"), {"h": prev})


def test_an_honest_history_verifies(history: History) -> None:
    report = audit.check(history.sandbox)
    assert report.ok, _problems(report)
    assert report.signed_heads == 1 and report.last_signed is not None
    assert report.last_signed.seq == report.head[0] == report.events == history.anchored_at
    assert report.checked == {"certificates": 5, "revocations": 1, "api_tokens": 2, "nca_credentials": 0}
    data = report.as_dict()
    assert data["ok"] is True and data["signed_heads"]["count"] == 1 and data["state"]["problems"] == 0
    # New events after the signed head are fine: a signed head is a prefix, not the whole chain.
    tokens.create(history.sandbox, "later", "auditor", actor="test")
    assert audit.check(history.sandbox).ok


def test_edit_rehash_and_move_the_head_is_detected(history: History) -> None:
    _rehash_from(history, 2, lambda e: "someone-else")
    assert audit.verify(history.sandbox)[1] is None  # the chain alone is fooled: this was the attack
    report = audit.check(history.sandbox)
    assert not report.ok
    assert any(f"event {history.anchored_at} is not the one signed" in p for p in _problems(report)), _problems(report)


def test_cut_the_tail_and_reset_the_head_is_detected(history: History) -> None:
    keep = history.anchored_at - 2
    with history.sandbox.transaction() as session:
        events, _ = repo.audit_chain(session)
    with history.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM audit_events WHERE seq > :k"), {"k": keep})
        conn.execute(sa.text("UPDATE audit_head SET seq = :k, hash = :h WHERE id = 1"),
                     {"k": keep, "h": events[keep - 1].hash})
    assert audit.verify(history.sandbox)[1] is None  # the chain alone is fooled
    problems = _problems(audit.check(history.sandbox))
    assert any(f"the chain ends at event {keep} but event {history.anchored_at} was signed" in p
               for p in problems), problems


def test_un_revoking_a_certificate_is_detected(history: History) -> None:
    serial = history.revoked.serial
    with history.engine.begin() as conn:
        cert_id = conn.execute(sa.text("SELECT id FROM certificates WHERE serial = :s"), {"s": serial}).scalar_one()
        conn.execute(sa.text("DELETE FROM revocations WHERE certificate_id = :c"), {"c": cert_id})
        conn.execute(sa.text("UPDATE certificates SET status = 'good' WHERE id = :c"), {"c": cert_id})
    assert audit.verify(history.sandbox)[1] is None
    problems = _problems(audit.check(history.sandbox))
    assert any(serial in p and "un-revoked" in p for p in problems), problems


def test_changing_a_revocation_reason_is_detected(history: History) -> None:
    with history.engine.begin() as conn:
        conn.execute(sa.text("UPDATE revocations SET reason = 'superseded'"))
    problems = _problems(audit.check(history.sandbox))
    assert any("'superseded' in the store, 'key-compromise'" in p for p in problems), problems


def test_a_token_inserted_directly_is_detected(history: History) -> None:
    secret = "qtsp_" + "A" * 43
    digest = hashlib.sha256(secret.encode()).hexdigest()
    with history.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO api_tokens (name, role, token_hash, created_at, expires_at, revoked_at) "
                             "SELECT 'backdoor', 'operator', :h, created_at, expires_at, NULL FROM api_tokens WHERE id = :i"),
                     {"h": digest, "i": history.reader})
    try:  # the attack works: the inserted secret authenticates as an operator
        caller = tokens.authenticate(history.sandbox, secret)
        assert (caller.name, caller.role) == ("backdoor", "operator")
    except QTSPError:  # a stricter token format (another part of issue 15) may refuse this one: still detected below
        pass
    problems = _problems(audit.check(history.sandbox))
    assert any("API token" in p and "'backdoor'" in p and "no event created it" in p for p in problems), problems


@pytest.mark.parametrize("sql, expected", [
    ("UPDATE api_tokens SET role = 'operator' WHERE id = :i", "role 'operator' in the store, 'auditor'"),
    ("UPDATE api_tokens SET revoked_at = NULL WHERE id = :i", "usable in the store"),
    ("UPDATE api_tokens SET token_hash = '" + "0" * 64 + "' WHERE id = :i", "(replaced)"),
], ids=["role-raised", "un-revoked", "secret-replaced"])
def test_a_token_changed_directly_is_detected(history: History, sql: str, expected: str) -> None:
    with history.engine.begin() as conn:
        conn.execute(sa.text(sql), {"i": history.reader})
    problems = _problems(audit.check(history.sandbox))
    assert any(f"API token {history.reader}" in p and expected in p for p in problems), problems


def test_a_certificate_inserted_directly_is_detected(history: History) -> None:
    forged = "7" * 32
    with history.engine.begin() as conn:
        conn.execute(sa.text(
            "INSERT INTO certificates (issuer_id, serial, profile, subject, org_id, nca_id, roles, dns_names, not_before, "
            "not_after, fingerprint_sha256, der, status, created_at) SELECT issuer_id, :s, profile, subject, org_id, "
            "nca_id, roles, dns_names, not_before, not_after, :f, der, 'good', created_at FROM certificates "
            "WHERE serial = :g"), {"s": forged, "f": "e" * 64, "g": history.good.serial})
    problems = _problems(audit.check(history.sandbox))
    assert any(forged in p and "no event issued it" in p for p in problems), problems


def test_a_certificate_replaced_or_deleted_is_detected(history: History) -> None:
    with history.engine.begin() as conn:
        conn.execute(sa.text("UPDATE certificates SET fingerprint_sha256 = :f WHERE serial = :s"),
                     {"f": "d" * 64, "s": history.good.serial})
    problems = _problems(audit.check(history.sandbox))
    assert any(history.good.serial in p and "differs from the certificate event" in p for p in problems), problems
    with history.engine.begin() as conn:
        cert_id = conn.execute(sa.text("SELECT id FROM certificates WHERE serial = :s"), {"s": history.revoked.serial}).scalar_one()
        for table in ("ocsp_responses", "revocations"):
            conn.execute(sa.text(f"DELETE FROM {table} WHERE certificate_id = :c"), {"c": cert_id})
        conn.execute(sa.text("DELETE FROM certificates WHERE id = :c"), {"c": cert_id})
    problems = _problems(audit.check(history.sandbox))
    assert any(history.revoked.serial in p and "missing from the store" in p for p in problems), problems


def test_no_false_alarm_while_others_write(history: History) -> None:
    """The chain, its head and the rows are read from one snapshot: a check running beside writers (a
    token created and revoked, its events appended in the same commit) never sees half of a change."""
    import threading

    stop = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            while not stop.is_set():
                token_id, _ = tokens.create(history.sandbox, "busy", "auditor", actor="test")
                tokens.revoke_token(history.sandbox, token_id, actor="test")
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        for _ in range(15):
            report = audit.check(history.sandbox)
            assert report.ok, _problems(report)
    finally:
        stop.set()
        writer.join(timeout=30)
    assert not errors and not writer.is_alive()


def _export_lines(h: History) -> list[bytes]:
    return audit.export_path(h.sandbox).read_bytes().splitlines()


def test_a_line_removed_from_the_export_is_detected(history: History) -> None:
    audit.anchor(history.sandbox)  # a second head
    tokens.create(history.sandbox, "x", "auditor", actor="test")
    audit.anchor(history.sandbox)  # a third
    lines = _export_lines(history)
    # The export is append-only for qtsp; an attacker with the file rewrites it.
    audit.export_path(history.sandbox).write_bytes(lines[0] + b"\n" + lines[2] + b"\n")
    problems = _problems(audit.check(history.sandbox))
    assert any("does not follow the line before it" in p for p in problems), problems


def test_a_head_signed_by_another_key_is_refused(history: History) -> None:
    """An attacker who rewrote the chain and signs its new head with a key of their own."""
    _rehash_from(history, 3, lambda e: "mallory")
    with history.sandbox.transaction() as session:
        seq, head_hash = repo.audit_head(session)
    last = audit_anchor.parse_line(_export_lines(history)[-1], 1)
    own = ec.generate_private_key(ec.SECP256R1())
    for line_no, (key, key_sha) in enumerate(((last.key, last.key_sha256), ("file:mallory-1", "a" * 64)), start=2):
        prev = audit_anchor.line_digest(_export_lines(history)[-1])
        data = audit_anchor.payload(seq, head_hash, last.at, key, key_sha, prev)
        line = audit_anchor.encode_line(seq, head_hash, last.at, key, key_sha, prev, audit_anchor.sign(own, data))
        with audit.export_path(history.sandbox).open("ab") as handle:
            handle.write(line + b"\n")
        report = audit.check(history.sandbox)
        on_line = [p.problem for p in report.head_problems if p.line == line_no]
        assert on_line and ("signature does not verify" in on_line[0] or "not by the anchor key" in on_line[0]), \
            _problems(report)


def test_a_head_is_never_signed_over_a_rewritten_chain(history: History) -> None:
    _rehash_from(history, 2, lambda e: "someone-else")
    before = audit.export_path(history.sandbox).read_bytes()
    with pytest.raises(QTSPError) as refused:
        audit.anchor(history.sandbox)
    assert refused.value.kind is Kind.INTEGRITY and "no longer holds the head signed" in refused.value.detail
    assert audit.export_path(history.sandbox).read_bytes() == before  # nothing appended


def test_the_scheduler_job_appends_only_when_the_chain_moved(history: History) -> None:
    from qtsp import scheduler

    assert scheduler.job_anchor_audit(history.sandbox) == 0  # anchored by the fixture, nothing new
    tokens.create(history.sandbox, "y", "auditor", actor="test")
    assert scheduler.job_anchor_audit(history.sandbox) == 1
    lines = _export_lines(history)
    assert len(lines) == 2
    second = audit_anchor.parse_line(lines[1], 2)
    assert second.prev == audit_anchor.line_digest(lines[0])
    assert json.loads(lines[1])["seq"] == history.anchored_at + 1
    assert audit.check(history.sandbox).ok


def test_the_export_is_append_only_and_never_followed_through_a_link(history: History, tmp_path: Path) -> None:
    path = audit.export_path(history.sandbox)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    first = path.read_bytes()
    tokens.create(history.sandbox, "z", "auditor", actor="test")
    audit.anchor(history.sandbox)
    assert path.read_bytes().startswith(first)  # appended, the earlier bytes untouched
    # A link planted where the export goes: refused, the link's target untouched.
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    path.rename(tmp_path / "moved.jsonl")
    path.symlink_to(target)
    with pytest.raises(QTSPError) as refused:
        audit.anchor(history.sandbox)
    assert refused.value.kind is Kind.STORAGE and "symbolic link" in refused.value.detail
    assert target.read_bytes() == b""


def test_a_damaged_export_is_reported_not_crashed_on(history: History) -> None:
    path = audit.export_path(history.sandbox)
    with path.open("ab") as handle:
        handle.write(b'{"v": 1, "seq": "x"}\n' + b"\xff" * 10 + b"\n" + b'{"cut short')
    problems = _problems(audit.check(history.sandbox))
    assert sum("is not a signed head" in p for p in problems) == 2 and any("cut short" in p for p in problems), problems
    with pytest.raises(QTSPError) as refused:  # and nothing is appended after a line that does not parse
        audit.anchor(history.sandbox)
    assert refused.value.kind is Kind.INTEGRITY


def test_the_export_and_the_database_hold_no_key_material(history: History) -> None:
    text = audit.export_path(history.sandbox).read_text()
    assert "PRIVATE" not in text
    line = json.loads(text.splitlines()[0])
    assert set(line) == {"v", "seq", "hash", "at", "key", "key_sha256", "prev", "sig"}
    assert base64.b64decode(line["sig"])  # a signature, nothing else encoded in it
    with history.engine.connect() as conn:
        refs = [r[0] for r in conn.execute(sa.text("SELECT ref FROM key_references"))]
    assert audit.anchor_key_ref(history.sandbox) not in refs  # the anchor key is not even named in the store


def test_api_actions_name_their_token_and_verify(api: Api) -> None:
    """What the API writes (issuance, revocation) has its events, and they name the token that acted."""
    from support.api import DOMAIN, PREFIX, csr_pem, new_key

    made = api.client.post(f"{PREFIX}/certificates", headers=api.headers("operator"),
                           json={"kind": "qwac", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key()), "domains": [DOMAIN]})
    serial = made.get_json()["serial"]
    revoked = api.client.post(f"{PREFIX}/certificates/{serial}/revoke", headers=api.headers("operator"),
                              json={"reason": "superseded"})
    assert revoked.status_code == 200, revoked.get_json()
    with api.sandbox.transaction() as session:
        events, _ = repo.audit_chain(session)
    acted = {e.action: e.actor for e in events if e.subject == serial}
    assert set(acted) == {"certificate.issue", "certificate.revoke"}
    assert all(a.startswith("api-token:") and a.endswith(":ops") for a in acted.values()), acted
    audit.anchor(api.sandbox)
    report = audit.check(api.sandbox)
    assert report.ok and report.checked["revocations"] == 1, _problems(report)


def test_a_sandbox_from_before_the_receipt_event_verifies_after_migrating(
        sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Before this change the QTSP's receipt certificate was stored without an issuance event; migration
    0007 appends it (once, marked back-filled), so an upgraded sandbox verifies and nothing else is blessed."""
    from alembic import command

    from ca_store import db
    from qtsp.services import nca_identity

    real = nca_identity.repo.append_audit

    def old_code(session, *, action: str, **kwargs):  # type: ignore[no-untyped-def]
        # What the code wrote before: no event for the receipt certificate. (The NCA credential's own
        # certificate and the CA certificates registered for status were not stored at all then; their
        # events are the new code's, kept.)
        if action != "certificate.issue" or kwargs.get("details", {}).get("purpose") != nca_identity.RECEIPTS:
            real(session, action=action, **kwargs)

    monkeypatch.setattr(nca_identity.repo, "append_audit", old_code)
    nca_identity.add_nca(sandbox, "BE-NBB", "National Bank of Belgium", generate=True, out=tmp_path / "nca")
    monkeypatch.setattr(nca_identity.repo, "append_audit", real)
    problems = _problems(audit.check(sandbox))
    assert len(problems) == 1 and "nca-ca/" in problems[0] and "no event issued it" in problems[0], problems

    # The database as the old code left it: the schema of 0007 (later migrations' tables dropped by their
    # downgrades), stamped 0006, so that 0007 runs again and the migrations after it with it.
    command.downgrade(db.alembic_config(sandbox.engine), "0007")
    command.stamp(db.alembic_config(sandbox.engine), "0006")
    db.ensure_current(sandbox.engine)
    report = audit.check(sandbox)
    assert report.ok, _problems(report)
    with sandbox.transaction() as session:
        events, _ = repo.audit_chain(session)
    # The credential certificate's event is the new code's (actor cli); the receipt's is back-filled by 0007.
    receipts = [e.actor for e in events if e.action == "certificate.issue" and nca_identity.RECEIPTS in (e.details or "")]
    assert receipts == ["migration"]
    db.migrate(sandbox.engine)  # once only
    assert audit.check(sandbox).events == report.events
