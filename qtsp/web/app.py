"""The application factory: ``create_app({"data_dir": ...})`` returns the Flask app with, in front of
it as WSGI middleware, from the outside in: the access log (request ids), time travel (X-QTSP-Time,
for every path), and the OCSP fast path."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from flask import Flask, Response
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import MethodNotAllowed

from .. import responder
from ..core.errors import QTSPError
from ..logging_setup import ACCESS_LOGGER, AccessLog, LogSettings
from ..services.context import open_sandbox
from . import errors, metrics, portal
from .access_log import AccessLogMiddleware, WsgiApp
from .limits import MAX_BODY
from .ocsp import OcspFastPath
from .state import WebState
from .time_travel import TimeTravelMiddleware



def create_app(config: dict[str, Any] | None = None) -> Flask:
    config = dict(config or {})
    from ..config import resolve_data_dir

    data_dir = Path(config.pop("data_dir", None) or resolve_data_dir(None))
    sandbox = open_sandbox(data_dir)
    app = Flask("qtsp")
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    json = DefaultJSONProvider(app)
    json.sort_keys = False  # answers keep the order their handler wrote
    app.json = json
    app.config.update(config)
    app.extensions["qtsp"] = WebState(sandbox, config)

    from .health import bp as health_bp
    from .publication import bp as publication_bp

    app.register_blueprint(health_bp)
    app.register_blueprint(publication_bp)
    from .api import bp as api_bp
    from .crl import bp as crl_bp
    from .nca import bp as nca_bp
    from .tl import bp as tl_bp

    app.register_blueprint(api_bp)
    app.register_blueprint(crl_bp)
    app.register_blueprint(nca_bp)
    app.register_blueprint(tl_bp)
    portal.init_app(app)  # the browser portal under /portal (issue 20)

    @app.after_request
    def _count(response: Response) -> Response:
        from flask import request

        if not request.path.startswith(("/api/v1", "/nca/v1")):  # those blueprints count their own
            metrics.http_request(request.endpoint or "unmatched", response.status_code)
        return response

    @app.errorhandler(QTSPError)
    def _qtsp_error(exc: QTSPError) -> Response:
        return errors.from_error(exc)

    @app.errorhandler(413)
    def _too_large(_exc: Exception) -> Response:
        return errors.problem(413, "content too large", f"request bodies are limited to {MAX_BODY} bytes")

    @app.errorhandler(404)
    def _not_found(_exc: Exception) -> Response:
        return errors.problem(404, "not found", "no such resource")

    @app.errorhandler(405)
    def _method(exc: MethodNotAllowed) -> Response:
        return errors.method_not_allowed(exc)

    @app.errorhandler(500)
    def _internal(_exc: Exception) -> Response:
        return errors.problem(500, "internal error", "the server failed; the event is logged")

    answers = responder.build(sandbox)
    app.extensions["qtsp_responder"] = answers
    wsgi: WsgiApp = OcspFastPath(app.wsgi_app, answers.ocsp, sandbox.config.ocsp_max_age_seconds)
    wsgi = TimeTravelMiddleware(wsgi, sandbox.config.time_travel)
    # Access lines when the access log is on and the log level lets info through (under `qtsp serve`;
    # a test client, with logging left alone, writes none); request ids always.
    settings = LogSettings.from_env()
    logged = settings.access_log and logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO)
    wsgi = AccessLogMiddleware(wsgi, AccessLog(settings) if logged else None)
    app.wsgi_app = wsgi  # type: ignore[method-assign]  # Flask's way to add WSGI middleware
    return app
