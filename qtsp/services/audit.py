"""The audit log's integrity: the hash chain, its signed heads, and the store checked against it.

``verify`` walks the hash chain alone (the first event that does not hold). ``anchor`` signs the
chain's head with the anchor key, a key the database does not hold (a file key under the data
dir's ``keys/``, a Vault Transit key, or an HSM key named by ``audit_anchor_key``), and appends it
to the export (``audit_export``); the scheduler does so every 5 minutes when the chain has moved,
``qtsp audit anchor`` on demand. ``check`` is ``qtsp audit verify``: the chain; every signed head
in the export a prefix of it, signed by the anchor key, the chain not shorter than the last one;
and every certificate, revocation, API token and NCA credential row matched by its event
(``qtsp/core/audit_state.py`` names the events), all read from one snapshot of the store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select

from ca_store import db, repositories as repo
from ca_store.models import AuditEvent

from ..clock import real_utcnow
from ..core import audit_anchor
from ..core.audit import GENESIS, ChainEvent, ChainProblem, verify_chain
from ..core.audit_anchor import HeadProblem, SignedHead
from ..core.audit_state import (CertificateState, CredentialState, StateProblem, TokenState, check_state)
from ..core.errors import Kind, QTSPError
from ..core.keys import PublicKey
from ..core.types import KeyRef
from . import audit_export
from .authorities.build import key_label
from .context import Sandbox

log = logging.getLogger("qtsp.audit")
ANCHOR_NAME = "audit-anchor"
MAX_LISTED = 50  # problems listed per check; the count says how many there were


def verify(sandbox: Sandbox) -> tuple[int, ChainProblem | None]:
    """The hash chain alone: (events, the first problem or None)."""
    with sandbox.transaction() as session:
        events, head = repo.audit_chain(session)
    return len(events), verify_chain(events, head=head)


# --- the anchor key and the export ------------------------------------------------------------------


def anchor_key_ref(sandbox: Sandbox) -> KeyRef:
    """``audit_anchor_key`` if set, else ``audit-anchor`` in the configured backend. Derived from the
    configuration, never read from the database: whoever rewrites the store cannot swap it."""
    cfg = sandbox.config
    if cfg.audit_anchor_key:
        return KeyRef(cfg.audit_anchor_key)
    label = key_label(cfg, ANCHOR_NAME)
    return KeyRef(f"vault-transit:{label}@1" if cfg.key_backend == "vault-transit" else f"file:{label}")


def export_path(sandbox: Sandbox) -> Path:
    path = Path(sandbox.config.audit_anchor_export)
    return path if path.is_absolute() else sandbox.data_dir / path


def _spki_sha256(public_key: PublicKey) -> str:
    return hashlib.sha256(public_key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def _anchor_public_key(sandbox: Sandbox, *, create: bool) -> PublicKey | None:
    """The anchor key's public key from its custodian; made on first use when ``create`` (the default
    reference only: a configured one must exist). None if it does not exist."""
    ref = anchor_key_ref(sandbox)
    backend = sandbox.backend(ref)
    if not backend.exists(ref):
        if not create:
            return None
        if sandbox.config.audit_anchor_key:
            raise QTSPError(Kind.SIGNER_UNAVAILABLE, f"the audit anchor key {ref} does not exist")
        try:
            backend.generate(key_label(sandbox.config, ANCHOR_NAME), sandbox.config.ocsp_key_type)
        except QTSPError as exc:
            if exc.kind is not Kind.CONFLICT:  # another process made it first
                raise
    return backend.public_key(ref)


# --- signing the head -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchored:
    line: int  # the export's line holding this head (the last one, when nothing was written)
    seq: int
    hash: str
    at: dt.datetime
    key: str
    export: Path
    written: bool  # False: the chain had not moved since the last signed head (only_if_moved)

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "seq": self.seq, "hash": self.hash, "at": self.at.isoformat(), "key": self.key,
                "export": str(self.export), "written": self.written}


def _extends(sandbox: Sandbox, last: SignedHead | None) -> tuple[int, str]:
    """The store's head, after checking that the chain up to it extends ``last`` (the whole chain when
    there is no signed head yet): a head is never signed over a chain that was rewritten."""
    start = (0, GENESIS) if last is None else (last.seq, last.hash)
    with db.snapshot(sandbox.engine) as session:
        head = repo.audit_head(session)
        at_start = GENESIS if start[0] == 0 else repo.audit_event_hash(session, start[0])
        events = [e for e in repo.audit_events_after(session, start[0]) if e.seq <= head[0]]
    if at_start != start[1] or head[0] < start[0]:
        raise QTSPError(Kind.INTEGRITY, f"the audit chain no longer holds the head signed at line "
                        f"{last.line if last else 0} (event {start[0]}); nothing signed: run 'qtsp audit verify'")
    problem = verify_chain(events, head=head, after=start)
    if problem is not None:
        raise QTSPError(Kind.INTEGRITY, f"audit chain broken at event {problem.seq}: {problem.problem}; nothing signed")
    return head


def anchor(sandbox: Sandbox, *, only_if_moved: bool = False) -> Anchored:
    """Sign the chain's head with the anchor key and append it to the export."""
    public_key = _anchor_public_key(sandbox, create=True)
    assert public_key is not None
    ref = anchor_key_ref(sandbox)
    key_sha256 = _spki_sha256(public_key)
    path = export_path(sandbox)
    with audit_export.appending(path) as export:
        last = export.last
        seq, head_hash = _extends(sandbox, last)
        if only_if_moved and last is not None and (last.seq, last.hash) == (seq, head_hash):
            return Anchored(last.line, seq, head_hash, last.at, last.key, path, False)
        now = real_utcnow().replace(microsecond=0)  # a signature tells real time, whatever --at says
        prev = GENESIS if last is None else audit_anchor.line_digest(last.raw)
        data = audit_anchor.payload(seq, head_hash, now, ref, key_sha256, prev)
        signature = audit_anchor.sign(sandbox.backend(ref).signer(ref), data)
        line = export.append(audit_anchor.encode_line(seq, head_hash, now, ref, key_sha256, prev, signature))
    log.info("signed audit head: event %d, line %d of %s", seq, line, path)
    return Anchored(line, seq, head_hash, now, ref, path, True)


# --- verifying everything ---------------------------------------------------------------------------


@dataclass
class Report:
    events: int
    head: tuple[int, str]
    chain: ChainProblem | None
    export: Path
    key: str
    signed_heads: int
    last_signed: SignedHead | None
    head_problems: list[HeadProblem] = field(default_factory=list)
    state_problems: list[StateProblem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)  # rows checked against events, per kind

    @property
    def ok(self) -> bool:
        return self.chain is None and not self.head_problems and not self.state_problems

    def as_dict(self) -> dict[str, Any]:
        last = self.last_signed
        return {
            "ok": self.ok, "events": self.events, "head": {"seq": self.head[0], "hash": self.head[1]},
            "chain": None if self.chain is None else {"seq": self.chain.seq, "problem": self.chain.problem},
            "signed_heads": {
                "export": str(self.export), "key": self.key, "count": self.signed_heads,
                "last": None if last is None else {"line": last.line, "seq": last.seq, "at": last.at.isoformat()},
                "problems": len(self.head_problems),
                "listed": [{"line": p.line, "problem": p.problem} for p in self.head_problems[:MAX_LISTED]],
            },
            "state": {
                "checked": self.checked, "problems": len(self.state_problems),
                "listed": [{"subject": p.subject, "problem": p.problem} for p in self.state_problems[:MAX_LISTED]],
            },
        }


def _read_store(sandbox: Sandbox) -> tuple[list[ChainEvent], tuple[int, str], list[CertificateState],
                                            list[TokenState], list[CredentialState]]:
    with db.snapshot(sandbox.engine) as session:
        head = repo.audit_head(session)
        events = [ChainEvent(e.seq, e.at, e.actor, e.action, e.subject, e.details, e.prev_hash, e.hash)
                  for e in session.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
        certs = [CertificateState(*row) for row in repo.certificate_states(session)]
        tokens = [TokenState(*row) for row in repo.token_states(session)]
        creds = [CredentialState(*row) for row in repo.nca_credential_states(session)]
    return events, head, certs, tokens, creds


def check(sandbox: Sandbox, export: Path | None = None) -> Report:
    """Everything ``qtsp audit verify`` checks; ``export``: a copy of the export to check against."""
    events, head, certs, tokens, creds = _read_store(sandbox)
    path = export or export_path(sandbox)
    ref = anchor_key_ref(sandbox)
    read = audit_export.read(path)
    heads, bad = read if read is not None else ([], [])
    report = Report(len(events), head, verify_chain(events, head=head), path, ref, len(heads) + len(bad),
                    heads[-1] if heads else None)
    report.head_problems = [HeadProblem(line, why) for line, why in bad]
    if read is None and export is not None:
        report.head_problems.append(HeadProblem(0, f"there is no export at {path}"))
    if heads:
        public_key = _anchor_public_key(sandbox, create=False)
        if public_key is None:
            report.head_problems.append(HeadProblem(0, f"the anchor key {ref} does not exist: no signature can be checked"))
        else:
            chain = {e.seq: e.hash for e in events}
            end = events[-1].seq if events else 0
            report.head_problems += audit_anchor.check_heads(
                heads, chain, end, expected_key=ref, expected_key_sha256=_spki_sha256(public_key),
                valid=lambda h: audit_anchor.signature_valid(public_key, h.payload(), h.signature))
        report.head_problems.sort(key=lambda p: p.line)
    report.state_problems = check_state(events, certs, tokens, creds)
    report.checked = {"certificates": len(certs), "revocations": sum(c.revocation_reason is not None for c in certs),
                      "api_tokens": len(tokens), "nca_credentials": len(creds)}
    return report
