"""`qtsp serve` in operation (issue 13): /metrics adds up every worker's counts (and the CLI's
revocations), a taken port is refused before anything is touched, access lines with request ids,
log level and format from options and environment, and no secret in any log line.

The tests start the real `qtsp serve` on a free loopback port (tests/support/server.py) and talk HTTP to it.
(The pieces in process: tests/unit/web/test_request_ids.py, tests/unit/test_logging_setup.py.)"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from prometheus_client.parser import text_string_to_metric_families

from support import ROOT, SAMPLE_ORG
from support.server import free_port, running_server
from qtsp.services import issuance, tokens
from qtsp.services.context import Sandbox

OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
GENERATED_ID = re.compile(r"[0-9a-f]{16}")
OCSP_TYPE = {"Content-Type": "application/ocsp-request"}


def call(url: str, method: str = "GET", body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(request, timeout=15) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    status, _, body = call(url + "/metrics")
    assert status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(body.decode()) for s in family.samples}


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def issue(sandbox: Sandbox, name: str) -> issuance.Issued:
    return issuance.issue(sandbox, issuance.IssueRequest("qwac", SAMPLE_ORG, domains=(f"{name}.example.com",),
                                                         generate_key="ecdsa-p256"))


def ocsp_der(issued: issuance.Issued) -> bytes:
    return ocsp.OCSPRequestBuilder().add_certificate(issued.certificate, issued.chain[0], hashes.SHA1()).build() \
        .public_bytes(serialization.Encoding.DER)


def ocsp_get(issued: issuance.Issued) -> str:
    return "/ocsp/" + urllib.request.quote(base64.b64encode(ocsp_der(issued)).decode(), safe="")


def server_dirs(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "run" / "metrics").glob("serve-*"))


def writers(directory: Path) -> set[str]:
    """The processes that have written counters into a server's metrics directory."""
    return {p.stem.split("_", 1)[1] for p in directory.glob("counter_*.db")}


def qtsp(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=ROOT, env=env, stdin=subprocess.DEVNULL)


# --- /metrics ---------------------------------------------------------------------------------


def test_metrics_add_up_every_worker_and_the_cli_revocation(data_dir: Path, sandbox: Sandbox) -> None:
    first, second = issue(sandbox, "one"), issue(sandbox, "two")
    _, operator = tokens.create(sandbox, "ops", "operator", actor="test")
    auth = {"Authorization": f"Bearer {operator}"}
    with running_server(data_dir, workers=2) as url:
        (own,) = server_dirs(data_dir)

        def burst(n: int, *request: Any) -> list[int]:
            with ThreadPoolExecutor(8) as pool:
                return list(pool.map(lambda _: call(*request)[0], range(n)))

        # Concurrent bursts until both workers have answered (each writes its own file), counting every request.
        gets = 0
        for _ in range(30):
            assert burst(16, url + ocsp_get(first)) == [200] * 16
            gets += 16
            if len(writers(own)) >= 2:
                break
        assert len(writers(own)) == 2, "the second worker never answered"
        assert burst(11, url + "/ocsp", "POST", ocsp_der(first), OCSP_TYPE) == [200] * 11
        assert burst(5, url + "/api/v1/certificates", "GET", None, auth) == [200] * 5
        assert burst(3, url + "/api/v1/certificates") == [401] * 3
        before_revocations = sample(scrape(url), "qtsp_revocation_to_publication_seconds_count")

        status, _, _ = call(f"{url}/api/v1/certificates/{second.serial}/revoke", "POST",
                            json.dumps({"reason": "key-compromise"}).encode(), {**auth, "Content-Type": "application/json"})
        assert status == 200
        status, _, body = call(url + "/ocsp", "POST", ocsp_der(second), OCSP_TYPE)
        assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.REVOKED
        after_api = scrape(url)
        # The CLI revokes in its own process: its time reaches this server's /metrics through run/metrics/cli.
        revoked = qtsp("revoke", first.serial, "--reason", "superseded", "--data-dir", str(data_dir))
        assert revoked.returncode == 0, revoked.stderr
        after_cli = scrape(url)

    assert sample(after_api, "qtsp_ocsp_requests_total", method="get", outcome="good") == gets
    assert sample(after_api, "qtsp_ocsp_requests_total", method="post", outcome="good") == 11
    assert sample(after_api, "qtsp_ocsp_requests_total", method="post", outcome="revoked") == 1
    assert sample(after_api, "qtsp_http_requests_total", endpoint="api.list_certificates", outcome="200") == 5
    assert sample(after_api, "qtsp_http_requests_total", endpoint="api.list_certificates", outcome="401") == 3
    assert sample(after_api, "qtsp_http_requests_total", endpoint="api.revoke_certificate", outcome="200") == 1
    assert sample(after_api, "qtsp_http_requests_total", endpoint="health.healthz", outcome="200") >= 1  # start-up polls
    assert before_revocations == 0
    assert sample(after_api, "qtsp_revocation_to_publication_seconds_count") == 1
    assert sample(after_api, "qtsp_revocation_to_publication_seconds_bucket", le="+Inf") == 1
    assert sample(after_api, "qtsp_revocation_to_publication_seconds_sum") > 0
    assert sample(after_cli, "qtsp_revocation_to_publication_seconds_count") == 2
    assert sample(after_cli, "qtsp_revocation_to_publication_seconds_sum") > sample(
        after_api, "qtsp_revocation_to_publication_seconds_sum")
    assert server_dirs(data_dir) == [], "a stopped server leaves its metrics directory behind"


# --- a taken port -----------------------------------------------------------------------------


def test_a_second_server_on_a_taken_port_fails_fast_and_touches_nothing(data_dir: Path) -> None:
    port = free_port()
    with running_server(data_dir, port=port) as url:
        for _ in range(3):
            assert call(url + "/healthz")[0] == 200
        (own,) = server_dirs(data_dir)
        files = sorted(p.name for p in own.iterdir())
        healthz = sample(scrape(url), "qtsp_http_requests_total", endpoint="health.healthz", outcome="200")

        started = time.monotonic()
        second = qtsp("serve", "--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port),
                      "--workers", "1", timeout=60)
        elapsed = time.monotonic() - started
        assert second.returncode == 5, second.stderr
        assert second.stderr == f"error: http://127.0.0.1:{port} is already in use: another server listens there " \
                                "(stop it, or choose another --port)\n"
        assert second.stdout == ""
        assert elapsed < 20  # no retries, no workers started (the CLI's start-up alone takes a second or two)
        assert server_dirs(data_dir) == [own] and sorted(p.name for p in own.iterdir()) == files
        assert call(url + "/healthz")[0] == 200
        assert sample(scrape(url), "qtsp_http_requests_total", endpoint="health.healthz", outcome="200") == healthz + 1

        # Another port, the same data dir: both serve, each counting in its own directory.
        with running_server(data_dir) as other:
            assert call(other + "/healthz")[0] == 200
            assert len(server_dirs(data_dir)) == 2 and own in server_dirs(data_dir)
            assert sample(scrape(url), "qtsp_http_requests_total", endpoint="health.healthz", outcome="200") == healthz + 1
        assert server_dirs(data_dir) == [own] and own.is_dir()

    # A port held by any listener, SO_REUSEPORT as granian binds or not, is refused the same way.
    listing = sorted(p.name for p in (data_dir / "run" / "metrics").iterdir())
    for reuse_port in (True, False):
        with socket.socket() as listener:
            if reuse_port:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            listener.bind(("127.0.0.1", 0))
            listener.listen()
            taken = listener.getsockname()[1]
            refused = qtsp("serve", "--data-dir", str(data_dir), "--port", str(taken), "--no-scheduler", timeout=60)
        assert refused.returncode == 5 and "already in use" in refused.stderr and refused.stderr.count("\n") == 1
    assert sorted(p.name for p in (data_dir / "run" / "metrics").iterdir()) == listing


@pytest.mark.parametrize("args,env,named", [
    (["--log-level", "loud"], {}, "--log-level"),
    ([], {"QTSP_LOG_FORMAT": "xml"}, "--log-format"),
    ([], {"QTSP_ACCESS_LOG": "maybe"}, "--access-log"),
    (["--host", "no-such-host.invalid"], {}, "--host no-such-host.invalid"),
])
def test_bad_serve_settings_are_refused_before_anything_is_touched(data_dir: Path, args: list[str],
                                                                   env: dict[str, str], named: str) -> None:
    result = qtsp("serve", "--data-dir", str(data_dir), "--port", str(free_port()), *args, env={**os.environ, **env},
                  timeout=60)
    assert result.returncode == 2 and named in result.stderr, result.stderr
    assert not (data_dir / "run" / "metrics").exists()


# --- logs -------------------------------------------------------------------------------------


def test_json_logs_access_lines_request_ids_and_no_secret(data_dir: Path, sandbox: Sandbox, tmp_path: Path) -> None:
    cert = issue(sandbox, "logged")
    _, operator = tokens.create(sandbox, "ops", "operator", actor="test")
    password = "p12-" + secrets.token_hex(12)
    wrong = "qtsp_" + secrets.token_urlsafe(32)
    port = free_port()
    with running_server(data_dir, port=port, scheduler=True, extra=["--log-format", "json", "--log-level", "debug"]) as url:
        issued = qtsp("issue", "qwac", "--org-id", SAMPLE_ORG, "--domain", "p12.example.com", "--generate-key",
                      "--p12-password", password, "--out", str(tmp_path / "out"), "--data-dir", str(data_dir))
        assert issued.returncode == 0, issued.stderr
        key_body = "".join((tmp_path / "out" / "key.pem").read_text().splitlines()[1:-1])
        auth = {"Authorization": f"Bearer {operator}"}
        requests = [  # (method, url path, body, headers, status, request id sent, request id expected back)
            ("GET", f"/api/v1/certificates?org_id={SAMPLE_ORG}&token={operator}&password={password}", None,
             {**auth, "X-Request-ID": "ci-run.42:step/1"}, 400, "ci-run.42:step/1"),  # unknown parameters
            ("POST", "/api/v1/certificates", json.dumps({"kind": "qwac", "org_id": SAMPLE_ORG, "csr": "x",
                                                         "p12_password": password}).encode(),
             {**auth, "Content-Type": "application/json"}, 400, None),
            ("GET", "/api/v1/certificates", None, {"Authorization": f"Bearer {wrong}"}, 401, None),
            ("GET", ocsp_get(cert), None, {"X-Request-ID": "has space"}, 200, None),
            ("POST", "/ocsp", ocsp_der(cert), {**OCSP_TYPE, "X-Request-ID": "a" * 129}, 200, None),
            ("GET", "/healthz", None, {"X-P12-Password": password, "X-Request-ID": "x" * 128}, 200, "x" * 128),
        ]
        seen = []
        for method, path, body, headers, status, sent_id in requests:
            got, response_headers, _ = call(url + path, method, body, headers)
            assert got == status, (method, path)
            rid = response_headers["x-request-id"]
            assert rid == sent_id if sent_id else GENERATED_ID.fullmatch(rid), (path, rid)
            seen.append((method, urllib.parse.unquote(path.split("?")[0]), status, rid))  # PATH_INFO is decoded
        # The scheduler (its own process) makes the missing CRLs at once: its time reaches this /metrics too.
        deadline = time.monotonic() + 30
        while sample(scrape(url), "qtsp_crl_generation_seconds_count") < 1 and time.monotonic() < deadline:
            time.sleep(0.3)
        assert sample(scrape(url), "qtsp_crl_generation_seconds_count") >= 1
        log_path = data_dir / f"serve-{port}.log"
    log = log_path.read_text()
    entries = [json.loads(line) for line in log.splitlines()]  # every line one JSON object
    access = {e["request_id"]: e for e in entries if e["logger"] == "qtsp.access"}
    for method, path, status, rid in seen:
        entry = access[rid]
        assert (entry["method"], entry["path"], entry["status"]) == (method, path, status)
        assert isinstance(entry["duration_ms"], float) and 0 <= entry["duration_ms"] < 15_000
        assert entry["level"] == "info" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", entry["time"])
    assert all("?" not in e["path"] for e in access.values())
    assert any(e["logger"] == "qtsp.scheduler" for e in entries), "the scheduler logs in JSON too"
    assert any(e["logger"] == "qtsp.serve" and url in e["message"] for e in entries)
    for secret in (operator, password, wrong, key_body, operator[5:20], password[4:]):
        assert secret not in log
        assert secret not in issued.stdout + issued.stderr
    assert "authorization" not in log.lower()


def test_text_logs_without_access_lines_still_return_request_ids(data_dir: Path) -> None:
    port = free_port()
    with running_server(data_dir, port=port, extra=["--no-access-log"]) as url:
        status, headers, _ = call(url + "/healthz", headers={"X-Request-ID": "bench-1"})
        assert status == 200 and headers["x-request-id"] == "bench-1"
    log = (data_dir / f"serve-{port}.log").read_text()
    assert f"INFO qtsp.serve qtsp serving on {url} with granian, 1 workers x 4 threads, scheduler off; " \
           "log level info, text, access log off" in log
    assert f"OCSP {url}/ocsp, CRLs {url}/crl/<ca>.crl" in log
    assert "INFO _granian" in log and "qtsp.access" not in log and "bench-1" not in log


def test_gunicorn_counts_and_logs_every_worker_too(data_dir: Path, sandbox: Sandbox) -> None:
    cert = issue(sandbox, "gunicorn")
    port = free_port()
    with running_server(data_dir, port=port, workers=2, extra=["--server", "gunicorn"]) as url:
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda i: call(url + ocsp_get(cert), headers={"X-Request-ID": f"g-{i}"})[1]["x-request-id"],
                                range(40)))
        assert ids == [f"g-{i}" for i in range(40)]
        assert sample(scrape(url), "qtsp_ocsp_requests_total", method="get", outcome="good") == 40
    log = (data_dir / f"serve-{port}.log").read_text()
    assert "with gunicorn, 2 workers" in log and "INFO gunicorn.error" in log
    logged = re.findall(r"INFO qtsp\.access GET /ocsp/\S+ 200 [\d.]+ms request_id=(g-\d+)\n", log)
    assert sorted(logged) == sorted(ids)  # the last ones too: a worker writes what it holds when it exits


def test_level_and_format_from_the_environment(data_dir: Path) -> None:
    port = free_port()
    env = {**os.environ, "QTSP_LOG_LEVEL": "warning", "QTSP_LOG_FORMAT": "json"}
    with running_server(data_dir, port=port, env=env) as url:
        assert call(url + "/ocsp", "POST", b"not der", OCSP_TYPE)[0] == 200
    entries = [json.loads(line) for line in (data_dir / f"serve-{port}.log").read_text().splitlines()]
    # Above info: no access line, no granian start-up line; where it serves is said whatever the level.
    assert {e["logger"] for e in entries if e["level"] == "info"} == {"qtsp.serve"}
    assert any(url in e["message"] for e in entries if e["logger"] == "qtsp.serve")
