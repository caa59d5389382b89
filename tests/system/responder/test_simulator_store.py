"""Responder misbehaviours on demand, as stored: a restart keeps them, the audit log and every worker see
each change; bad input (service, CLI, API) changes nothing; the API's roles; /healthz shows them.
(How relying parties see each behaviour: test_simulator_ocsp.py.)"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import sqlite3
from typing import Any

import pytest
from click.testing import CliRunner

from cli.main import cli
from qtsp.core.errors import Kind, QTSPError
from qtsp.services import audit, simulator, tokens
from qtsp.services.generation import Generation

from support.loopback import server_env
from support.server import running_server

from support.external import output
from support.simulator import Dep, assert_good, http, openssl_ocsp, store_state


# --- stored: a restart keeps them; the audit log and every worker see each change ---------------------


def test_behaviours_survive_a_restart(dep: Dep) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["scenarios", "responder", "set", "try-later", "--ca", "qwac-ca", "--serial",
                                 dep.serial("a"), "--data-dir", str(dep.data_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["behaviour"] == "try-later"
    env = server_env()
    for _ in range(2):  # a process that never saw the change, twice
        with running_server(dep.data_dir, env=env) as other:
            assert "Responder Error: trylater (3)" in output(openssl_ocsp(dep, "a", url=other))
            assert_good(dep, "b", url=other)
    result = runner.invoke(cli, ["scenarios", "responder", "clear", "--ca", "qwac-ca", "--serial", dep.serial("a"),
                                 "--data-dir", str(dep.data_dir)])
    assert result.exit_code == 0 and "cleared try-later" in result.output, result.output
    assert_good(dep, "a")


def test_changes_are_audited_and_told_to_every_worker(dep: Dep) -> None:
    generation = Generation(dep.data_dir)
    start = generation.value()
    first = simulator.set_behaviour(dep.sandbox, "stale", "qwac-ca", actor="test-actor")
    assert generation.value() == start + 1
    second = simulator.set_behaviour(dep.sandbox, "slow", "qwac-ca", delay_seconds=0.25, actor="test-actor")
    assert second.id == first.id and second.delay_ms == 250  # replaced, not added
    simulator.set_behaviour(dep.sandbox, "expired-crl", "qwac-ca", actor="test-actor")
    assert len(simulator.list_behaviours(dep.sandbox)) == 2
    assert simulator.clear(dep.sandbox, ca_id="qseal-ca", actor="test-actor") == []  # nothing there: no event, no bump
    assert generation.value() == start + 3
    removed = simulator.clear(dep.sandbox, everything=True, actor="test-actor")
    assert sorted(b.behaviour for b in removed) == ["expired-crl", "slow"] and generation.value() == start + 4
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        events = db.execute("SELECT action, subject, details FROM audit_events WHERE actor = 'test-actor' ORDER BY seq").fetchall()
    assert [e[0] for e in events] == ["simulator.behaviour.set"] * 3 + ["simulator.behaviour.clear"] * 2
    assert json.loads(events[1][2])["replaced"] == "stale" and json.loads(events[1][2])["delay_ms"] == 250
    count, problem = audit.verify(dep.sandbox)
    assert problem is None and count > 0
    # Two workers: with two workers every request below lands on one or the other; all see the change.
    simulator.set_behaviour(dep.sandbox, "try-later", "qwac-ca", serial=dep.serial("a"), actor="test")
    for _ in range(6):
        assert "trylater" in output(openssl_ocsp(dep, "a"))
    simulator.clear(dep.sandbox, everything=True, actor="test")
    for _ in range(6):
        assert_good(dep, "a")


# --- bad input changes nothing: service, CLI -------------------------------------------------------------

BAD = [  # why, set_behaviour kwargs, error kind, CLI args (None: not reachable from the CLI)
    ("unknown behaviour", {"behaviour": "flaky", "ca_id": "qwac-ca"}, Kind.MALFORMED, ["flaky", "--ca", "qwac-ca"]),
    ("unknown CA", {"behaviour": "stale", "ca_id": "no-such-ca"}, Kind.NOT_FOUND, ["stale", "--ca", "no-such-ca"]),
    ("malformed CA", {"behaviour": "stale", "ca_id": "QWAC CA"}, Kind.MALFORMED, ["stale", "--ca", "QWAC CA"]),
    ("serial of another CA", {"behaviour": "stale", "ca_id": "qwac-ca", "serial": "seal"}, Kind.NOT_FOUND,
     ["stale", "--ca", "qwac-ca", "--serial", "seal"]),
    ("never issued", {"behaviour": "stale", "ca_id": "qwac-ca", "serial": "0x1234"}, Kind.NOT_FOUND,
     ["stale", "--ca", "qwac-ca", "--serial", "0x1234"]),
    ("not a serial", {"behaviour": "stale", "ca_id": "qwac-ca", "serial": "xyz"}, Kind.MALFORMED,
     ["stale", "--ca", "qwac-ca", "--serial", "xyz"]),
    ("CRL per serial", {"behaviour": "expired-crl", "ca_id": "qwac-ca", "serial": "a"}, Kind.MALFORMED,
     ["expired-crl", "--ca", "qwac-ca", "--serial", "a"]),
    ("delay over the limit", {"behaviour": "slow", "ca_id": "qwac-ca", "delay_seconds": 3.5}, Kind.POLICY,
     ["slow", "--ca", "qwac-ca", "--delay", "3.5"]),
    ("negative delay", {"behaviour": "slow", "ca_id": "qwac-ca", "delay_seconds": -1}, Kind.POLICY,
     ["slow", "--ca", "qwac-ca", "--delay", "-1"]),
    ("infinite delay", {"behaviour": "slow", "ca_id": "qwac-ca", "delay_seconds": float("inf")}, Kind.MALFORMED,
     ["slow", "--ca", "qwac-ca", "--delay", "inf"]),
    ("slow without delay", {"behaviour": "slow", "ca_id": "qwac-ca"}, Kind.MALFORMED, ["slow", "--ca", "qwac-ca"]),
    ("delay on another", {"behaviour": "stale", "ca_id": "qwac-ca", "delay_seconds": 1}, Kind.MALFORMED,
     ["stale", "--ca", "qwac-ca", "--delay", "1"]),
    # (The root answers OCSP too since its delegated responder answers for the CA certificates: an OCSP fault
    # for it is a case to test validators with, no longer a refusal.)
    ("target disagrees", {"behaviour": "stale", "ca_id": "qwac-ca", "target": "crl"}, Kind.MALFORMED, None),
]


@pytest.mark.parametrize("why, kwargs, kind, args", BAD, ids=[b[0] for b in BAD])
def test_bad_input_changes_nothing(dep: Dep, why: str, kwargs: dict[str, Any], kind: Kind, args: list[str] | None) -> None:
    names = {"a": dep.serial("a"), "seal": dep.serial("seal")}
    kwargs = {k: names.get(v, v) if k == "serial" else v for k, v in kwargs.items()}
    simulator.set_behaviour(dep.sandbox, "no-nonce", "qwac-ca", serial=dep.serial("b"), actor="test")  # something there
    before = store_state(dep)
    with pytest.raises(QTSPError) as err:
        simulator.set_behaviour(dep.sandbox, kwargs.pop("behaviour"), kwargs.pop("ca_id"), actor="test", **kwargs)
    assert err.value.kind is kind, err.value
    if args is not None:
        args = [names.get(a, a) for a in args]
        result = CliRunner().invoke(cli, ["scenarios", "responder", "set", *args, "--data-dir", str(dep.data_dir)])
        assert result.exit_code == err.value.exit_code, result.output
        assert result.output.startswith("error: "), result.output
    assert store_state(dep) == before


@pytest.mark.parametrize("args, code", [
    ([], 2), (["--all", "--ca", "qwac-ca"], 2), (["--serial", "AB"], 2), (["--ca", "no-such-ca"], 4),
    (["--ca", "qwac-ca", "--serial", "0x1234"], 4), (["--ca", "qwac-ca", "--serial", "zz"], 2),
])
def test_bad_clear_changes_nothing(dep: Dep, args: list[str], code: int) -> None:
    simulator.set_behaviour(dep.sandbox, "no-nonce", "qwac-ca", serial=dep.serial("b"), actor="test")
    before = store_state(dep)
    result = CliRunner().invoke(cli, ["scenarios", "responder", "clear", *args, "--data-dir", str(dep.data_dir), "--json"])
    assert result.exit_code == code, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["error"]
    assert store_state(dep) == before


def test_cli_set_list_clear(dep: Dep) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(dep.data_dir)]
    result = runner.invoke(cli, ["scenarios", "responder", "list", *base])
    assert result.exit_code == 0 and "(none)" in result.output
    result = runner.invoke(cli, ["scenarios", "responder", "set", "slow", "--ca", "qwac-ca", "--delay", "0.5", *base])
    assert result.exit_code == 0 and "set slow (0.5 s) on qwac-ca (OCSP)" in result.output, result.output
    runner.invoke(cli, ["scenarios", "responder", "set", "crl-wrong-key", "--ca", "qseal-ca", *base])
    listed = json.loads(runner.invoke(cli, ["scenarios", "responder", "list", "--json", *base]).output)
    operator = f"cli:{pwd.getpwuid(os.geteuid()).pw_name}"  # the CLI records who acted (no --operator given)
    assert [(b["ca"], b["target"], b["serial"], b["behaviour"], b["delay_seconds"], b["created_by"]) for b in listed] == [
        ("qwac-ca", "ocsp", None, "slow", 0.5, operator), ("qseal-ca", "crl", None, "crl-wrong-key", None, operator)]
    text = runner.invoke(cli, ["scenarios", "responder", "list", *base]).output
    assert "slow" in text and "0.5 s" in text and "crl-wrong-key" in text
    result = runner.invoke(cli, ["scenarios", "responder", "clear", "--all", *base])
    assert result.exit_code == 0 and result.output.count("cleared") == 2
    assert runner.invoke(cli, ["scenarios", "responder", "clear", "--all", *base]).output.strip() == "nothing to clear"


# --- the API and /healthz -------------------------------------------------------------------------------


def test_api_roles_and_refusals(dep: Dep) -> None:
    _, operator = tokens.create(dep.sandbox, "sim-ops", "operator", actor="test")
    _, auditor = tokens.create(dep.sandbox, "sim-audit", "auditor", actor="test")
    api = dep.url + "/api/v1/simulator/behaviours"

    def call(method: str, url: str, who: str | None, body: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
        headers = {} if who is None else {"Authorization": f"Bearer {who}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = ctype
        status, response_headers, raw = http(url, data=data, method=method, headers=headers)
        if status >= 400:
            assert response_headers["Content-Type"] == "application/problem+json", raw
        return status, json.loads(raw)

    assert call("GET", api, None)[0] == 401
    assert call("GET", api, auditor) == (200, {"behaviours": [], "time_travel": False, "total": 0, "limit": 100,
                                               "offset": 0, "next_offset": None, "next": None})
    wanted = {"ca": "qwac-ca", "serial": dep.serial("a").lower(), "behaviour": "try-later"}
    before = store_state(dep)
    assert call("PUT", api, auditor, wanted)[0] == 403
    assert call("PUT", api, None, wanted)[0] == 401
    refusals = [  # body, status
        ({**wanted, "colour": "red"}, 400), ({"ca": "qwac-ca"}, 400), ({**wanted, "behaviour": "flaky"}, 400),
        ({**wanted, "ca": "nope"}, 404), ({**wanted, "serial": "0x1234"}, 404), ({**wanted, "target": "crl"}, 400),
        ({"ca": "qwac-ca", "behaviour": "slow", "delay_seconds": 1000}, 422),
        ({"ca": "qwac-ca", "behaviour": "slow", "delay_seconds": True}, 400),
        ({"ca": "qwac-ca", "behaviour": "expired-crl", "serial": "AB"}, 400),
        (b'{"ca": "qwac-ca", "ca": "qseal-ca", "behaviour": "stale"}', 400), (b"[1, 2", 400), (b'"stale"', 400),
    ]
    for body, expected in refusals:
        status, problem = call("PUT", api, operator, body)
        assert status == expected, (body, status, problem)
    assert call("PUT", api, operator, wanted, ctype="text/plain")[0] == 415
    assert store_state(dep) == before

    status, made = call("PUT", api, operator, wanted)
    assert status == 200 and made["serial"] == dep.serial("a") and made["target"] == "ocsp"
    assert made["created_by"].startswith("api-token:") and made["created_by"].endswith(":sim-ops")
    assert "trylater" in output(openssl_ocsp(dep, "a"))
    status, listed = call("GET", api, auditor)
    assert status == 200 and listed["behaviours"] == [made]

    assert call("DELETE", f"{api}/{made['id']}", auditor)[0] == 403
    assert call("DELETE", f"{api}/abc", operator)[0] == 400
    assert call("DELETE", f"{api}/99999999999", operator)[0] == 400
    assert call("DELETE", f"{api}/{made['id']}", operator) == (200, made)
    assert call("DELETE", f"{api}/{made['id']}", operator)[0] == 404
    assert_good(dep, "a")


def test_healthz_shows_the_simulator(dep: Dep) -> None:
    def health() -> dict[str, Any]:
        status, _, body = http(dep.url + "/healthz")
        assert status == 200
        return json.loads(body)  # type: ignore[no-any-return]

    assert health()["simulator"] == {"time_travel": False, "behaviours": []}
    made = simulator.set_behaviour(dep.sandbox, "slow", "qwac-ca", serial=dep.serial("b"), delay_seconds=0.5, actor="test")
    assert health()["simulator"]["behaviours"] == [{"id": made.id, "ca": "qwac-ca", "target": "ocsp",
                                                    "serial": dep.serial("b"), "behaviour": "slow", "delay_seconds": 0.5}]
    simulator.clear(dep.sandbox, everything=True, actor="test")
    assert health()["simulator"]["behaviours"] == []
