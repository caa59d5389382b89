"""Scheduled jobs (APScheduler 3), each a call into a service, run by exactly one process.

Every `qtsp scheduler` process (and the one `qtsp serve` starts) competes for a lease row in
the database. The holder runs APScheduler with its job store in the same database; the others
stand by and take over within ``LEASE_SECONDS`` when the holder stops renewing.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import socket
import threading
import time
import uuid
from pathlib import Path

from .clock import utcnow
from .metrics import JOB_FAILURES
from .services import lease
from .services.context import Sandbox, open_sandbox

log = logging.getLogger("qtsp.scheduler")
LEASE_NAME = "scheduler"
LEASE_SECONDS = float(os.environ.get("QTSP_SCHEDULER_LEASE_SECONDS", "15"))
RENEW_SECONDS = LEASE_SECONDS / 3

# --- jobs: each a call into a service, on the sandbox of the scheduler that runs it ---------------

_skipped_seen: dict[str, dict[str, int]] = {}  # data dir -> what the last refresh skipped (logged on change)


def job_refresh_ocsp(sandbox: Sandbox) -> int:
    """Failures are the service's to isolate and count (per issuer, per certificate): this job fails
    only when the store itself does."""
    from .services import ocsp_refresh

    report = ocsp_refresh.refresh_due(sandbox, utcnow())
    if report.responses:
        log.info("re-signed %d OCSP responses", report.responses)
    skipped = {str(k): v for k, v in report.skipped.items()}
    if skipped != _skipped_seen.get(str(sandbox.data_dir)):
        _skipped_seen[str(sandbox.data_dir)] = skipped
        for issuer, n in sorted(skipped.items()):
            log.info("OCSP refresh skips %s: no OCSP responder, its %d certificates are in its CRL only", issuer, n)
    return report.responses


def job_publish_dirty_crls(sandbox: Sandbox) -> int:
    from .services import crl

    count = crl.regenerate_dirty(sandbox, utcnow())
    if count:
        log.info("published %d CRLs after revocations", count)
    return count


def job_refresh_crls(sandbox: Sandbox) -> int:
    from .services import crl

    count = crl.regenerate_due(sandbox, utcnow())
    if count:
        log.info("refreshed %d CRLs before nextUpdate", count)
    return count


def job_rotate_keys(sandbox: Sandbox) -> int:
    from .services import keys

    done = keys.run_due(sandbox, utcnow())
    for line in done:
        log.info("%s", line)
    return len(done)


def job_publish_trusted_list(sandbox: Sandbox) -> int:
    """Keep the sandbox Trusted List current without waiting for a reader: a new sequence after a CA
    rollover, and a fresh list before half its validity (it is also rebuilt on demand at /tl.xml)."""
    from .services import trusted_list

    with sandbox.transaction() as session:
        before = trusted_list.latest(session)
    record = trusted_list.current(sandbox, utcnow())
    if before is None or record.sequence != before.sequence:
        log.info("published Trusted List sequence %d", record.sequence)
        return 1
    return 0


class Jobs:
    """The jobs of one sandbox and their backoff state: what a scheduler runs (``LeaderScheduler.jobs``)."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self._backoff: dict[str, list[float]] = {}  # job id -> [failures in a row, monotonic time of the next try]

    def run(self, job_id: str) -> int:
        """Run a job; on failure log one line, count it, and back off (1, 2, 4 ... 300 s) before retrying.

        A Vault that is down or sealed makes signing jobs fail; the backlog (OCSP refresh, CRLs)
        catches up on the first run after it returns, since every job works from the store's state.
        """
        func = {name: f for name, f, _ in JOBS}[job_id]
        state = self._backoff.setdefault(job_id, [0, 0.0])
        if time.monotonic() < state[1]:
            return 0
        try:
            result = func(self.sandbox)
        except Exception as exc:  # noqa: BLE001 - a job must never kill the scheduler
            state[0] += 1
            delay = min(300.0, 2.0 ** (state[0] - 1))
            state[1] = time.monotonic() + delay
            JOB_FAILURES.labels(job_id).inc()
            log.warning("job %s failed (%s: %s); retrying in %.0f s", job_id, type(exc).__name__, exc, delay)
            return 0
        if state[0]:
            log.info("job %s recovered after %d failures", job_id, state[0])
        state[0], state[1] = 0, 0.0
        return result


# The Jobs of the schedulers leading in this process, by data dir. APScheduler's database job store
# keeps a job's function by module path and its arguments pickled, so a stored job reaches its
# scheduler's Jobs through ``run_job`` and this table, filled and emptied as leadership comes and goes.
_leading: dict[str, Jobs] = {}


def run_job(job_id: str, data_dir: str) -> int:
    """The entry the job store references (picklable by name): the job, by the scheduler leading for
    ``data_dir`` in this process; with none, once, on a sandbox opened for this run."""
    jobs = _leading.get(data_dir)
    if jobs is not None:
        return jobs.run(job_id)
    sandbox = open_sandbox(Path(data_dir))
    try:
        return Jobs(sandbox).run(job_id)
    finally:
        sandbox.engine.dispose()


JOBS = (
    ("refresh-ocsp", job_refresh_ocsp, 60),
    ("publish-dirty-crls", job_publish_dirty_crls, 1),
    ("refresh-crls", job_refresh_crls, 300),
    ("rotate-keys", job_rotate_keys, 600),
    ("publish-trusted-list", job_publish_trusted_list, 300),
)


def try_lease(sandbox: Sandbox, holder: str, now: dt.datetime, seconds: float = LEASE_SECONDS) -> bool:
    """Take or renew the scheduler's lease; True if ``holder`` holds it until now + seconds."""
    return lease.try_lease(sandbox, LEASE_NAME, holder, now, seconds)


def release(sandbox: Sandbox, holder: str) -> None:
    lease.release(sandbox, LEASE_NAME, holder)


class LeaderScheduler:
    def __init__(self, data_dir: Path, *, holder: str | None = None) -> None:
        self.data_dir = data_dir.resolve()
        self.sandbox = open_sandbox(self.data_dir)
        self.jobs = Jobs(self.sandbox)
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._scheduler = None
        self._stop = threading.Event()

    @property
    def leading(self) -> bool:
        return self._scheduler is not None

    def _start_jobs(self) -> None:
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
        from apscheduler.schedulers.background import BackgroundScheduler

        scheduler = BackgroundScheduler(
            jobstores={"default": SQLAlchemyJobStore(engine=self.sandbox.engine, tablename="apscheduler_jobs")},
            executors={"default": ThreadPoolExecutor(2)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 30},
            timezone=dt.timezone.utc,
        )
        for job_id, _func, seconds in JOBS:
            scheduler.add_job(run_job, "interval", seconds=seconds, id=job_id, replace_existing=True,
                              args=[job_id, str(self.data_dir)], next_run_time=utcnow())
        _leading[str(self.data_dir)] = self.jobs
        scheduler.start()
        self._scheduler = scheduler
        log.info("scheduler %s leads: jobs %s", self.holder, ", ".join(j[0] for j in JOBS))

    def _stop_jobs(self, why: str = "lost the lease; standing by") -> None:
        if self._scheduler is not None:
            self._scheduler.shutdown(wait=True)
            self._scheduler = None
            _leading.pop(str(self.data_dir), None)
            log.warning("scheduler %s %s", self.holder, why)

    def tick(self) -> bool:
        """One lease round: lead, keep leading, or stand by."""
        if try_lease(self.sandbox, self.holder, utcnow()):
            if not self.leading:
                self._start_jobs()
        else:
            self._stop_jobs()
        return self.leading

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # keep the loop alive; the store may come back
                log.exception("lease round failed")
                self._stop_jobs()
            self._stop.wait(RENEW_SECONDS)
        self._stop_jobs("stopping")
        try:
            release(self.sandbox, self.holder)
        except Exception:
            log.exception("could not release the lease")

    def stop(self) -> None:
        self._stop.set()
