"""The time-travel middleware (X-QTSP-Time) on its own, in front of a fake WSGI app."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from collections.abc import Iterable

import pytest

from qtsp import clock
from qtsp.web.time_travel import AT, TimeTravelMiddleware, requested_at

HEADER = "X-QTSP-Time"
THEN = dt.datetime(2027, 6, 1, tzinfo=dt.timezone.utc)


class App:
    """Records what the request saw; answers with headers a cache would use."""

    def __init__(self) -> None:
        self.seen: list[tuple[dt.datetime | None, dt.datetime, bool]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.seen.append((requested_at(environ), clock.utcnow(), clock.time_travelling()))
        start_response("200 OK", [("Content-Type", "text/plain"), ("ETag", '"x"'), ("Last-Modified", "y"),
                                  ("Expires", "z"), ("Cache-Control", "public, max-age=60"), ("X-Kept", "1")])
        return [b"ok"]


def call(app: Any, path: str = "/healthz", value: str | None = None, method: str = "GET") -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path, "REQUEST_METHOD": method, "SERVER_NAME": "t", "SERVER_PORT": "80",
                               "wsgi.url_scheme": "http"}
    if value is not None:
        environ["HTTP_X_QTSP_TIME"] = value
    got: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        got["status"], got["headers"] = status, headers

    body = b"".join(app(environ, start_response))
    names = [name.lower() for name, _ in got["headers"]]
    assert len(names) == len(set(names)), got["headers"]  # each header once
    return got["status"], dict(got["headers"]), body


def test_without_the_header_nothing_changes() -> None:
    inner = App()
    status, headers, body = call(TimeTravelMiddleware(inner, enabled=True))
    assert status == "200 OK" and headers["ETag"] == '"x"' and headers["Cache-Control"] == "public, max-age=60"
    assert HEADER not in headers and inner.seen[0][0] is None and inner.seen[0][2] is False


@pytest.mark.parametrize("path", ["/ocsp", "/healthz"])
def test_the_request_acts_as_of_then_and_no_cache_keeps_it(path: str) -> None:
    inner = App()
    status, headers, _ = call(TimeTravelMiddleware(inner, enabled=True), path, "2027-06-01T02:00+02:00")
    at, now, travelling = inner.seen[0]
    assert status == "200 OK" and at == THEN and travelling and abs((now - THEN).total_seconds()) < 5
    assert headers[HEADER] == "2027-06-01T00:00:00Z" and headers["Cache-Control"] == "no-store"
    assert not {"ETag", "Last-Modified", "Expires"} & set(headers) and headers["X-Kept"] == "1"
    assert not clock.time_travelling()  # back to now once the request is done


def test_refused_when_time_travel_is_off() -> None:
    inner = App()
    app = TimeTravelMiddleware(inner, enabled=False)
    status, headers, body = call(app, "/api/v1/certificates", "2027-06-01T00:00Z")
    assert status.startswith("400") and headers["Content-Type"] == "application/problem+json"
    assert "time_travel" in json.loads(body)["detail"] and HEADER not in headers and headers["Cache-Control"] == "no-store"
    # OCSP clients read no problem+json: the same refusal in plain text.
    for method in ("GET", "POST"):
        status, headers, body = call(app, "/ocsp" if method == "POST" else "/ocsp/MAo=", "2027-06-01T00:00Z", method)
        assert status.startswith("400") and headers["Content-Type"] == "text/plain" and b"time travel is off" in body
    assert inner.seen == []  # never reached


@pytest.mark.parametrize("value", ["yesterday", "2027-06-01T00:00", "2027-13-01T00:00Z", "", "9999-01-01T00:00Z"])
def test_refused_when_the_value_is_not_an_instant_with_a_zone(value: str) -> None:
    inner = App()
    app = TimeTravelMiddleware(inner, enabled=True)
    status, headers, body = call(app, "/healthz", value)
    assert status.startswith("400") and headers["Content-Type"] == "application/problem+json"
    assert HEADER in json.loads(body)["detail"]
    status, headers, body = call(app, "/ocsp", value, "POST")
    assert status.startswith("400") and headers["Content-Type"] == "text/plain" and body.startswith(HEADER.encode())
    assert inner.seen == [] and AT not in headers
