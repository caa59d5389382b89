"""Request ids in process (Flask's test client): an X-Request-ID is echoed only when sane (else one is
made), and every line logged during a request carries it, in text and JSON, without the query string.
(Against the running `qtsp serve`: tests/system/cli/test_serve_ops.py.)"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

GENERATED_ID = re.compile(r"[0-9a-f]{16}")


@pytest.mark.parametrize("sent,echoed", [
    ("0123456789abcdef", True), ("ci-run.42:step/1", True), ("A" * 128, True), ("b64+/=~_", True),
    ("A" * 129, False), ("", False), ("has space", False), ("new\nline", False), ('quote"', False), ("é", False),
])
def test_request_id_is_echoed_only_when_sane(data_dir: Path, sent: str, echoed: bool) -> None:
    from qtsp.web.app import create_app

    client = create_app({"data_dir": data_dir}).test_client()
    environ = {"HTTP_X_REQUEST_ID": sent}  # raw, as a server hands it over
    for response in (client.get("/healthz", environ_base=environ), client.get("/ocsp/AAAA", environ_base=environ)):
        rid = response.headers["X-Request-ID"]
        assert rid == sent if echoed else GENERATED_ID.fullmatch(rid)


def test_lines_logged_during_a_request_carry_its_id(data_dir: Path) -> None:
    import logging

    from qtsp.logging_setup import JsonFormatter, TextFormatter
    from qtsp.web.app import create_app

    app = create_app({"data_dir": data_dir})

    def broken() -> str:
        raise RuntimeError("boom")

    app.add_url_rule("/broken", view_func=broken)
    lines: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.extend([TextFormatter().format(record), JsonFormatter().format(record)])

    handler = Collect()
    app.logger.addHandler(handler)
    try:
        response = app.test_client().get("/broken?password=hunter2", headers={"X-Request-ID": "trace-7"})
    finally:
        app.logger.removeHandler(handler)
    assert response.status_code == 500 and response.headers["X-Request-ID"] == "trace-7"
    text, as_json = lines[0], json.loads(lines[1])
    assert text.startswith(tuple("0123456789")) and " ERROR qtsp Exception on /broken [GET] request_id=trace-7\n" in text
    assert "RuntimeError: boom" in text and "hunter2" not in text
    assert as_json["request_id"] == "trace-7" and as_json["level"] == "error" and "RuntimeError: boom" in as_json["exc"]
