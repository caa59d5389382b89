"""Helpers for the portal tests: a Flask-test-client user that reads CSRF tokens from the pages it gets,
as a browser would, and the checks every portal page must pass (CSP, no inline code)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

PASSWORD = "correct horse battery staple"


def csrf_tokens(html: str) -> dict[str, str]:
    """Every CSRF field of the page: name -> value."""
    return dict(re.findall(r'<input[^>]*\bname="([a-z]*-?csrf_token)"[^>]*\bvalue="([^"]+)"', html))


class _InlineCode(HTMLParser):
    """Finds what a CSP without 'unsafe-inline' would block: inline scripts, style elements and attributes, on* handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._script_without_src = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        self.found += [f"{name}= on <{tag}>" for name in names if name == "style" or name.startswith("on")]


def inline_code(html: str) -> list[str]:
    parser = _InlineCode()
    parser.feed(html)
    return parser.found


@dataclass
class User:
    """One browser: its own cookie jar."""

    app: Flask
    client: FlaskClient

    @classmethod
    def of(cls, app: Flask) -> User:
        return cls(app, app.test_client())

    def get(self, path: str, **kwargs: object) -> TestResponse:
        return self.client.get(path, **kwargs)  # type: ignore[arg-type]

    def post_form(self, page: str, action: str | None, data: dict[str, object], *, field: str = "csrf_token",
                  **kwargs: object) -> TestResponse:
        """Post ``data`` to ``action`` (default: ``page``) with the CSRF token ``page`` carries."""
        tokens = csrf_tokens(self.get(page).get_data(as_text=True))
        return self.client.post(action or page, data={field: tokens[field], **data}, **kwargs)  # type: ignore[arg-type]

    def sign_in(self, username: str, password: str = PASSWORD) -> TestResponse:
        return self.post_form("/portal/sign-in", None, {"account-username": username, "account-password": password},
                              field="account-csrf_token")

    def sign_in_token(self, secret: str) -> TestResponse:
        return self.post_form("/portal/sign-in", None, {"token-token": secret}, field="token-csrf_token")

    def register(self, name: str, *, nca: str = "BE-NBB", roles: tuple[str, ...] = ("PSP_AI", "PSP_PI"),
                 number: str = "") -> TestResponse:
        return self.post_form("/portal/organisations/new", None, {
            "legal_name": name, "nca": nca, "roles": list(roles), "authorisation_number": number, "locality": "Brussels"})

    def request_generated(self, org_id: str, *, kind: str = "qwac", password: str = "p12-password",
                          domains: str = "api.example.com", purpose: str = "client") -> TestResponse:
        return self.post_form("/portal/request", None, {
            "org_id": org_id, "kind": kind, "purpose": purpose, "domains": domains, "key_source": "generate",
            "key_type": "ecdsa-p256", "p12_password": password})
