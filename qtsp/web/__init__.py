"""The web service: OCSP (a WSGI fast path), CRLs, AIA, the REST API, health and metrics."""

from .app import create_app

__all__ = ["create_app"]
