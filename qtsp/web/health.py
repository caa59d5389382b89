"""GET /healthz and GET /metrics."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from . import metrics
from .state import state

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    sandbox = state().sandbox
    try:
        with sandbox.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # report, never crash the probe
        response = jsonify({"status": "unavailable", "database": type(exc).__name__})
        response.status_code = 503
        return response
    return jsonify({"status": "ok"})


@bp.get("/metrics")
def metrics_view() -> Response:
    return Response(metrics.render(state().sandbox), mimetype="text/plain; version=0.0.4")
