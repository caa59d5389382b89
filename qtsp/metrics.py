"""Prometheus counters and histograms, importable by services without pulling in Flask.

Under `qtsp serve` every process (each web worker, the scheduler) writes its values to its own file
in the server's metrics directory (prometheus_client's multiprocess mode), and /metrics adds them
up. prometheus_client chooses between in-memory and file-backed values when it is first imported,
from PROMETHEUS_MULTIPROC_DIR, and a metric keeps the kind of value it was made with. `qtsp`
imports this module long before `serve` knows its directory, and granian and gunicorn fork their
workers from that process; so the metrics here are made on first use, and ``use_directory``
switches a process to files before any worker is forked. (Made at import, as they were, the
workers counted in memory and /metrics, reading the files, never moved.)

Each server has its own directory, ``run/metrics/serve-<pid>`` under the data dir, locked while
it runs: a second server on the same data dir can neither wipe nor mix with the first one's files;
a server removes its directory when it stops, and the next one to start removes any left by a
server that was killed.

``qtsp revoke`` revokes in its own short-lived process: ``recording_in`` makes that one process
write into ``run/metrics/cli`` of the data dir, which every server's /metrics adds to its own.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import threading
from pathlib import Path
from typing import IO, Any, Generic, TypeVar, cast
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.registry import Collector

from . import files

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
METRICS_DIR = Path("run") / "metrics"  # under the data dir
CLI_DIR = METRICS_DIR / "cli"  # under the data dir: what CLI processes (qtsp revoke) recorded
CLI_SLOTS = 64  # CLI processes recording at once; one more records nothing rather than wait

M = TypeVar("M", bound=Collector)


class _Lazy(Generic[M]):
    """A metric made on first use (and made again after the process switches where values live)."""

    def __init__(self, make: Callable[[], M]) -> None:
        self._make = make
        self._metric: M | None = None
        self._lock = threading.Lock()

    def _get(self) -> M:
        metric = self._metric
        if metric is None:
            with self._lock:
                if self._metric is None:
                    self._metric = self._make()
                metric = self._metric
        return metric

    def _drop(self) -> None:
        with self._lock:
            if self._metric is not None:
                REGISTRY.unregister(self._metric)
                self._metric = None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._get(), name)


_ALL: list[_Lazy[Any]] = []


def _lazy(kind: Callable[..., M], *args: Any, **kwargs: Any) -> M:
    made = _Lazy(lambda: kind(*args, **kwargs))
    _ALL.append(made)
    return cast(M, made)  # callers see the prometheus_client type


OCSP_REQUESTS = _lazy(Counter, "qtsp_ocsp_requests_total", "OCSP requests by method and outcome", ["method", "outcome"])
HTTP_REQUESTS = _lazy(Counter, "qtsp_http_requests_total", "HTTP requests by endpoint and outcome", ["endpoint", "outcome"])
REVOCATION_TO_PUBLICATION = _lazy(
    Histogram,
    "qtsp_revocation_to_publication_seconds",
    "From receiving a revocation to the re-signed OCSP response being committed",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
NCA_PUBLICATION = _lazy(
    Histogram,
    "qtsp_nca_request_to_publication_seconds",
    "From receiving an NCA request to its revocations being published in OCSP (limit: 24 h, EN 319 411-1)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60, 3600, 86400),
)
JOB_FAILURES = _lazy(Counter, "qtsp_job_failures_total", "Scheduled job runs that failed (they retry with backoff)", ["job"])
# Per refresh-ocsp run and issuer: certificates re-signed, skipped (their CA has no OCSP responder: CRL
# only) or failed (left due; retried by the next run). One bad issuer never holds back the others.
OCSP_REFRESH = _lazy(Counter, "qtsp_ocsp_refresh_certificates_total",
                     "Certificates the OCSP refresh job re-signed, skipped (no responder: CRL only) or failed, by issuer",
                     ["issuer", "outcome"])
CRL_GENERATION = _lazy(Histogram, "qtsp_crl_generation_seconds", "Time to build, sign and store one CRL",
                       buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30))


_ocsp_children: dict[tuple[str, str], Any] = {}


def ocsp_request(method: str, outcome: str) -> None:
    child = _ocsp_children.get((method, outcome))
    if child is None:
        child = _ocsp_children[(method, outcome)] = OCSP_REQUESTS.labels(method, outcome)
    child.inc()


def http_request(endpoint: str, outcome: int | str) -> None:
    HTTP_REQUESTS.labels(endpoint, str(outcome)).inc()


def _remake(value_class: Any) -> None:
    from prometheus_client import values

    values.ValueClass = value_class
    _ocsp_children.clear()
    for metric in _ALL:
        metric._drop()


def use_directory(directory: Path, process_identifier: Callable[[], Any] = os.getpid) -> None:
    """From now on, this process and those it forks or starts write their values to files in ``directory``
    (one file per process and metric type: ``process_identifier`` must differ between live writers)."""
    from prometheus_client import values

    os.environ[MULTIPROC_ENV] = str(directory)  # processes started from here (the scheduler) pick it at import
    _remake(values.MultiProcessValue(process_identifier))


@contextlib.contextmanager
def server_directory(data_dir: Path) -> Iterator[Path]:
    """A fresh metrics directory for this server, locked until the block ends, then removed.

    The lock is an flock held by this process and the workers it forks: a directory whose lock can be
    taken belongs to no live server. Claiming happens under ``run/metrics/.lock``, so two servers
    starting at once never take each other's directory for a dead one's."""
    root = data_dir / METRICS_DIR
    files.ensure_dir(root, own=False)
    with files.open_lock(root / ".lock") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # held for milliseconds by another server starting
        for old in root.glob("serve-*"):
            if not _locked(old / "lock"):
                shutil.rmtree(old, ignore_errors=True)
        own = root / f"serve-{os.getpid()}"
        files.ensure_dir(own, own=False)
        lock = files.open_lock(own / "lock")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    try:
        yield own
    finally:
        shutil.rmtree(own, ignore_errors=True)
        lock.close()


def _locked(path: Path) -> bool:
    try:
        with files.open_lock(path) as handle:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False  # unreadable: not a live server's either
    return False


@contextlib.contextmanager
def recording_in(data_dir: Path) -> Iterator[None]:
    """Inside the block, this process's metrics go to the data dir's CLI files, which /metrics adds up.

    Concurrent CLI processes each hold one of CLI_SLOTS file locks and write only that slot's files,
    which carry on from the values there (a process id would leave one file per run). When the files
    cannot be used (a read-only data dir, every slot taken), the block runs and records nothing
    here: a metric never stops a revocation."""
    from prometheus_client import values

    saved_env, saved_class = os.environ.get(MULTIPROC_ENV), values.ValueClass
    lock: IO[bytes] | None = None
    try:
        if not data_dir.is_dir():
            raise FileNotFoundError(data_dir)  # never made here
        directory = data_dir / CLI_DIR
        files.ensure_dir(directory, own=False)
        lock, slot = _take_slot(directory)
        use_directory(directory, lambda: f"cli-{slot}")
        for metric in _ALL:
            metric._get()  # open the files now, before the block does anything
    except OSError:
        _close_files()
        _restore(saved_env, saved_class)
        if lock is not None:
            lock.close()
        lock = None
    try:
        yield
    finally:
        if lock is not None:
            _close_files()
            _restore(saved_env, saved_class)
            lock.close()


def _take_slot(directory: Path) -> tuple[IO[bytes], int]:
    for slot in range(CLI_SLOTS):
        handle = files.open_lock(directory / f"slot-{slot}.lock")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        return handle, slot
    raise BlockingIOError(f"all {CLI_SLOTS} metric slots in {directory} are taken")


def _close_files() -> None:
    from prometheus_client import values

    close = getattr(values.ValueClass, "close_all_files", None)  # file-backed values only
    if close is not None:
        close()


def _restore(env: str | None, value_class: Any) -> None:
    if env is None:
        os.environ.pop(MULTIPROC_ENV, None)
    else:
        os.environ[MULTIPROC_ENV] = env
    _remake(value_class)
