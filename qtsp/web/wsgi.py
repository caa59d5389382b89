"""WSGI entry point for servers that import a module attribute: ``qtsp.web.wsgi:app``.

The data dir comes from ``QTSP_DATA_DIR`` (``qtsp serve`` sets it)."""

from __future__ import annotations

from .app import create_app

app = create_app()
