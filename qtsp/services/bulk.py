"""Bulk issuance on every core: the issuance pipeline (``issuance``) over a JSON-lines file.

The parent process owns the database. It parses every line (``parse_issue_request``, the same
strict parser as the CLI and the API) and prepares it (step 1), then records the intents of the
prepared ones in one committed transaction (step 3), and hands (request, serial) chunks to worker
processes. Each worker loads the CA Signers and the pkilint validators once, and per certificate
generates the key, lints a throwaway-key copy of the template and signs (steps 2 and 4: the
pipeline's ``lint_step`` and ``sign_step``). The parent stores each chunk, pre-signs its OCSP
responses and writes its audit events in one transaction (steps 5 and 6, ``Batch.finish``).

Here, unlike ``issue``, the intents are recorded before the workers lint: a line that lint refuses
in a worker has its serial abandoned (never used). Recording after lint would take a second round
trip to the workers for every chunk.

A bad line is reported with its line number and reason. By default (``keep_going=False``, what
library callers had) any bad line stops the run before anything is reserved; the CLI keeps going
instead, issues the good lines and reports every bad one (``LineResult``).
"""

from __future__ import annotations

import datetime as dt
import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_store.models import IssuanceIntent

from .. import files
from ..core import builder
from ..core.errors import Kind, QTSPError
from ..core.types import IssuerId, KeyRef, Serial
from . import authorities, issuance
from .context import Sandbox
from ..clock import utcnow
from .issue_request import IssueRequest, parse_issue_request

MAX_REQUESTS = 1_000_000
MAX_LINE = 64 * 1024
CHUNK = 50


@dataclass
class LineResult:
    """What became of one input line: its certificate's files, or the error that stopped it."""

    line: int
    serial: str | None = None
    cert: str | None = None
    chain: str | None = None
    key: str | None = None
    error: Kind | None = None
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"line": self.line, "error": self.error.value, "detail": self.detail}
        return {"line": self.line, "serial": self.serial, "cert": self.cert, "chain": self.chain, "key": self.key}


@dataclass
class BulkResult:
    issued: int = 0
    out: str = ""
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    workers: int = 1
    lines: list[LineResult] = field(default_factory=list)

    @property
    def failed(self) -> list[LineResult]:
        return [r for r in self.lines if r.error is not None]

    def as_dict(self) -> dict[str, Any]:
        return {"issued": self.issued, "failed": len(self.failed), "out": self.out, "seconds": round(self.seconds, 3),
                "per_second": round(self.issued / self.seconds, 1) if self.seconds else None,
                "workers": self.workers, "step_seconds": {k: round(v, 3) for k, v in self.steps.items()}}

    def summary(self) -> str:
        rate = self.issued / self.seconds if self.seconds else 0.0
        steps = ", ".join(f"{k} {v:.2f}s" for k, v in self.steps.items())
        failed = f"; {len(self.failed)} lines failed" if self.failed else ""
        return (f"issued {self.issued} certificates into {self.out} in {self.seconds:.1f}s "
                f"({rate:.0f}/s, {self.workers} workers; {steps}){failed}")


# --- the input --------------------------------------------------------------------------------


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, value in pairs:
        if key in item:
            raise ValueError(f"field {key!r} appears twice")
        item[key] = value
    return item


def parse_line(raw: bytes) -> IssueRequest:
    """One line into a request: a JSON object, read by ``parse_issue_request`` (source bulk)."""
    try:
        item = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise QTSPError(Kind.MALFORMED, f"not JSON ({exc.msg} at column {exc.colno})") from None
    except UnicodeDecodeError:
        raise QTSPError(Kind.MALFORMED, "not UTF-8 text") from None
    except ValueError as exc:  # a repeated field
        raise QTSPError(Kind.MALFORMED, str(exc)) from None
    if not isinstance(item, dict):
        raise QTSPError(Kind.MALFORMED, "each line is a JSON object")
    return parse_issue_request(item, source="bulk")


def parse_requests(path: Path) -> tuple[list[tuple[int, IssueRequest]], list[LineResult]]:
    """The requests by line number, and the lines that are not requests (blank lines are skipped)."""
    requests: list[tuple[int, IssueRequest]] = []
    failures: list[LineResult] = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if len(raw) > MAX_LINE:
                failures.append(LineResult(number, error=Kind.MALFORMED, detail=f"line longer than {MAX_LINE} bytes"))
                continue
            if not raw.strip():
                continue
            if len(requests) + len(failures) >= MAX_REQUESTS:
                raise QTSPError(Kind.MALFORMED, f"{path}: more than {MAX_REQUESTS} requests")
            try:
                requests.append((number, parse_line(raw)))
            except QTSPError as exc:
                failures.append(LineResult(number, error=exc.kind, detail=exc.detail))
    if not requests and not failures:
        raise QTSPError(Kind.MALFORMED, f"{path}: no requests")
    return requests, failures


def _refuse(path: Path, failures: list[LineResult]) -> QTSPError:
    """All-or-nothing: the first bad line's kind, and every bad line counted."""
    first = min(failures, key=lambda r: r.line)
    more = f" (and {len(failures) - 1} more bad lines)" if len(failures) > 1 else ""
    return QTSPError(first.error or Kind.MALFORMED, f"{path}: line {first.line}: {first.detail}{more}; nothing was issued")


# --- worker side: steps 2 and 4 -----------------------------------------------------------------

# A worker's answer for one job: (certificate DER, key PEM) or (None, (error kind value, detail)).
Outcome = tuple[bytes, bytes] | tuple[None, tuple[str, str]]
Job = tuple[issuance.Prepared, Serial]


@dataclass
class _Work:
    """What the forked workers are handed (through the fork, not pickled): the jobs, and the CAs to load."""

    sandbox: Sandbox  # only its key backends are used in a worker, never its database
    now: dt.datetime
    jobs: list[Job]
    issuers: dict[IssuerId, tuple[builder.IssuerInfo, KeyRef]]  # CA id -> (issuer info, key reference)
    cas: dict[IssuerId, issuance.IssuingCA] = field(default_factory=dict)  # loaded in each worker


# Set in each forked worker by ``_worker_init``, for the ``_worker_run`` calls the pool sends it; never in
# the parent (a Pool reaches its workers through module-level functions only).
_work: _Work | None = None


def _worker_init(work: _Work) -> None:
    """Runs in each forked worker: load the CA Signers once (the jobs came with the fork)."""
    global _work
    work.sandbox.after_fork()  # never share the parent's HTTP connections across fork
    work.cas = {ca_id: issuance.IssuingCA(ca_id, info, authorities.signer_for(work.sandbox, ref))
                for ca_id, (info, ref) in work.issuers.items()}
    _work = work


def _worker_run(span: tuple[int, int]) -> tuple[list[Outcome], dict[str, float]]:
    assert _work is not None, "runs in a bulk worker only"
    work = _work
    results: list[Outcome] = []
    t = {"keygen": 0.0, "template+lint": 0.0, "sign": 0.0}
    sandbox, now = work.sandbox, work.now
    for p, serial in work.jobs[span[0]: span[1]]:
        ca = work.cas[p.issuer_id]
        try:
            t0 = time.perf_counter()
            key = issuance.subscriber_key(p)
            t1 = time.perf_counter()
            tbs = issuance.lint_step(sandbox, ca, p, p.certified_key(key), serial, now)
            t2 = time.perf_counter()
            cert = issuance.sign_step(tbs, ca)
            t3 = time.perf_counter()
        except QTSPError as exc:  # this line's refusal (lint, signer): told to the parent, the others go on
            results.append((None, (exc.kind.value, exc.detail)))
            continue
        key_pem = b"" if key is None else key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        results.append((cert.public_bytes(serialization.Encoding.DER), key_pem))
        for name, spent in zip(t, (t1 - t0, t2 - t1, t3 - t2), strict=True):
            t[name] += spent
    return results, t


# --- parent side: steps 1, 3, 5 and 6 ------------------------------------------------------------------


def _prepare(sandbox: Sandbox, parsed: list[tuple[int, IssueRequest]],
             failures: list[LineResult]) -> tuple[list[issuance.Prepared], list[int]]:
    """Step 1 for every parsed line; the register and the CA choice looked up once per batch."""
    psps: dict[str, Any] = {}
    issuers: dict[str, IssuerId] = {}
    prepared, lines = [], []
    for number, request in parsed:
        try:
            prepared.append(issuance.prepare(sandbox, request, psps=psps, issuers=issuers))
            lines.append(number)
        except QTSPError as exc:
            failures.append(LineResult(number, error=exc.kind, detail=exc.detail))
    return prepared, lines


def issue_file(sandbox: Sandbox, path: Path, out: Path, *, workers: int | None = None, actor: str = "cli",
               keep_going: bool = False, progress: Callable[[int, int], None] | None = None) -> BulkResult:
    """Issue every request of ``path`` into ``out`` (new or empty).

    ``keep_going``: issue the good lines and report the bad ones in ``BulkResult.lines``; without
    it, a bad line raises before anything is reserved. ``progress(done, total)`` is called as each
    chunk of the valid requests is stored or refused.
    """
    start = time.perf_counter()
    steps: dict[str, float] = {}
    if os.path.lexists(out):
        files.check_own_dir(out)  # not a symlink, nor another user's directory
        if any(out.iterdir()):
            raise QTSPError(Kind.CONFLICT, f"output directory {out} is not empty; choose another --out")
    parsed, failures = parse_requests(path)
    prepared, lines = _prepare(sandbox, parsed, failures)
    steps["validate"] = time.perf_counter() - start
    if failures and not keep_going:
        raise _refuse(path, failures)
    if not prepared:
        return BulkResult(0, str(out), time.perf_counter() - start, steps, 0, sorted(failures, key=lambda r: r.line))

    t0 = time.perf_counter()
    batch = issuance.Batch(sandbox, utcnow(), actor, audit_extra={"bulk": True})
    jobs: list[Job] = list(zip(prepared, issuance.new_serials(len(prepared)), strict=True))
    intents = batch.record(jobs, label="bulk")
    steps["reserve"] = time.perf_counter() - t0

    files.ensure_dir(out)
    workers = workers or os.cpu_count() or 1
    spans = [(n, min(n + CHUNK, len(jobs))) for n in range(0, len(jobs), CHUNK)]
    issuer_ids = sorted({p.issuer_id for p in prepared})
    for issuer_id in issuer_ids:
        chain = authorities.chain(sandbox, issuer_id)
        files.write_new(out / f"chain-{issuer_id}.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    # Workers are forked: they inherit the prepared jobs and the CAs instead of unpickling them, and load
    # the CA Signers themselves (none is opened here, to be shared across fork).
    issuers = {ca_id: (authorities.issuer_info(sandbox.config, ca_id, x509.load_der_x509_certificate(row.cert_der)),
                       row.key.ref) for ca_id, row in authorities.rows(sandbox, issuer_ids).items()}
    work = _Work(sandbox, batch.now, jobs, issuers)
    run = _Run(batch, jobs, lines, intents, out, keep_going, progress)
    try:
        with multiprocessing.get_context("fork").Pool(workers, initializer=_worker_init, initargs=(work,)) as pool:
            run.collect(pool.imap(_worker_run, spans), spans)
    except BaseException:
        # Nothing acknowledged is lost: stored certificates stay; unsigned reservations are abandoned.
        batch.abandon([i for i in intents if i.id not in run.done])
        raise
    # Worker step times are wall-clock sums over all workers (divide by the worker count for elapsed time).
    steps.update({f"{k} (workers)": v for k, v in run.worker_steps.items()})
    steps["store"] = run.store_time
    return BulkResult(run.issued, str(out), time.perf_counter() - start, steps, workers,
                      sorted(failures + run.results, key=lambda r: r.line))


@dataclass
class _Run:
    """The parent's side of the workers' answers: store each chunk, write its files, note each line."""

    batch: issuance.Batch
    jobs: list[Job]
    lines: list[int]
    intents: list[IssuanceIntent]
    out: Path
    keep_going: bool
    progress: Callable[[int, int], None] | None
    issued: int = 0
    store_time: float = 0.0
    done: set[int] = field(default_factory=set)  # intent ids stored or abandoned
    results: list[LineResult] = field(default_factory=list)
    worker_steps: dict[str, float] = field(default_factory=dict)

    def collect(self, answers: Any, spans: list[tuple[int, int]]) -> None:
        if self.progress is not None:
            self.progress(0, len(self.jobs))
        for span, (outcomes, spent) in zip(spans, answers, strict=True):
            for name, secs in spent.items():
                self.worker_steps[name] = self.worker_steps.get(name, 0.0) + secs
            t_store = time.perf_counter()
            self._store(span, outcomes)
            self.store_time += time.perf_counter() - t_store
            if self.progress is not None:
                self.progress(span[1], len(self.jobs))

    def _store(self, span: tuple[int, int], outcomes: list[Outcome]) -> None:
        good: list[tuple[int, bytes, bytes]] = []
        refused: list[tuple[int, tuple[str, str]]] = []
        for index, outcome in zip(range(*span), outcomes, strict=True):
            if outcome[0] is None:
                refused.append((index, outcome[1]))
            else:
                good.append((index, outcome[0], outcome[1]))
        if refused and not self.keep_going:
            index, (kind, detail) = refused[0]
            raise QTSPError(Kind(kind), f"line {self.lines[index]}: {detail}")
        signed = [(self.jobs[i][0], x509.load_der_x509_certificate(der), self.intents[i]) for i, der, _ in good]
        dropped = [self.intents[i] for i, _ in refused]
        rows = self.batch.finish(signed, dropped)  # steps 5 and 6
        self.done.update(i.id for i in self.intents[span[0]: span[1]])
        for row, (_, cert, _), (index, _, key_pem) in zip(rows, signed, good, strict=True):
            target = self.out / f"{row.serial}"
            files.ensure_dir(target)
            cert_path = files.write_new(target / "cert.pem", cert.public_bytes(serialization.Encoding.PEM))
            key_path = files.write_new(target / "key.pem", key_pem, private=True)
            self.results.append(LineResult(self.lines[index], row.serial, str(cert_path),
                                           str(self.out / f"chain-{row.issuer_id}.pem"), str(key_path)))
        self.results.extend(LineResult(self.lines[i], error=Kind(kind), detail=detail) for i, (kind, detail) in refused)
        self.issued += len(rows)
