"""State against events: every row that grants or records something has the event that made it.

The hash chain proves the events were not changed; it says nothing of rows written beside it. A
revocation deleted in SQL (the certificate answers "good" again), an operator token inserted by
hand, a certificate stored without being issued: each leaves the store saying what no event says.
``check_state`` folds the events into what the store should hold and compares, both ways.

What counts as the event of a row (the names the services write; a new way to make such a row
must write one of them, with the details named here):

- a certificate: ``certificate.issue`` or ``scenario.issue``, subject the serial, details
  ``issuer`` (and ``sha256`` of the DER, checked when present);
- its revocation: ``certificate.revoke`` (details ``issuer``, ``reason``), a later
  ``certificate.revoke.reason_change``, or ``scenario.issue`` with ``revoked`` (the reason);
- an API token: ``api_token.create``, subject ``token:<id>``, details ``name``, ``role`` (and
  ``secret_sha256``, the stored hash of its secret, when present); ``api_token.revoke``;
- an NCA credential: ``nca.credential.add``, subject the NCA id, details ``fingerprint``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .audit import ChainEvent

ISSUE_ACTIONS = frozenset({"certificate.issue", "scenario.issue"})
REVOKE = "certificate.revoke"
REASON_CHANGE = "certificate.revoke.reason_change"
TOKEN_CREATE, TOKEN_REVOKE = "api_token.create", "api_token.revoke"
CREDENTIAL_ADD = "nca.credential.add"
_READ = ISSUE_ACTIONS | {REVOKE, REASON_CHANGE, TOKEN_CREATE, TOKEN_REVOKE, CREDENTIAL_ADD}


@dataclass(frozen=True)
class CertificateState:
    issuer: str
    serial: str
    sha256: str
    status: str  # good | revoked
    revocation_reason: str | None  # the revocation row's reason; None without one


@dataclass(frozen=True)
class TokenState:
    id: int
    name: str
    role: str
    secret_sha256: str
    revoked: bool


@dataclass(frozen=True)
class CredentialState:
    nca_id: str
    fingerprint: str


@dataclass(frozen=True)
class StateProblem:
    subject: str  # "certificate qwac-ca/0A1B...", "token 3", "NCA credential BE-NBB/ab12..."
    problem: str


@dataclass
class _Expected:
    issued: dict[tuple[str, str], tuple[int, str | None]]  # (issuer, serial) -> (seq, sha256)
    revoked: dict[tuple[str, str], tuple[int, str]]  # -> (seq, reason), the last word
    tokens: dict[int, tuple[int, dict[str, Any]]]  # id -> (seq, details)
    tokens_revoked: dict[int, int]  # id -> seq
    credentials: set[tuple[str, str]]


def _details(event: ChainEvent) -> dict[str, Any]:
    try:
        data = json.loads(event.details)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def expected_state(events: Iterable[ChainEvent]) -> _Expected:
    out = _Expected({}, {}, {}, {}, set())
    for event in events:
        if event.action not in _READ:
            continue
        d = _details(event)
        if event.action in ISSUE_ACTIONS:
            key = (str(d.get("issuer")), event.subject)
            out.issued[key] = (event.seq, d.get("sha256"))
            if d.get("revoked"):
                out.revoked[key] = (event.seq, str(d["revoked"]))
        elif event.action in (REVOKE, REASON_CHANGE):
            out.revoked[(str(d.get("issuer")), event.subject)] = (event.seq, str(d.get("reason")))
        elif event.action in (TOKEN_CREATE, TOKEN_REVOKE):
            prefix, _, number = event.subject.partition(":")
            if prefix != "token" or not number.isdigit():
                continue
            if event.action == TOKEN_CREATE:
                out.tokens[int(number)] = (event.seq, d)
            else:
                out.tokens_revoked[int(number)] = event.seq
        elif event.action == CREDENTIAL_ADD:
            out.credentials.add((event.subject, str(d.get("fingerprint"))))
    return out


def check_state(events: Iterable[ChainEvent], certificates: Iterable[CertificateState],
                tokens: Iterable[TokenState], credentials: Iterable[CredentialState]) -> list[StateProblem]:
    """Every row without its event, every event whose row is gone or says otherwise."""
    exp = expected_state(events)
    problems: list[StateProblem] = []
    seen: set[tuple[str, str]] = set()
    for c in certificates:
        key = (c.issuer, c.serial)
        seen.add(key)
        what = f"certificate {c.issuer}/{c.serial}"
        issued = exp.issued.get(key)
        if issued is None:
            problems.append(StateProblem(what, "is in the store but no event issued it"))
        elif issued[1] is not None and issued[1] != c.sha256:
            problems.append(StateProblem(what, f"differs from the certificate event {issued[0]} issued"))
        has_row = c.revocation_reason is not None
        if has_row != (c.status == "revoked"):
            problems.append(StateProblem(what, f"its status is {c.status!r} but it "
                                               f"{'has' if has_row else 'has no'} revocation record"))
        revoked = exp.revoked.get(key)
        if revoked is not None and not has_row:
            problems.append(StateProblem(what, f"was revoked by event {revoked[0]} but the store has no revocation "
                                               "(un-revoked)"))
        elif revoked is None and has_row:
            problems.append(StateProblem(what, "is revoked in the store but no event revoked it"))
        elif revoked is not None and revoked[1] != c.revocation_reason:
            problems.append(StateProblem(what, f"revocation reason {c.revocation_reason!r} in the store, "
                                               f"{revoked[1]!r} by event {revoked[0]}"))
    for key, (seq, _) in exp.issued.items():
        if key not in seen:
            problems.append(StateProblem(f"certificate {key[0]}/{key[1]}",
                                         f"was issued by event {seq} but is missing from the store"))
    rows = set()
    for t in tokens:
        rows.add(t.id)
        what = f"API token {t.id}"
        created = exp.tokens.get(t.id)
        if created is None:
            problems.append(StateProblem(what, f"({t.role}, {t.name!r}) is in the store but no event created it"))
            continue
        seq, d = created
        for name, value in (("name", t.name), ("role", t.role)):
            if d.get(name) != value:
                problems.append(StateProblem(what, f"{name} {value!r} in the store, {d.get(name)!r} when event {seq} "
                                                   "created it"))
        if d.get("secret_sha256") is not None and d["secret_sha256"] != t.secret_sha256:
            problems.append(StateProblem(what, f"its secret is not the one event {seq} created (replaced)"))
        revoked_by = exp.tokens_revoked.get(t.id)
        if revoked_by is not None and not t.revoked:
            problems.append(StateProblem(what, f"was revoked by event {revoked_by} but is usable in the store"))
        elif revoked_by is None and t.revoked:
            problems.append(StateProblem(what, "is revoked in the store but no event revoked it"))
    for token_id, (seq, _) in exp.tokens.items():
        if token_id not in rows:
            problems.append(StateProblem(f"API token {token_id}", f"was created by event {seq} but is missing from "
                                                                   "the store"))
    for cred in credentials:
        if (cred.nca_id, cred.fingerprint) not in exp.credentials:
            problems.append(StateProblem(f"NCA credential {cred.nca_id}/{cred.fingerprint[:16]}",
                                         "is in the store but no event added it"))
    return problems
