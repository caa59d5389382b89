"""``qtsp serve``, ``qtsp scheduler`` and ``qtsp revoke``."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import click

from qtsp.services import revocation
from qtsp.services.context import open_sandbox

from .output import common, data_dir, emit, no_time_travel


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="processes (default: CPU count)")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="threads per process")
@click.option("--server", type=click.Choice(["granian", "gunicorn"]), default="granian", show_default=True,
              help="WSGI server: granian (measured ~6x gunicorn's request rate here) or gunicorn (gthread)")
@click.option("--no-scheduler", is_flag=True, help="do not start the scheduler (another process runs it)")
@common
@no_time_travel
def serve(host: str, port: int, workers: int | None, threads: int, server: str, no_scheduler: bool) -> None:
    """Run the service (OCSP, CRLs, AIA, REST API), and the scheduler beside it."""
    directory = data_dir().resolve()
    open_sandbox(directory).engine.dispose()  # fail fast, with a clear message, before starting workers
    metrics_dir = directory / "run" / "metrics"
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    os.environ["QTSP_DATA_DIR"] = str(directory)
    workers = workers or os.cpu_count() or 2
    scheduler = None
    if not no_scheduler:
        scheduler = subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler", "--data-dir", str(directory)])
    click.echo(f"qtsp serving on http://{host}:{port} with {server}, {workers} workers  (OCSP /ocsp, CRLs /crl/<ca>.crl, "
               "CA certificates /ca/<ca>.der, API /api/v1, health /healthz, metrics /metrics)", err=True)
    try:
        if server == "granian":
            _run_granian(host, port, workers, threads)
        else:
            _run_gunicorn(host, port, workers, threads)
    finally:
        if scheduler is not None:
            scheduler.send_signal(signal.SIGTERM)
            try:
                scheduler.wait(timeout=20)
            except subprocess.TimeoutExpired:
                scheduler.kill()


# Limits against hostile or broken clients (proved by tests/test_limits.py):
# - a request head (request line and headers) over HEAD_LIMIT is refused: HTTP/1.1 answers 431 and closes, HTTP/2
#   refuses the stream. The longest legitimate head is an OCSP GET of a 16 KiB request (~22 KiB of base64).
# - a client has HEADER_TIMEOUT_MS from its first byte to send the whole head (slow clients, "slowloris"); an idle
#   keep-alive connection is closed after the same time.
# - granian holds one "backpressure" permit per open connection and stops accepting when a worker has none left; its
#   default (backlog / workers, 1024 here) let ~2000 idle connections stop the whole service. Allow far more,
#   below the file descriptor limit (granian raises the soft limit to the hard one when it loads).
HEAD_LIMIT = 48 * 1024
HEADER_TIMEOUT_MS = 10_000
MAX_CONNECTIONS_PER_WORKER = 8192


def _connections_per_worker() -> int:
    import resource

    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS_PER_WORKER
    return max(64, min(MAX_CONNECTIONS_PER_WORKER, hard - 256))  # leave descriptors for the database, logs, keys


def _run_granian(host: str, port: int, workers: int, threads: int) -> None:
    from granian import Granian
    from granian.constants import Interfaces
    from granian.http import HTTP1Settings, HTTP2Settings

    Granian("qtsp.web.wsgi:app", address=host, port=port, interface=Interfaces.WSGI, workers=workers,
            blocking_threads=threads, backlog=2048, backpressure=_connections_per_worker(),
            http1_settings=HTTP1Settings(header_read_timeout=HEADER_TIMEOUT_MS, max_buffer_size=HEAD_LIMIT),
            http2_settings=HTTP2Settings(max_headers_size=HEAD_LIMIT),
            log_access=False, respawn_failed_workers=True).serve()


def _run_gunicorn(host: str, port: int, workers: int, threads: int) -> None:
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {"bind": f"{host}:{port}", "workers": workers, "threads": threads, "worker_class": "gthread",
                        "keepalive": 30, "timeout": 60, "graceful_timeout": 10, "accesslog": None,
                        "limit_request_line": 4094, "limit_request_fields": 50, "limit_request_field_size": 8190}
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self):  # type: ignore[no-untyped-def]
            from qtsp.web.wsgi import app

            return app

    _App().run()


@click.command("scheduler")
@common
@no_time_travel
def scheduler_cmd() -> None:
    """Run the scheduled jobs (OCSP refresh, CRL publication); one process leads, others stand by."""
    from qtsp.scheduler import LeaderScheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    logging.getLogger("apscheduler").setLevel(logging.WARNING)  # one line per job run every second is noise
    logging.getLogger("alembic").setLevel(logging.WARNING)
    leader = LeaderScheduler(data_dir())
    signal.signal(signal.SIGTERM, lambda *_: leader.stop())
    signal.signal(signal.SIGINT, lambda *_: leader.stop())
    leader.run()


@click.command()
@click.argument("serial")
@click.option("--reason", type=click.Choice(revocation.REASON_CHOICES), default="unspecified", show_default=True)
@click.option("--issuer", help="issuing CA id, if the serial is not unique")
@common
def revoke(serial: str, reason: str, issuer: str | None) -> None:
    """Revoke a certificate; OCSP says so before this returns, the CRL follows within seconds."""
    result = revocation.revoke(open_sandbox(data_dir()), serial, reason, issuer_id=issuer, actor="cli")
    data = {"serial": result.serial, "issuer": result.issuer_id, "reason": result.reason,
            "revoked_at": result.revoked_at.isoformat(), "reason_changed_from": result.changed_reason_from}
    emit(data, lambda: f"revoked {result.serial} ({result.reason}) at {result.revoked_at:%Y-%m-%d %H:%M:%S}Z"
         + (f"; reason changed from {result.changed_reason_from}" if result.changed_reason_from else ""))
