"""The portal as a web application that must not be abused: CSRF, cookies, CSP, sign-in rate limits,
and the signed-in principal on every request.

* CSRF: flask-wtf's ``CSRFProtect``, checked for every unsafe method under /portal (the REST API, the NCA
  API and OCSP take no cookies and are left alone: ``WTF_CSRF_CHECK_DEFAULT`` is off and the portal's
  hook calls ``protect()``). A refused token is a 400 page and changes nothing.
* Cookies: HttpOnly, SameSite=Lax, Secure with the ``__Host-`` prefix unless the sandbox's base URL is
  plain http on a loopback address (a developer's ``http://127.0.0.1:8080``, where a browser would drop a
  Secure cookie); a shared sandbox on a public name must be served over TLS, or sign-in cannot work.
* Content-Security-Policy: scripts and styles from this origin only, no inline code (``default-src
  'none'``), no framing, forms post only here.
* Sign-in: at most ``MAX_FAILURES`` failures per (account, client address) and ``MAX_FAILURES_PER_ADDRESS``
  per address in ``WINDOW`` seconds, counted in memory per worker process and bounded in entries.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask, Response, abort, current_app, g, redirect, render_template, request, session, url_for
from flask_wtf.csrf import CSRFError, CSRFProtect

from ...clock import time_travelling, utcnow
from ...core.errors import Kind, QTSPError
from ...services import portal
from ...services.portal import Principal
from ..state import state
from .blueprint import bp

csrf = CSRFProtect()
SESSION_KEY = "sid"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
STATUS = {Kind.MALFORMED: 400, Kind.POLICY: 422, Kind.LINT: 422, Kind.NOT_FOUND: 404, Kind.CONFLICT: 409,
          Kind.ALREADY_REVOKED: 409, Kind.UNAUTHORISED: 403, Kind.UNAUTHENTICATED: 401}

F = TypeVar("F", bound=Callable[..., Any])


def _loopback_http(base: str) -> bool:
    parts = urlsplit(base)
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def configure(app: Flask) -> None:
    sandbox = app.extensions["qtsp"].sandbox
    secure = not _loopback_http(sandbox.config.base)
    app.config.update(
        SECRET_KEY=portal.cookie_secret(sandbox),
        SESSION_COOKIE_NAME="__Host-qtsp-portal" if secure else "qtsp-portal",
        SESSION_COOKIE_PATH="/" if secure else "/portal",
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=portal.SESSION_HOURS * 3600,
        WTF_CSRF_CHECK_DEFAULT=False,
        WTF_CSRF_TIME_LIMIT=portal.SESSION_HOURS * 3600,
    )
    csrf.init_app(app)


# --- every request under /portal ----------------------------------------------------------------------


@bp.before_request
def _before() -> None:
    if request.endpoint == "portal.static":
        return  # the stylesheet and the script: public, no session looked up
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        csrf.protect()  # raises CSRFError: answered by _csrf_refused, nothing is done
    g.who = portal.principal(state().sandbox, session.get(SESSION_KEY))


@bp.after_request
def _headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Cross-Origin-Opener-Policy"] = "same-origin"
    if current_app.config["SESSION_COOKIE_SECURE"]:  # served over TLS (a proxy in front): browsers keep to it
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    if request.endpoint != "portal.static":
        response.headers["Cache-Control"] = "no-store"
    response.vary.add("Cookie")
    return response


@bp.app_context_processor
def _context() -> dict[str, Any]:
    if not request.blueprint == "portal":
        return {}
    return {"who": g.get("who"), "now": utcnow(), "time_travelling": time_travelling(),
            "time_travel_enabled": state().sandbox.config.time_travel}


@bp.errorhandler(CSRFError)
def _csrf_refused(exc: CSRFError) -> tuple[str, int]:
    return render_template("error.html", status=400, title="Form refused",
                           message=f"The form was not accepted: {exc.description} Reload the page and send it again."), 400


@bp.errorhandler(QTSPError)
def _qtsp_error(exc: QTSPError) -> tuple[str, int]:
    status = STATUS.get(exc.kind, 500)
    title = {401: "Sign in first", 403: "Not allowed", 404: "Not found"}.get(status, "Refused" if status < 500 else "Failed")
    return render_template("error.html", status=status, title=title,
                           message=exc.detail if status < 500 else "the server failed; the event is logged"), status


@bp.errorhandler(404)
def _not_found(_exc: Exception) -> tuple[str, int]:
    return render_template("error.html", status=404, title="Not found", message="There is no such page."), 404


@bp.errorhandler(401)
def _unauthenticated(_exc: Exception) -> tuple[str, int]:
    return render_template("error.html", status=401, title="Sign in first", message="This needs a signed-in user."), 401


# --- who may see a page ---------------------------------------------------------------------------------


def signed_in(view: F) -> F:
    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if g.get("who") is None:
            if request.method == "GET":
                return redirect(url_for("portal.sign_in", next=request.full_path if request.args else request.path))
            abort(401)
        return view(*args, **kwargs)
    return cast(F, wrapper)


def readers_only(view: F) -> F:
    """Sandbox-wide pages: operator or auditor; everyone else gets a 403 (and learns nothing more)."""
    @wraps(view)
    @signed_in
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        portal.require_reader(current())
        return view(*args, **kwargs)
    return cast(F, wrapper)


def current() -> Principal:
    who = g.get("who")
    if who is None:
        raise QTSPError(Kind.UNAUTHENTICATED, "sign in first")
    return cast(Principal, who)


def start_session(session_id: str) -> None:
    session.clear()  # a new session id and a new CSRF secret: no fixation across sign-in
    session[SESSION_KEY] = session_id
    session.permanent = True


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path of the portal only (no open redirect)."""
    if target and target.startswith("/portal/") and not target.startswith("//") and "\\" not in target:
        return target
    return url_for("portal.home")


# --- sign-in rate limits ---------------------------------------------------------------------------------


class SlidingLimiter:
    """Events (failed sign-ins, scenario bundles) per key in a sliding window, in memory, at most ``max_keys``
    keys (oldest dropped)."""

    def __init__(self, limit: int, window: float, max_keys: int = 10_000) -> None:
        self.limit, self.window, self.max_keys = limit, window, max_keys
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        return times

    def retry_after(self, key: str, now: float | None = None) -> int:
        """Seconds until ``key`` may try again; 0 when it may now."""
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(key, now)
            return 0 if len(times) < self.limit else max(1, int(times[0] + self.window - now) + 1)

    def failed(self, key: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            times = self._recent(key, now)
            times.append(now)
            while len(times) > self.limit:
                times.popleft()
            self._failures[key] = times
            self._failures.move_to_end(key)
            while len(self._failures) > self.max_keys:
                self._failures.popitem(last=False)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def __len__(self) -> int:
        return len(self._failures)


MAX_FAILURES = 5
MAX_FAILURES_PER_ADDRESS = 20
WINDOW = 15 * 60
per_account = SlidingLimiter(MAX_FAILURES, WINDOW)
per_address = SlidingLimiter(MAX_FAILURES_PER_ADDRESS, WINDOW)
# A scenario bundle issues the whole catalogue (dozens of certificates, their OCSP answers and CRLs): a few
# per user per hour is what a test suite needs.
bundles = SlidingLimiter(3, 3600)


def client_address() -> str:
    return request.remote_addr or "-"


def limited(account: str) -> int:
    """Seconds the client must wait before trying ``account`` again (0: it may try now)."""
    address = client_address()
    return max(per_account.retry_after(f"{account}|{address}"), per_address.retry_after(address))


def record_failure(account: str) -> None:
    address = client_address()
    per_account.failed(f"{account}|{address}")
    per_address.failed(address)


def record_success(account: str) -> None:
    per_account.succeeded(f"{account}|{client_address()}")


@bp.app_template_filter("when")
def _when(moment: Any) -> str:
    """A time as the sandbox shows it: UTC, to the minute."""
    import datetime as dt

    if not isinstance(moment, dt.datetime):
        return "-"
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
