"""``qtsp serve``, ``qtsp scheduler`` and ``qtsp revoke``."""

from __future__ import annotations

import errno
import logging
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any
from collections.abc import Callable

import click

from qtsp import metrics
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.types import IssuerId
from qtsp.logging_setup import ACCESS_LOG_ENV, FORMAT_ENV, FORMATS, LEVEL_ENV, LEVELS, LogSettings, dict_config
from qtsp.logging_setup import configure as configure_logging
from qtsp.services import revocation
from qtsp.services.context import open_sandbox
from qtsp.web.limits import METRICS_TOKEN_ENV, THREADS_ENV

from .output import common, data_dir, emit, no_time_travel


def _log_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = click.option("--log-format", type=click.Choice(FORMATS, case_sensitive=False), default="text",
                        envvar=FORMAT_ENV, show_default=True,
                        help=f"text, or json: one object per line (${FORMAT_ENV})")(func)
    return click.option("--log-level", type=click.Choice(list(LEVELS), case_sensitive=False), default="info",
                        envvar=LEVEL_ENV, show_default=True, help=f"debug, info, warning or error (${LEVEL_ENV})")(func)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="default: the port of the sandbox's base_url (the one its certificates name; 8080 unless set)")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="processes (default: CPU count)")
@click.option("--threads", type=click.IntRange(1, 64), default=4, show_default=True, help="threads per process")
@click.option("--server", type=click.Choice(["granian", "gunicorn"]), default="granian", show_default=True,
              help="WSGI server: granian (measured ~6x gunicorn's request rate here) or gunicorn (gthread)")
@click.option("--no-scheduler", is_flag=True, help="do not start the scheduler (another process runs it)")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="serve HTTPS directly: the server certificate (PEM, chain after it); needs --tls-key")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="the private key of --tls-cert (PEM, unencrypted; keep it readable by this user only)")
@click.option("--metrics-token-file", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              envvar=METRICS_TOKEN_ENV, help=f"/metrics answers only with this bearer token (${METRICS_TOKEN_ENV}); "
              "/healthz stays public")
@_log_options
@click.option("--access-log/--no-access-log", default=True, envvar=ACCESS_LOG_ENV, show_default=True,
              help=f"one line per request (${ACCESS_LOG_ENV}=0: off, e.g. for benchmarks); X-Request-ID is returned either way")
@common
@no_time_travel
def serve(host: str, port: int | None, workers: int | None, threads: int, server: str, no_scheduler: bool,
          tls_cert: Path | None, tls_key: Path | None, metrics_token_file: Path | None,
          log_level: str, log_format: str, access_log: bool) -> None:
    """Run the service (OCSP, CRLs, AIA, REST API), and the scheduler beside it."""
    settings = LogSettings(log_level.lower(), log_format.lower(), access_log)
    tls = _tls_files(tls_cert, tls_key)
    if metrics_token_file is not None:
        _check_metrics_token(metrics_token_file)
        os.environ[METRICS_TOKEN_ENV] = str(metrics_token_file.resolve())
    else:
        os.environ.pop(METRICS_TOKEN_ENV, None)
    directory = data_dir().resolve()
    if port is None:
        port = _configured_port(directory)
    _check_port(host, port)  # before anything is touched: a server already there keeps its port and its files
    sandbox = open_sandbox(directory)  # fail fast, with a clear message, before starting workers
    base = sandbox.config.base
    sandbox.engine.dispose()
    configure_logging(settings)
    os.environ["QTSP_DATA_DIR"] = str(directory)
    os.environ.update(settings.to_env())  # the workers and the scheduler log as this process does
    workers = workers or os.cpu_count() or 2
    with metrics.server_directory(directory) as metrics_dir:
        metrics.use_directory(metrics_dir)  # before the workers fork: they count in files /metrics adds up
        scheduler = None
        if not no_scheduler:
            scheduler = subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler", "--data-dir", str(directory),
                                          "--log-level", settings.level, "--log-format", settings.format])
        _announce(host, port, base, server, workers, threads, scheduler is not None, settings, tls is not None)
        try:
            if server == "granian":
                _run_granian(host, port, workers, threads, settings, tls)
            else:
                _run_gunicorn(host, port, workers, threads, settings, tls)
        finally:
            if scheduler is not None:
                scheduler.send_signal(signal.SIGTERM)
                try:
                    scheduler.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    scheduler.kill()


MIN_METRICS_TOKEN = 16


def _tls_files(cert: Path | None, key: Path | None) -> tuple[Path, Path] | None:
    """Both files or neither; checked now (that they load and belong together), with a message that never
    shows the key, rather than by a worker that would die at its first connection."""
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise QTSPError(Kind.MALFORMED, "--tls-cert and --tls-key go together: give both, or neither for plain HTTP")
    import ssl

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert, key, password=lambda: b"")  # an encrypted key fails here, never prompts
    except ssl.SSLError as exc:
        raise QTSPError(Kind.MALFORMED, f"--tls-cert {cert} / --tls-key {key}: not a PEM certificate and its "
                        f"unencrypted private key ({exc.reason or 'unreadable'})") from None
    except OSError as exc:
        raise QTSPError(Kind.MALFORMED, f"--tls-cert / --tls-key: {exc.strerror}") from None
    return cert.resolve(), key.resolve()


def _check_metrics_token(path: Path) -> None:
    try:
        token = path.read_text().strip()
    except (OSError, UnicodeDecodeError):
        raise QTSPError(Kind.MALFORMED, f"--metrics-token-file {path}: not a readable text file") from None
    if len(token) < MIN_METRICS_TOKEN or any(c.isspace() for c in token):
        raise QTSPError(Kind.MALFORMED, f"--metrics-token-file {path}: the token must be one word of at least "
                        f"{MIN_METRICS_TOKEN} characters (e.g. `openssl rand -hex 32 > {path.name}`)")


def _configured_port(directory: Path) -> int:
    """The port the sandbox's certificates name (its base_url), so that a plain `qtsp serve` answers
    where they send relying parties; the default port when there is no readable configuration yet
    (opening the sandbox then says what is wrong)."""
    from qtsp import config as config_mod

    path = directory / config_mod.CONFIG_NAME
    if not path.is_file():
        return config_mod.DEFAULT_PORT
    try:
        return config_mod.load(path).service_port
    except QTSPError:
        return config_mod.DEFAULT_PORT


def _check_port(host: str, port: int) -> None:
    """Refuse an address another process listens on.

    granian binds with SO_REUSEPORT, so a second server on a taken port would start and silently
    share the traffic with the first. A plain bind (SO_REUSEADDR only, so that connections of a
    server that just stopped, in TIME_WAIT, do not count) fails on any listener, SO_REUSEPORT or not."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM,
                                                             flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        raise QTSPError(Kind.MALFORMED, f"--host {host}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise QTSPError(Kind.CONFLICT, f"{_url(host, port)} is already in use: another server listens there "
                                "(stop it, or choose another --port)") from None
            raise QTSPError(Kind.MALFORMED, f"cannot listen on {_url(host, port)}: {exc.strerror}") from None


def _url(host: str, port: int, scheme: str = "http") -> str:
    return f"{scheme}://[{host}]:{port}" if ":" in host else f"{scheme}://{host}:{port}"


def _announce(host: str, port: int, base: str, server: str, workers: int, threads: int, scheduler: bool,
              settings: LogSettings, tls: bool = False) -> None:
    """Where the service answers, in the log format chosen (and whatever the level: it is the command's output)."""
    log = logging.getLogger("qtsp.serve")
    scheme = "https" if tls else "http"
    url = _url(host, port, scheme)
    if host in ("0.0.0.0", "::"):
        local = "127.0.0.1" if host == "0.0.0.0" else "::1"
        where = f"port {port} on every interface (e.g. {_url(local, port, scheme)})"
        url = _url(local, port, scheme)
    else:
        where = url
    log.info("qtsp serving on %s with %s, %d workers x %d threads, scheduler %s; log level %s, %s, access log %s",
             where, server, workers, threads, "on" if scheduler else "off", settings.level, settings.format,
             "on" if settings.access_log else "off")
    log.info("OCSP %s/ocsp, CRLs %s/crl/<ca>.crl, CA certificates %s/ca/<ca>.der, API %s/api/v1, health %s/healthz, "
             "metrics %s/metrics%s", url, url, url, url, url, url,
             " (bearer token required)" if os.environ.get(METRICS_TOKEN_ENV) else "")
    if base.rstrip("/") != url:
        log.info("certificates issued here point relying parties at %s (base_url): it must reach this server", base)


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


def _run_granian(host: str, port: int, workers: int, threads: int, settings: LogSettings,
                 tls: tuple[Path, Path] | None) -> None:
    from granian import Granian
    from granian.constants import Interfaces, SSLProtocols
    from granian.http import HTTP1Settings, HTTP2Settings
    from granian.log import LogLevels

    # The RSGI front (qtsp/web/front.py) awaits each body on the worker's event loop, within a deadline and a
    # size bound, and only then runs the WSGI app on one of `threads` threads: a slow client never holds one.
    os.environ[THREADS_ENV] = str(threads)
    Granian("qtsp.web.front:app", address=host, port=port, interface=Interfaces.RSGI, workers=workers,
            blocking_threads=1, backlog=2048, backpressure=_connections_per_worker(),
            http1_settings=HTTP1Settings(header_read_timeout=HEADER_TIMEOUT_MS, max_buffer_size=HEAD_LIMIT),
            http2_settings=HTTP2Settings(max_headers_size=HEAD_LIMIT),
            ssl_cert=tls[0] if tls else None, ssl_key=tls[1] if tls else None,
            ssl_protocol_min=SSLProtocols.tls12,  # TLS 1.2 and 1.3, as BSI TR-02102-2 and the banks' gateways allow
            log_access=False,  # ours (qtsp.web.access_log) also covers the OCSP fast path and carries request ids
            log_level=LogLevels(settings.level), log_dictconfig=dict_config(settings),
            respawn_failed_workers=True).serve()


def _run_gunicorn(host: str, port: int, workers: int, threads: int, settings: LogSettings,
                  tls: tuple[Path, Path] | None) -> None:
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):  # type: ignore[misc, unused-ignore]  # gunicorn ships no types: subclassing Any
        def load_config(self) -> None:
            # gthread, with the head and body of each request buffered by the main loop, within deadlines and
            # bounds, before a thread takes it (qtsp/web/gunicorn_worker.py): a slow client never holds one.
            from qtsp.web.gunicorn_worker import BufferedThreadWorker

            options = {"bind": f"{host}:{port}", "workers": workers, "threads": threads,
                       "worker_class": BufferedThreadWorker, "worker_connections": _connections_per_worker(),
                       "keepalive": 30, "timeout": 60, "graceful_timeout": 10, "accesslog": None,
                       "loglevel": settings.level, "logconfig_dict": dict_config(settings),
                       "limit_request_line": 4094, "limit_request_fields": 50, "limit_request_field_size": 8190,
                       # gunicorn 27's control socket is one path per user (~/.gunicorn/gunicorn.ctl): a second
                       # server would take it over from the first. Nothing here uses it.
                       "control_socket_disable": True}
            if tls:  # the handshake runs in the worker's main loop, non-blocking (qtsp/web/gunicorn_worker.py)
                options.update({"certfile": str(tls[0]), "keyfile": str(tls[1])})
            for key, value in options.items():
                self.cfg.set(key, value)

        def load(self) -> Any:  # the Flask app (WSGI)
            from qtsp.web.wsgi import app

            return app

    _App().run()


@click.command("scheduler")
@_log_options
@common
@no_time_travel
def scheduler_cmd(log_level: str, log_format: str) -> None:
    """Run the scheduled jobs (OCSP refresh, CRL publication); one process leads, others stand by."""
    from qtsp.scheduler import LeaderScheduler

    configure_logging(LogSettings(log_level.lower(), log_format.lower(), access_log=False))
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
    sandbox = open_sandbox(data_dir())
    # Its revocation-to-publication time goes where every server's /metrics finds it (see qtsp/metrics.py).
    with metrics.recording_in(sandbox.data_dir):
        result = revocation.revoke(sandbox, serial, reason, issuer_id=None if issuer is None else IssuerId(issuer),
                                   actor="cli")
    data = {"serial": result.serial, "issuer": result.issuer_id, "reason": result.reason,
            "revoked_at": result.revoked_at.isoformat(), "reason_changed_from": result.changed_reason_from,
            "published_in": result.published_in, "note": result.note}
    emit(data, lambda: f"revoked {result.serial} ({result.reason}) at {result.revoked_at:%Y-%m-%d %H:%M:%S}Z"
         + (f"; reason changed from {result.changed_reason_from}" if result.changed_reason_from else "")
         + (f"; {result.note}" if result.note else ""))
