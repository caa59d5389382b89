"""/metrics behind a bearer token (issue 15, "Low" finding): without one, with a wrong one, or with
another scheme, 401 and nothing of the metrics; with it, the metrics. /healthz stays public. Without
a token configured, /metrics answers as before. The served listener: tests/system/ops/test_serve_tls.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from qtsp.web.app import create_app

TOKEN = "0123456789abcdef-metrics"


@pytest.mark.parametrize("authorization", [None, "Bearer nope", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN}x",
                                           f"Bearer {TOKEN[:-1]}", "Bearer "])
def test_metrics_refused_without_the_token(data_dir: Path, authorization: str | None) -> None:
    client = create_app({"data_dir": data_dir, "metrics_token": TOKEN}).test_client()
    response = client.get("/metrics", headers={"Authorization": authorization} if authorization else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    body = response.get_data()
    assert b"qtsp_" not in body and b"# HELP" not in body and TOKEN.encode() not in body


def test_metrics_with_the_token_and_healthz_public(data_dir: Path) -> None:
    client = create_app({"data_dir": data_dir, "metrics_token": TOKEN}).test_client()
    response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and b"qtsp_ocsp_response_age_seconds" in response.get_data()
    assert client.get("/healthz").status_code == 200


def test_metrics_open_without_a_token_configured(data_dir: Path) -> None:
    assert create_app({"data_dir": data_dir}).test_client().get("/metrics").status_code == 200
