"""Bulk issuance on every core: the parent validates and records intent, workers lint and sign.

The parent process owns the database: it validates every request (nothing is issued if one
line is bad), reserves all serials in one committed transaction (step 5), then hands
(request, serial) chunks to worker processes. Each worker loads the CA Signer and the pkilint
validators once, and per certificate builds the template, lints a throwaway-key copy and signs
(steps 3, 4, 6). The parent stores each chunk in one transaction with its audit events (7, 8).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ca_store import repositories as repo

from ..core import oids, profiles
from ..core.errors import Kind, QTSPError
from ..core.keys import generate_private_key
from ..core.types import Serial, serial_hex
from ..signers.file import write_private
from . import issuance, signing
from .context import Sandbox, utcnow
from .hierarchy import issuer_info
from .register import PSPView

MAX_REQUESTS = 1_000_000
MAX_LINE = 64 * 1024
CHUNK = 50


@dataclass
class BulkResult:
    issued: int = 0
    out: str = ""
    seconds: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    workers: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"issued": self.issued, "out": self.out, "seconds": round(self.seconds, 3),
                "per_second": round(self.issued / self.seconds, 1) if self.seconds else None,
                "workers": self.workers, "step_seconds": {k: round(v, 3) for k, v in self.steps.items()}}

    def summary(self) -> str:
        rate = self.issued / self.seconds if self.seconds else 0.0
        steps = ", ".join(f"{k} {v:.2f}s" for k, v in self.steps.items())
        return f"issued {self.issued} certificates into {self.out} in {self.seconds:.1f}s ({rate:.0f}/s, {self.workers} workers; {steps})"


def parse_requests(path: Path) -> list[tuple[issuance.IssueRequest, str]]:
    requests = []
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):
            if len(raw) > MAX_LINE:
                raise QTSPError(Kind.MALFORMED, f"{path}:{number}: line longer than {MAX_LINE} bytes")
            if not raw.strip():
                continue
            if len(requests) >= MAX_REQUESTS:
                raise QTSPError(Kind.MALFORMED, f"{path}: more than {MAX_REQUESTS} requests")
            try:
                item = json.loads(raw)
                if not isinstance(item, dict):
                    raise ValueError("each line is a JSON object")
                unknown = set(item) - {"kind", "org_id", "domains", "roles", "qscd", "browser", "key_type"}
                if unknown:
                    raise ValueError(f"unknown fields {sorted(unknown)}")
                key_type = str(item.get("key_type", "ecdsa-p256"))
                request = issuance.IssueRequest(
                    kind=str(item["kind"]), org_id=str(item["org_id"]),
                    domains=tuple(str(d) for d in item.get("domains", ())),
                    generate_key=key_type, roles=item.get("roles"), qscd=bool(item.get("qscd", False)),
                    browser=bool(item.get("browser", False)),
                )
            except (ValueError, KeyError, TypeError) as exc:
                raise QTSPError(Kind.MALFORMED, f"{path}:{number}: {exc}") from None
            requests.append((request, key_type))
    if not requests:
        raise QTSPError(Kind.MALFORMED, f"{path}: no requests")
    return requests


# --- worker side -------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _worker_init() -> None:
    """Runs in each forked worker: load the CA Signers once (the jobs came with the fork)."""
    from ..signers import backend_for, vault

    vault._instance = None  # never share the parent's HTTP connections across fork
    data_dir = Path(_worker["data_dir"])
    _worker["signers"] = {ca_id: backend_for(ref, data_dir).signer(ref) for ca_id, ref in _worker["key_refs"].items()}
    _worker["issuers"] = {ca_id: issuer_info(_worker["config"], ca_id, x509.load_der_x509_certificate(ca.cert_der))
                          for ca_id, ca in _worker["cas"].items()}


def _worker_run(span: tuple[int, int]) -> tuple[list[tuple[bytes, bytes]], dict[str, float]]:
    results, t = [], {"keygen": 0.0, "template": 0.0, "lint": 0.0, "sign": 0.0}
    for v, serial, issuer_id, now in _worker["jobs"][span[0] : span[1]]:
        t0 = time.perf_counter()
        key = generate_private_key(v.request.generate_key or "ecdsa-p256")
        t1 = time.perf_counter()
        tbs = issuance.template(_worker["config"], _worker["cas"][issuer_id], v, key.public_key(), Serial(serial), now,
                                issuer=_worker["issuers"][issuer_id])
        t2 = time.perf_counter()
        signer = _worker["signers"][issuer_id]
        signing.lint(tbs, signer, v.profile)
        t3 = time.perf_counter()
        cert = signing.sign(tbs, signer)
        t4 = time.perf_counter()
        key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        results.append((cert.public_bytes(serialization.Encoding.DER), key_pem))
        for name, span in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            t[name] += span
    return results, t


# --- parent side -------------------------------------------------------------------------


def issue_file(sandbox: Sandbox, path: Path, out: Path, *, workers: int | None = None, actor: str = "cli") -> BulkResult:
    start = time.perf_counter()
    steps: dict[str, float] = {}
    if out.exists() and any(out.iterdir()):
        raise QTSPError(Kind.CONFLICT, f"output directory {out} is not empty; choose another --out")
    parsed = parse_requests(path)
    now = utcnow()
    psps: dict[str, PSPView] = {}
    validated = []
    for number, (request, _key_type) in enumerate(parsed, 1):
        try:
            if request.org_id not in psps:
                psps[request.org_id] = _psp(sandbox, request.org_id)
            validated.append(issuance.validate(sandbox, request, psps[request.org_id]))
        except QTSPError as exc:
            raise QTSPError(exc.kind, f"request {number}: {exc.detail}") from None
    steps["validate"] = time.perf_counter() - start

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
        (out / f"chain-{issuer_id}.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain))
    worker_steps: dict[str, float] = {}
    ctx = multiprocessing.get_context("fork")
    done: set[int] = set()
    try:
        with ctx.Pool(workers, initializer=_worker_init) as pool:
            issued, store_time = _collect(sandbox, pool.imap(_worker_run, spans), spans, jobs, intent_of, out,
                                          worker_steps, done, actor, now)
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
    return BulkResult(issued, str(out), time.perf_counter() - start, steps, workers)


def _collect(sandbox, results_iter, spans, jobs, intent_of, out, worker_steps, done, actor, now):  # type: ignore[no-untyped-def]
    issued, store_time = 0, 0.0
    for span, (results, spent) in zip(spans, results_iter):
        chunk = jobs[span[0] : span[1]]
        for name, secs in spent.items():
            worker_steps[name] = worker_steps.get(name, 0.0) + secs
        t_store = time.perf_counter()
        certs = [x509.load_der_x509_certificate(der) for der, _ in results]
        with sandbox.transaction() as session:
            rows = [issuance.certificate_row(c, job[2], job[0], now) for c, job in zip(certs, chunk)]
            intents = [intent_of[(row.issuer_id, row.serial)] for row in rows]
            repo.complete_intents(session, intents, rows)
            repo.append_audit_many(session, now, [
                (actor, "certificate.issue", row.serial,
                 {"issuer": row.issuer_id, "profile": row.profile, "org_id": row.org_id, "roles": row.roles,
                  "dns_names": row.dns_names, "sha256": row.fingerprint_sha256, "bulk": True})
                for row in rows])
        for row, (der, key_pem) in zip(rows, results):
            target = out / f"{row.serial}"
            target.mkdir()
            (target / "cert.pem").write_bytes(x509.load_der_x509_certificate(der).public_bytes(serialization.Encoding.PEM))
            write_private(target / "key.pem", key_pem)
        done.update(i.id for i in intents)
        issued += len(rows)
        store_time += time.perf_counter() - t_store
    return issued, store_time


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
