"""The OCSP responder: a WSGI fast path in front of Flask (RFC 6960, RFC 5019 profile).

Pre-signed single-certificate answers come from the store and are kept in an in-process cache
keyed by the request bytes; a revocation anywhere on the host bumps a shared generation counter,
and every worker drops its cache on the next request. Only nonce and multi-certificate requests
(and serials we never issued) are signed on demand.

The simulator (issue 7) adds two ways off that path, both signed on demand and never cached: a
behaviour set for the CA or the certificate (``qtsp scenarios responder``), and, when the sandbox's
``time_travel`` is on, a request carrying ``X-QTSP-Time``, answered as of that time.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import threading
import time
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any, Callable, Iterable
from urllib.parse import unquote

from sqlalchemy import select

from ca_store.models import AuditHead, Certificate, Revocation

from ..clock import as_of, utcnow
from ..core import ocsp as core_ocsp
from ..core.errors import QTSPError
from ..core.http import TIME_HEADER
from ..core.instants import parse_instant
from ..core.types import serial_hex
from ..services import ocsp as ocsp_svc
from ..services import simulator
from ..services.context import Sandbox
from ..services.generation import Generation
from . import metrics

CONTENT_TYPE = "application/ocsp-response"
REQUEST_TYPE = "application/ocsp-request"
MAX_GET_PATH = 4 * core_ocsp.MAX_REQUEST_BYTES // 3 + 16
CACHE_LIMIT = 200_000
CACHE_TTL = 300.0  # seconds an answer may stay in a worker's cache (never past nextUpdate)
ISSUER_RELOAD_INTERVAL = 5.0
# Other nodes (another host on the same PostgreSQL) cannot bump this host's mmap counter; so each
# worker also reads the store's change counter (the audit head) at most this often.
STORE_CHECK_INTERVAL = 0.2
_TIME_ENVIRON = "HTTP_X_QTSP_TIME"


@dataclass(frozen=True)
class Answer:
    body: bytes
    outcome: str  # good | revoked | unknown | malformed | unauthorized | internal_error
    this_update: dt.datetime | None = None
    next_update: dt.datetime | None = None
    cacheable: bool = False  # pre-signed, no nonce: HTTP caches may keep it (RFC 5019 6)
    etag: str = ""
    no_store: bool = False  # a simulated or time-travelling answer: never in any cache


class OcspSource:
    """Answers OCSP request bytes with response bytes: the one-method source of Boulder's responder."""

    def __init__(self, sandbox: Sandbox, now: Callable[[], dt.datetime] = utcnow) -> None:
        self.sandbox = sandbox
        self.now = now
        self.generation = Generation(sandbox.data_dir)
        self._seen_generation = self.generation.value()
        self._cache: dict[bytes, tuple[Answer, float]] = {}
        self._status_cache: dict[tuple[str, int], tuple[tuple[str, dt.datetime | None, str | None] | None, float]] = {}
        self._issuers: dict[tuple[str, bytes, bytes], ocsp_svc.IssuerEntry] = {}
        self._issuers_loaded = 0.0
        self._lock = threading.Lock()
        self._next_store_check = 0.0
        self._seen_store = self._store_generation()
        self._epoch = 0  # moves whenever the caches are dropped: an answer made before is not cached after
        self._load_issuers()
        self._behaviours = simulator.load(sandbox)

    def _store_generation(self) -> int:
        with self.sandbox.engine.connect() as conn:
            value = conn.execute(select(AuditHead.seq).where(AuditHead.id == 1)).scalar()
        return int(value or 0)

    def _load_issuers(self) -> None:
        with self.sandbox.transaction() as session:
            self._issuers = ocsp_svc.key_hash_index(ocsp_svc.issuer_entries(self.sandbox, session))
        self._issuers_loaded = time.monotonic()

    def _issuer(self, cert_id: core_ocsp.CertID) -> ocsp_svc.IssuerEntry | None:
        key = (cert_id.hash_algorithm, cert_id.issuer_name_hash, cert_id.issuer_key_hash)
        entry = self._issuers.get(key)
        if entry is None and time.monotonic() - self._issuers_loaded > ISSUER_RELOAD_INTERVAL:
            with self._lock:  # a new CA generation may have appeared (key rollover)
                self._load_issuers()
            entry = self._issuers.get(key)
        return entry

    def _refresh(self) -> None:
        """Drop the caches and reload issuers and behaviours when this host's generation counter or
        (for changes made on other hosts) the store's audit head moved."""
        generation = self.generation.value()
        now_m = time.monotonic()
        if now_m >= self._next_store_check:
            self._next_store_check = now_m + STORE_CHECK_INTERVAL
            try:
                store = self._store_generation()
            except Exception:  # the store is down: keep serving what is cached (pre-signed answers)
                store = self._seen_store
            if store != self._seen_store:
                self._seen_store = store
                self._seen_generation = -1  # forces the drop below
        if generation != self._seen_generation:
            with self._lock:  # a responder key or a CA generation may have rotated too
                if generation == self._seen_generation:
                    return  # another thread reloaded meanwhile
                self._load_issuers()
                # Loaded before the caches are emptied, so no answer made under the old behaviours
                # lands in the new cache (answer() refuses to cache across an epoch change).
                self._behaviours = simulator.load(self.sandbox)
                self._epoch += 1
                self._cache, self._status_cache = {}, {}
                self._seen_generation = generation

    def behaviours(self) -> simulator.Behaviours:
        """The behaviours in force (for the CRL view and /healthz), as fresh as the OCSP answers."""
        self._refresh()
        return self._behaviours

    def answer(self, der: bytes, at: dt.datetime | None = None) -> Answer:
        """The answer to request bytes; ``at``: as of that time (no caches, nothing pre-signed)."""
        now_m = time.monotonic()
        if now_m >= self._next_store_check or self.generation.value() != self._seen_generation:
            self._refresh()
        if at is None:
            hit = self._cache.get(der)
            if hit is not None and hit[1] > now_m:
                return hit[0]
        epoch = self._epoch
        try:
            request = core_ocsp.parse_request(der)
        except QTSPError:
            return Answer(core_ocsp.MALFORMED, "malformed", no_store=at is not None)
        try:
            answer = self._answer(request, at)
        except Exception:  # a store or signer failure: tryLater would also do; internalError is honest
            return Answer(core_ocsp.INTERNAL_ERROR, "internal_error", no_store=at is not None)
        if answer.no_store or epoch != self._epoch:
            return answer
        if answer.cacheable or (answer.outcome == "unknown" and request.nonce is None):
            if len(self._cache) >= CACHE_LIMIT:
                self._cache = {}
            ttl = CACHE_TTL
            if answer.next_update is not None:
                ttl = min(ttl, (answer.next_update - self.now()).total_seconds())
            if ttl > 0:
                self._cache[der] = (answer, time.monotonic() + ttl)
        return answer

    def _answer(self, request: core_ocsp.Request, at: dt.datetime | None = None) -> Answer:
        entries = [self._issuer(cid) for cid in request.cert_ids]
        if any(e is None for e in entries) or len({e.ca_id for e in entries if e}) != 1:
            # Not an issuer we serve, or several issuers: no single responder is authorised (RFC 6960 2.3).
            return Answer(core_ocsp.UNAUTHORIZED, "unauthorized", no_store=at is not None)
        entry = entries[0]
        assert entry is not None
        if self._behaviours:
            behaviour = self._behaviours.ocsp(entry.ca_id, [c.serial for c in request.cert_ids])
            if behaviour is not None:
                return self._simulate(behaviour, entry, request, at)
        if at is not None:
            return self._sign_on_demand(entry, request, at)
        if len(request.cert_ids) == 1 and request.nonce is None:
            cid = request.cert_ids[0]
            with self.sandbox.transaction() as session:
                row = ocsp_svc.lookup(session, cid.issuer_key_hash, cid.serial)
                if row is not None and row.next_update > self.now():
                    return Answer(row.der, row.status, row.this_update, row.next_update, True,
                                  hashlib.sha1(row.der).hexdigest())
        return self._sign_on_demand(entry, request)

    def _statuses(self, ca_id: str, serials: list[int]) -> dict[int, tuple[str, dt.datetime | None, str | None] | None]:
        """(status, revoked_at, reason) per serial, None for never issued; cached until the generation moves."""
        now = time.monotonic()
        result: dict[int, tuple[str, dt.datetime | None, str | None] | None] = {}
        missing = []
        for serial in serials:
            hit = self._status_cache.get((ca_id, serial))
            if hit is not None and hit[1] > now:
                result[serial] = hit[0]
            else:
                missing.append(serial)
        if missing:
            wanted = {serial_hex(s): s for s in missing}
            query = (
                select(Certificate.serial, Revocation.revoked_at, Revocation.reason)
                .outerjoin(Revocation, Revocation.certificate_id == Certificate.id)
                .where(Certificate.issuer_id == ca_id, Certificate.serial.in_(list(wanted)))
            )
            with self.sandbox.engine.connect() as conn:
                rows = {r.serial: r for r in conn.execute(query)}
            if len(self._status_cache) >= CACHE_LIMIT:
                self._status_cache = {}
            for text, serial in wanted.items():
                row = rows.get(text)
                if row is None:
                    value, ttl = None, 60.0  # a serial could still be issued later: re-check within a minute
                elif row.revoked_at is None:
                    value, ttl = ("good", None, None), CACHE_TTL
                else:
                    revoked_at = row.revoked_at if row.revoked_at.tzinfo else row.revoked_at.replace(tzinfo=dt.timezone.utc)
                    value, ttl = ("revoked", revoked_at, row.reason), CACHE_TTL
                self._status_cache[(ca_id, serial)] = (value, now + ttl)
                result[serial] = value
        return result

    def _single_statuses(self, entry: ocsp_svc.IssuerEntry, request: core_ocsp.Request, now: dt.datetime,
                         at: dt.datetime | None) -> list[core_ocsp.SingleStatus]:
        this_update, next_update = core_ocsp.validity_window(now, self.sandbox.config.ocsp_validity_hours)
        serials = [c.serial for c in request.cert_ids]
        known = self._statuses(entry.ca_id, serials) if at is None else simulator.statuses_as_of(
            self.sandbox, entry.ca_id, serials, at)
        statuses = []
        for cid in request.cert_ids:
            found = known[cid.serial]
            if found is None:
                # Never issued by this CA: "unknown", never "good" (BR 4.9.10).
                statuses.append(core_ocsp.SingleStatus(cid, "unknown", this_update, next_update))
            else:
                statuses.append(core_ocsp.SingleStatus(cid, found[0], this_update, next_update, found[1], found[2],
                                                       entry.archive_cutoff))
        return statuses

    def _sign_on_demand(self, entry: ocsp_svc.IssuerEntry, request: core_ocsp.Request,
                        at: dt.datetime | None = None) -> Answer:
        now = self.now() if at is None else at
        statuses = self._single_statuses(entry, request, now, at)
        body = core_ocsp.build_response(entry.responder, statuses, now.replace(microsecond=0), request.nonce)
        outcome = statuses[0].status if len(statuses) == 1 else "multi"
        if at is not None:
            return Answer(body, outcome, statuses[0].this_update, statuses[0].next_update, no_store=True)
        return Answer(body, outcome, statuses[0].this_update, statuses[0].next_update, False, hashlib.sha1(body).hexdigest())

    def _simulate(self, behaviour: simulator.Behaviour, entry: ocsp_svc.IssuerEntry, request: core_ocsp.Request,
                  at: dt.datetime | None) -> Answer:
        """A deliberately wrong answer, as the operator asked: signed now, never cached, never pre-signed."""
        name = behaviour.behaviour
        if name in simulator.STATUS_ONLY:
            return Answer(simulator.STATUS_ONLY[name], "simulated", no_store=True)
        if name == "slow" and behaviour.delay_ms:
            time.sleep(min(behaviour.delay_ms / 1000, self.sandbox.config.simulator_max_delay_seconds))
        now = self.now() if at is None else at
        hours = self.sandbox.config.ocsp_validity_hours
        body = simulator.ocsp_response(name, entry.responder, self._single_statuses(entry, request, now, at), now,
                                       request.nonce, hours)
        return Answer(body, "simulated", no_store=True)


def instant_text(moment: dt.datetime) -> str:
    """How a time-travelling response names its time: ``2027-06-01T00:00:00Z``."""
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _http_date(moment: dt.datetime) -> str:
    return format_datetime(moment.astimezone(dt.timezone.utc), usegmt=True)


class OcspFastPath:
    """WSGI middleware: ``/ocsp`` (POST) and ``/ocsp/<base64>`` (GET) never reach Flask."""

    def __init__(self, app: Callable[..., Iterable[bytes]], source: OcspSource, prefix: str = "/ocsp") -> None:
        self.app = app
        self.source = source
        self.prefix = prefix
        self.max_age = source.sandbox.config.ocsp_max_age_seconds

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path != self.prefix and not path.startswith(self.prefix + "/"):
            return self.app(environ, start_response)
        if _TIME_ENVIRON in environ:
            return self._as_of(environ, start_response, path)
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST":
            return self._post(environ, start_response, None)
        if method in ("GET", "HEAD"):
            return self._get(environ, start_response, path[len(self.prefix) + 1 :], None)
        return self._plain(start_response, "405 Method Not Allowed", b"OCSP takes GET or POST\n", "post", [("Allow", "GET, POST")])

    def _route(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str,
               at: dt.datetime) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET")
        if method == "POST":
            return self._post(environ, start_response, at)
        if method in ("GET", "HEAD"):
            return self._get(environ, start_response, path[len(self.prefix) + 1 :], at)
        return self._plain(start_response, "405 Method Not Allowed", b"OCSP takes GET or POST\n", "post", [("Allow", "GET, POST")])

    def _as_of(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> list[bytes]:
        """``X-QTSP-Time``: the whole request acts as of that time, or is refused; never a silent "now"."""
        method = "get" if environ.get("REQUEST_METHOD") in ("GET", "HEAD") else "post"
        if not self.source.sandbox.config.time_travel:
            return self._plain(start_response, "400 Bad Request",
                               f"{TIME_HEADER} refused: time travel is off in this sandbox (time_travel = true in "
                               "qtsp.toml turns it on)\n".encode(), method)
        try:
            at = parse_instant(environ[_TIME_ENVIRON])
        except QTSPError as exc:
            return self._plain(start_response, "400 Bad Request", f"{TIME_HEADER}: {exc.detail}\n".encode(), method)
        with as_of(at):
            return self._route(environ, start_response, path, at)

    def _plain(self, start_response: Callable[..., Any], status: str, text: bytes, method: str,
               extra: list[tuple[str, str]] | None = None) -> list[bytes]:
        metrics.ocsp_request(method, status.split()[0])
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(text))),
                                ("Cache-Control", "no-store")] + (extra or []))
        return [text]

    def _post(self, environ: dict[str, Any], start_response: Callable[..., Any], at: dt.datetime | None) -> list[bytes]:
        ctype = environ.get("CONTENT_TYPE", "").split(";")[0].strip().lower()
        if ctype != REQUEST_TYPE:
            return self._plain(start_response, "415 Unsupported Media Type", b"Content-Type must be application/ocsp-request\n", "post")
        try:
            length = int(environ.get("CONTENT_LENGTH") or -1)
        except ValueError:
            return self._plain(start_response, "400 Bad Request", b"bad Content-Length\n", "post")
        if length > core_ocsp.MAX_REQUEST_BYTES:
            return self._plain(start_response, "413 Content Too Large", b"OCSP request too large\n", "post")
        stream = environ["wsgi.input"]
        body = stream.read(length) if length >= 0 else stream.read(core_ocsp.MAX_REQUEST_BYTES + 1)
        if len(body) > core_ocsp.MAX_REQUEST_BYTES:
            return self._plain(start_response, "413 Content Too Large", b"OCSP request too large\n", "post")
        return self._respond(start_response, self.source.answer(body, at), "post", environ, at)

    def _get(self, environ: dict[str, Any], start_response: Callable[..., Any], encoded: str,
             at: dt.datetime | None) -> list[bytes]:
        if len(encoded) > MAX_GET_PATH:
            return self._plain(start_response, "414 URI Too Long", b"OCSP GET request too long\n", "get")
        text = unquote(encoded)
        try:
            der = base64.b64decode(text.replace("-", "+").replace("_", "/") + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            der = b""
        answer = self.source.answer(der, at) if der else Answer(core_ocsp.MALFORMED, "malformed", no_store=at is not None)
        if answer.etag and environ.get("HTTP_IF_NONE_MATCH", "").strip('"') == answer.etag:
            metrics.ocsp_request("get", "not_modified")
            start_response("304 Not Modified", [("ETag", f'"{answer.etag}"')])
            return []
        return self._respond(start_response, answer, "get", environ, at)

    def _respond(self, start_response: Callable[..., Any], answer: Answer, method: str, environ: dict[str, Any],
                 at: dt.datetime | None = None) -> list[bytes]:
        metrics.ocsp_request(method, answer.outcome)
        headers = list(_fixed_headers(answer))
        if at is not None:
            headers.append((TIME_HEADER, instant_text(at)))
        if answer.cacheable and answer.next_update is not None:
            # RFC 5019 6.2: max-age no later than nextUpdate, and at most ocsp_max_age_seconds, which
            # bounds how long an HTTP cache or CDN in front may keep serving a status after a revocation.
            max_age = max(0, min(int(answer.next_update.timestamp() - time.time()), self.max_age))
            headers.append(("Cache-Control", f"max-age={max_age}, public, no-transform, must-revalidate"))
        else:
            headers.append(("Cache-Control", "no-cache, no-store, max-age=0"))
        start_response("200 OK", headers)
        return [] if environ.get("REQUEST_METHOD") == "HEAD" else [answer.body]


_header_cache: dict[str, tuple[tuple[str, str], ...]] = {}


def _fixed_headers(answer: Answer) -> tuple[tuple[str, str], ...]:
    """The headers that do not change while an answer is cached (formatting dates costs ~8 us).

    Kept per ETag, the SHA-1 of the pre-signed body, which fixes every one of them: after a revocation
    empties the answer cache, the same bodies find their headers again, so this holds one entry per
    distinct body. (Keyed by the answer object it grew by one entry per object ever made, ~40 MiB a
    minute per worker under a soak with revocations, until CACHE_LIMIT.)"""
    cached = _header_cache.get(answer.etag) if answer.cacheable else None
    if cached is not None:
        return cached
    headers: list[tuple[str, str]] = [("Content-Type", CONTENT_TYPE), ("Content-Length", str(len(answer.body)))]
    if answer.cacheable and answer.next_update is not None and answer.this_update is not None:
        headers += [("Last-Modified", _http_date(answer.this_update)), ("Expires", _http_date(answer.next_update)),
                    ("ETag", f'"{answer.etag}"')]
    if answer.cacheable:
        if len(_header_cache) >= CACHE_LIMIT:
            _header_cache.clear()
        _header_cache[answer.etag] = tuple(headers)
    return tuple(headers)
