"""The browser portal (issue 20): server-rendered pages under /portal for PSP developers and the operator.

Thin like the rest of the web layer: each view parses a form, calls one service (``qtsp.services.portal``,
``portal_certs``, ``portal_ops``, which call the same issuance, revocation and search services as the CLI
and the REST API) and renders a Jinja2 template (autoescaped). ``tests/unit/test_layers.py`` checks that
nothing here imports the store or a signer. Every core flow works without JavaScript; the one script
(static/portal.js) adds copy buttons.

Security (``security.py``): a CSRF token on every form (flask-wtf), a server-side session behind an
HttpOnly, SameSite=Lax cookie (Secure, and named ``__Host-``, unless the sandbox's base URL is plain http on
a loopback address), a Content-Security-Policy with no inline script or style, sign-in rate limits, and
each request's principal looked up again from the store.
"""

from __future__ import annotations

from flask import Flask

from .security import configure


def init_app(app: Flask) -> None:
    """Mount the portal on the app: its configuration, CSRF protection and the blueprint."""
    from . import operator, psp  # noqa: F401  (the views register on the blueprint)
    from .blueprint import bp

    configure(app)
    app.register_blueprint(bp)
