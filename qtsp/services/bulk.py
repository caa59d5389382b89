"""Bulk issuance on every core: the parent validates and records intent, workers lint and sign.

The parent process owns the database: it parses and validates every line first, reserves the
serials of the valid ones in one committed transaction (step 5), then hands (request, serial)
chunks to worker processes. Each worker loads the CA Signer and the pkilint validators once, and
per certificate builds the template, lints a throwaway-key copy and signs (steps 3, 4, 6). The
parent stores each chunk in one transaction with its audit events (7, 8).

A bad line is reported with its line number and reason. By default (``keep_going=False``, what
library callers had) any bad line stops the run before anything is reserved; the CLI keeps going
instead, issues the good lines and reports every bad one (``LineResult``).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_store import repositories as repo

from ..clock import utcnow
from ..core import oids, profiles
from ..core.errors import Kind, QTSPError
from ..core.keys import generate_private_key
from ..core.types import Serial, serial_hex
from . import issuance, signing
from .context import Sandbox
from .hierarchy import issuer_info
from .output import write_new
from .register import PSPView

MAX_REQUESTS = 1_000_000
MAX_LINE = 64 * 1024
CHUNK = 50


# One request per line: these fields, these JSON types, nothing else (a typo must not be dropped silently).
FIELDS: dict[str, tuple[type, str]] = {
    "kind": (str, "a string, qwac or qsealc"), "org_id": (str, "a string"), "domains": (list, "a list of strings"),
    "roles": (str, 'a string such as "PSP_AI,PSP_PI"'), "qscd": (bool, "true or false"), "browser": (bool, "true or false"),
    "key_type": (str, "a string such as ecdsa-p256"),
}
REQUIRED = ("kind", "org_id")


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


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    item: dict[str, Any] = {}
    for key, value in pairs:
        if key in item:
            raise ValueError(f"field {key!r} appears twice")
        item[key] = value
    return item


def parse_line(raw: bytes) -> issuance.IssueRequest:
    """One line into a request, strictly: a JSON object of the known fields with their JSON types."""
    try:
        item = json.loads(raw, object_pairs_hook=_no_duplicate_keys)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    if not isinstance(item, dict):
        raise ValueError("each line is a JSON object")
    unknown = sorted(set(item) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown fields {unknown} (known: {', '.join(FIELDS)})")
    missing = [name for name in REQUIRED if name not in item]
    if missing:
        raise ValueError(f"missing {' and '.join(missing)}")
    for name, value in item.items():
        wanted, described = FIELDS[name]
        if not isinstance(value, wanted) or (name == "domains" and not all(isinstance(d, str) for d in value)):
            raise ValueError(f"{name} must be {described}")
    return issuance.IssueRequest(
        kind=item["kind"], org_id=item["org_id"], domains=tuple(item.get("domains", ())),
        generate_key=item.get("key_type", "ecdsa-p256"), roles=item.get("roles"), qscd=item.get("qscd", False),
        browser=item.get("browser", False))


def parse_requests(path: Path) -> tuple[list[tuple[int, issuance.IssueRequest]], list[LineResult]]:
    """The requests by line number, and the lines that are not requests (blank lines are skipped)."""
    requests: list[tuple[int, issuance.IssueRequest]] = []
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
            except ValueError as exc:
                failures.append(LineResult(number, error=Kind.MALFORMED, detail=str(exc)))
    if not requests and not failures:
        raise QTSPError(Kind.MALFORMED, f"{path}: no requests")
    return requests, failures


def _refuse(path: Path, failures: list[LineResult]) -> QTSPError:
    """All-or-nothing: the first bad line's kind, and every bad line counted."""
    first = min(failures, key=lambda r: r.line)
    more = f" (and {len(failures) - 1} more bad lines)" if len(failures) > 1 else ""
    return QTSPError(first.error or Kind.MALFORMED, f"{path}: line {first.line}: {first.detail}{more}; nothing was issued")


# --- worker side -------------------------------------------------------------------------

_worker: dict[str, Any] = {}
# A worker's answer for one job: (certificate DER, key PEM) or (None, (error kind value, detail)).
Outcome = tuple[bytes, bytes] | tuple[None, tuple[str, str]]


def _worker_init() -> None:
    """Runs in each forked worker: load the CA Signers once (the jobs came with the fork)."""
    from ..signers import backend_for, vault

    vault._instance = None  # never share the parent's HTTP connections across fork
    data_dir = Path(_worker["data_dir"])
    _worker["signers"] = {ca_id: backend_for(ref, data_dir).signer(ref) for ca_id, ref in _worker["key_refs"].items()}
    _worker["issuers"] = {ca_id: issuer_info(_worker["config"], ca_id, x509.load_der_x509_certificate(ca.cert_der))
                          for ca_id, ca in _worker["cas"].items()}


def _worker_run(span: tuple[int, int]) -> tuple[list[Outcome], dict[str, float]]:
    results: list[Outcome] = []
    t = {"keygen": 0.0, "template": 0.0, "lint": 0.0, "sign": 0.0}
    for v, serial, issuer_id, now in _worker["jobs"][span[0] : span[1]]:
        try:
            t0 = time.perf_counter()
            key = generate_private_key(v.request.generate_key or "ecdsa-p256")
            t1 = time.perf_counter()
            tbs = issuance.template(_worker["config"], _worker["cas"][issuer_id], v, key.public_key(), Serial(serial),
                                    now, issuer=_worker["issuers"][issuer_id])
            t2 = time.perf_counter()
            signer = _worker["signers"][issuer_id]
            signing.lint(tbs, signer, v.profile)
            t3 = time.perf_counter()
            cert = signing.sign(tbs, signer)
            t4 = time.perf_counter()
        except QTSPError as exc:  # this line's refusal (lint, signer): told to the parent, the others go on
            results.append((None, (exc.kind.value, exc.detail)))
            continue
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        results.append((cert.public_bytes(serialization.Encoding.DER), key_pem))
        for name, spent in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[name] += spent
    return results, t


# --- parent side -------------------------------------------------------------------------


def issue_file(sandbox: Sandbox, path: Path, out: Path, *, workers: int | None = None, actor: str = "cli",
               keep_going: bool = False, progress: Callable[[int, int], None] | None = None) -> BulkResult:
    """Issue every request of ``path`` into ``out`` (new or empty).

    ``keep_going``: issue the good lines and report the bad ones in ``BulkResult.lines``; without
    it, a bad line raises before anything is reserved. ``progress(done, total)`` is called as each
    chunk of the valid requests is stored or refused.
    """
    start = time.perf_counter()
    steps: dict[str, float] = {}
    if out.exists() and any(out.iterdir()):
        raise QTSPError(Kind.CONFLICT, f"output directory {out} is not empty; choose another --out")
    parsed, failures = parse_requests(path)
    now = utcnow()
    psps: dict[str, PSPView] = {}
    validated, lines = [], []
    for number, request in parsed:
        try:
            if request.org_id not in psps:
                psps[request.org_id] = _psp(sandbox, request.org_id)
            validated.append(issuance.validate(sandbox, request, psps[request.org_id]))
            lines.append(number)
        except QTSPError as exc:
            failures.append(LineResult(number, error=exc.kind, detail=exc.detail))
    steps["validate"] = time.perf_counter() - start
    if failures and not keep_going:
        raise _refuse(path, failures)
    results = list(failures)
    if not validated:
        return BulkResult(0, str(out), time.perf_counter() - start, steps, 0, sorted(results, key=lambda r: r.line))

    t0 = time.perf_counter()
    with sandbox.transaction() as session:
        cas = {ca.id: ca for ca in repo.list_cas(session)}
        for ca in cas.values():
            session.expunge(ca)
    key_refs = {ca_id: ca.key.ref for ca_id, ca in cas.items() if ca.parent_id is not None}
    current = {role: issuance.issuer_for(sandbox, p) for role, p in (("qwac", profiles.QWAC), ("qseal", profiles.QSEALC))}
    issuer_ids = [current["qseal" if v.profile.qc_type == oids.QCT_ESEAL else "qwac"] for v in validated]
    serials = _unique_serials(len(validated))
    intents_by_issuer: dict[str, list[Any]] = {}
    with sandbox.transaction() as session:
        for issuer_id in set(issuer_ids):
            mine = [serial_hex(s) for s, i in zip(serials, issuer_ids) if i == issuer_id]
            intents_by_issuer[issuer_id] = repo.reserve_serials(session, issuer_id, mine, "bulk", now)
    intent_of = {(i.issuer_id, i.serial): i for group in intents_by_issuer.values() for i in group}
    steps["reserve"] = time.perf_counter() - t0

    out.mkdir(parents=True, exist_ok=True)
    workers = workers or os.cpu_count() or 1
    jobs = [(v, s, i, now) for v, s, i in zip(validated, serials, issuer_ids)]
    spans = [(n, min(n + CHUNK, len(jobs))) for n in range(0, len(jobs), CHUNK)]
    # Workers are forked: they inherit the validated jobs and CA rows instead of unpickling them.
    _worker.update(jobs=jobs, config=sandbox.config, cas=cas, key_refs=key_refs, data_dir=str(sandbox.data_dir))
    chains = {i: issuance.chain_for(sandbox, i) for i in set(issuer_ids)}
    for issuer_id, chain in chains.items():
        write_new(out / f"chain-{issuer_id}.pem", b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    worker_steps: dict[str, float] = {}
    ctx = multiprocessing.get_context("fork")
    done: set[int] = set()
    run = _Run(sandbox, jobs, lines, intent_of, out, actor, now, keep_going, progress)
    try:
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            store_time = run.collect(pool.imap(_worker_run, spans), spans, worker_steps, done)
    except BaseException:
        # Nothing acknowledged is lost: stored certificates stay; unsigned reservations are abandoned.
        leftover = [i.id for i in intent_of.values() if i.id not in done]
        with sandbox.transaction() as session:
            repo.abandon_intents(session, leftover)
        raise
    finally:
        _worker.clear()
    # Worker step times are wall-clock sums over all workers (divide by the worker count for elapsed time).
    steps.update({f"{k} (workers)": v for k, v in worker_steps.items()})
    steps["store"] = store_time
    results.extend(run.results)
    return BulkResult(run.issued, str(out), time.perf_counter() - start, steps, workers,
                      sorted(results, key=lambda r: r.line))


@dataclass
class _Run:
    """The parent's side of the workers' answers: store each chunk, write its files, note each line."""

    sandbox: Sandbox
    jobs: list[Any]
    lines: list[int]
    intent_of: dict[tuple[str, str], Any]
    out: Path
    actor: str
    now: Any
    keep_going: bool
    progress: Callable[[int, int], None] | None
    issued: int = 0
    results: list[LineResult] = field(default_factory=list)

    def collect(self, answers, spans, worker_steps, done) -> float:  # type: ignore[no-untyped-def]
        store_time = 0.0
        if self.progress is not None:
            self.progress(0, len(self.jobs))
        for span, (outcomes, spent) in zip(spans, answers):
            for name, secs in spent.items():
                worker_steps[name] = worker_steps.get(name, 0.0) + secs
            t_store = time.perf_counter()
            self._store(span, outcomes, done)
            store_time += time.perf_counter() - t_store
            if self.progress is not None:
                self.progress(span[1], len(self.jobs))
        return store_time

    def _store(self, span: tuple[int, int], outcomes: list[Outcome], done: set[int]) -> None:
        good, refused = [], []
        for index, (der, rest) in zip(range(*span), outcomes):
            (good if der is not None else refused).append((index, der, rest))
        if refused and not self.keep_going:
            index, _, (kind, detail) = refused[0]
            raise QTSPError(Kind(kind), f"line {self.lines[index]}: {detail}")
        certs = [x509.load_der_x509_certificate(der) for _, der, _ in good]
        dropped = [self.intent_of[(self.jobs[i][2], serial_hex(self.jobs[i][1]))].id for i, _, _ in refused]
        with self.sandbox.transaction() as session:
            rows = [issuance.certificate_row(c, self.jobs[i][2], self.jobs[i][0], self.now) for c, (i, _, _) in zip(certs, good)]
            intents = [self.intent_of[(row.issuer_id, row.serial)] for row in rows]
            if rows:
                repo.complete_intents(session, intents, rows)
                repo.append_audit_many(session, self.now, [
                    (self.actor, "certificate.issue", row.serial,
                     {"issuer": row.issuer_id, "profile": row.profile, "org_id": row.org_id, "roles": row.roles,
                      "dns_names": row.dns_names, "sha256": row.fingerprint_sha256, "bulk": True})
                    for row in rows])
            if dropped:  # refused after the reservation (lint, signer): the serial is never used
                repo.abandon_intents(session, dropped)
        done.update(i.id for i in intents)
        done.update(dropped)
        for row, cert, (index, _, key_pem) in zip(rows, certs, good):
            target = self.out / f"{row.serial}"
            target.mkdir()
            cert_path = write_new(target / "cert.pem", cert.public_bytes(serialization.Encoding.PEM))
            key_path = write_new(target / "key.pem", key_pem, private=True)
            self.results.append(LineResult(self.lines[index], row.serial, str(cert_path),
                                           str(self.out / f"chain-{row.issuer_id}.pem"), str(key_path)))
        self.results.extend(LineResult(self.lines[i], error=Kind(kind), detail=detail) for i, _, (kind, detail) in refused)
        self.issued += len(rows)


def _psp(sandbox: Sandbox, org_id: str) -> PSPView:
    from .register import get_psp

    try:
        return get_psp(sandbox, org_id)
    except QTSPError as exc:
        if exc.kind is Kind.NOT_FOUND:
            raise QTSPError(Kind.POLICY, f"PSP {org_id} is not in the NCA register") from None
        raise


def _unique_serials(count: int) -> list[Serial]:
    from ..core.serials import new_serial

    seen: set[int] = set()
    result = []
    while len(result) < count:
        serial = new_serial()
        if serial not in seen:
            seen.add(serial)
            result.append(serial)
    return result
