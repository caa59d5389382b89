"""GET /healthz and GET /metrics.

/metrics may be protected by a bearer token (``qtsp serve --metrics-token-file``; ``metrics_token`` in
create_app's config): then a request without it, or with another, gets 401 and nothing else. /healthz
stays public: load balancers and orchestrators probe it without credentials, and it says only whether
the store answers and which simulator behaviours are switched on (so that nobody mistakes a sandbox
with faults for the real thing)."""

from __future__ import annotations

import hmac
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import text

from . import errors, metrics
from .state import state

bp = Blueprint("health", __name__)


def _simulator() -> dict[str, Any]:
    """What the simulator has switched on (issue 7), so that nobody mistakes it for the real thing.

    From the OCSP workers' snapshot (no query unless a change is pending); never fails the probe."""
    sandbox = state().sandbox
    try:
        behaviours: list[dict[str, object]] | str = [
            {k: v for k, v in b.as_dict().items() if k not in ("created_at", "created_by")}
            for b in current_app.extensions["qtsp_responder"].behaviours().rows]
    except Exception as exc:  # report, never crash the probe
        behaviours = f"unavailable: {type(exc).__name__}"
    return {"time_travel": sandbox.config.time_travel, "behaviours": behaviours}


@bp.get("/healthz")
def healthz() -> Response:
    sandbox = state().sandbox
    try:
        with sandbox.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # report, never crash the probe
        response = jsonify({"status": "unavailable", "database": type(exc).__name__, "simulator": _simulator()})
        response.status_code = 503
        return response
    return jsonify({"status": "ok", "simulator": _simulator()})


def _metrics_allowed() -> bool:
    token = state().settings.get("metrics_token")
    if not token:
        return True
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    # compare_digest: as long whatever the first wrong byte, so the time taken reveals nothing of the token
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), str(token).encode())


@bp.get("/metrics")
def metrics_view() -> Response:
    if not _metrics_allowed():
        response = errors.problem(401, "unauthenticated", "a bearer token is required")
        response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response.headers["Cache-Control"] = "no-store"
        return response
    return Response(metrics.render(state().sandbox), mimetype="text/plain; version=0.0.4")
