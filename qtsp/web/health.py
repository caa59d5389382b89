"""GET /healthz and GET /metrics."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from . import metrics
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


@bp.get("/metrics")
def metrics_view() -> Response:
    return Response(metrics.render(state().sandbox), mimetype="text/plain; version=0.0.4")
