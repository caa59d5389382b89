"""Errors in the HTTP interfaces' own language (issue 13): every route's 405 carries Allow, and no
error detail on an error path of the REST API, the NCA API or the publication URLs names a CLI flag
or command; walking them changes nothing in the store."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from werkzeug.exceptions import MethodNotAllowed

from qtsp.web import errors
from support.api import PREFIX, PROBLEM, SAMPLE_ORG, Api, assert_problem, csr_pem, new_key, store_state

CLI_FLAG = re.compile(r"(?<![\w-])--[a-z]")
CLI_COMMAND = re.compile(r"\bqtsp [a-z]")
A_BEFORE_VOWEL = re.compile(r"\ba [aeio]", re.IGNORECASE)  # "a auditor token"
SAMPLE_ARGUMENTS = {"serial": "01", "ca_id": "root", "name": "root", "request_id": "req-1", "behaviour_id": "1",
                    "filename": "x.css", "fingerprint": "0" * 64,
                    # the portal's (issue 20)
                    "part": "cert", "account_id": "1", "org_id": SAMPLE_ORG, "account_action": "suspend",
                    "psp_action": "withdraw"}
METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH")


def _path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", lambda m: SAMPLE_ARGUMENTS[m.group(1)], rule)


def test_every_route_answers_a_wrong_method_with_405_and_allow(api: Api) -> None:
    methods_at: dict[str, set[str]] = {}
    for rule in api.app.url_map.iter_rules():
        methods_at.setdefault(rule.rule, set()).update(rule.methods or ())
    blueprints = {rule.endpoint.split(".")[0] for rule in api.app.url_map.iter_rules()}
    assert {"api", "nca", "crl", "publication", "tl", "health"} <= blueprints  # REST, NCA, CRL, AIA, TL, health+metrics
    checked = 0
    for rule, allowed in sorted(methods_at.items()):
        for method in METHODS:
            if method in allowed:
                continue
            # with an operator token: under /api/v1 an unauthenticated caller gets 401 first (fail closed)
            response = api.client.open(_path(rule), method=method, headers=api.headers("operator"))
            assert response.status_code == 405, (method, rule, response.status_code)
            assert response.mimetype == PROBLEM, (method, rule)
            allow = response.headers.get("Allow", "")
            assert set(allow.split(", ")) == allowed, (method, rule, allow)
            assert json.loads(response.get_data())["status"] == 405
            checked += 1
    assert checked >= 3 * len(methods_at)


def test_method_not_allowed_helper() -> None:
    """What the app's 405 handler is to return: the problem with Allow and the methods in the detail."""
    from flask import Flask

    with Flask("t").test_request_context("/x", method="PATCH"):
        response = errors.method_not_allowed(MethodNotAllowed(["POST", "get", "OPTIONS"]))
    assert response.status_code == 405 and response.mimetype == PROBLEM
    assert response.headers["Allow"] == "GET, OPTIONS, POST"
    assert json.loads(response.get_data())["detail"] == "this resource takes GET, OPTIONS, POST"


def _issue(api: Api, **fields: Any) -> tuple[str, str, dict[str, Any]]:
    body = {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key()), "domains": ["api.example-fintech.eu"]}
    body.update(fields)
    return "POST", f"{PREFIX}/certificates", {"json": {k: v for k, v in body.items() if v is not None}}


def _behaviour(**fields: Any) -> tuple[str, str, dict[str, Any]]:
    return "PUT", f"{PREFIX}/simulator/behaviours", {"json": fields}


def _error_paths(api: Api, revoked: str) -> list[tuple[str, tuple[str, str, dict[str, Any]], str | None, int, str]]:
    """(what, request, caller, status, a fragment of the detail that shows the right refusal was reached)."""
    return [
        ("qscd on a QWAC", _issue(api, qscd=True), "operator", 422, "QSCD"),
        ("browser on a QSealC", _issue(api, kind="qsealc", domains=None, browser=True), "operator", 400, "browser"),
        ("domains on a QSealC", _issue(api, kind="qsealc"), "operator", 400, "domain"),
        ("a QWAC without domains", _issue(api, domains=[]), "operator", 400, "domain name"),
        ("a PSP not in the register", _issue(api, org_id="PSDBE-NBB-9999999999"), "operator", 422, "NCA register"),
        ("an unknown kind", _issue(api, kind="qcert"), "operator", 400, "kind"),
        ("a CSR that is not one", _issue(api, csr="hello"), "operator", 400, "csr"),
        ("an unknown field", _issue(api, colour="red"), "operator", 400, "colour"),
        ("an auditor issuing", _issue(api), "auditor", 403, "'auditor'"),
        ("no token", _issue(api), None, 401, "Bearer"),
        ("a bad query parameter", ("GET", f"{PREFIX}/certificates?status=fine", {}), "auditor", 400, "status"),
        ("a malformed serial", ("GET", f"{PREFIX}/certificates/xyz", {}), "auditor", 400, ""),
        ("an unknown serial", ("GET", f"{PREFIX}/certificates/ABCDEF", {}), "auditor", 404, "ABCDEF"),
        ("revoking an unknown serial", ("POST", f"{PREFIX}/certificates/ABCDEF/revoke", {"json": {"reason": "superseded"}}),
         "operator", 404, "ABCDEF"),
        ("an unknown reason", ("POST", f"{PREFIX}/certificates/{revoked}/revoke", {"json": {"reason": "boredom"}}),
         "operator", 400, "reason"),
        ("revoking twice", ("POST", f"{PREFIX}/certificates/{revoked}/revoke", {"json": {"reason": "superseded"}}),
         "operator", 409, revoked),
        ("a malformed CA id", _behaviour(ca="Qwac CA", behaviour="stale"), "operator", 400, "CA id"),
        ("an unknown CA", _behaviour(ca="no-such-ca", behaviour="stale"), "operator", 404, "no-such-ca"),
        ("slow without a delay", _behaviour(ca="qwac-ca", behaviour="slow"), "operator", 400, "delay"),
        ("a delay too long", _behaviour(ca="qwac-ca", behaviour="slow", delay_seconds=10**6), "operator", 422, "delay"),
        ("a delay where none applies", _behaviour(ca="qwac-ca", behaviour="stale", delay_seconds=1), "operator", 400, "delay"),
        ("an unknown behaviour", _behaviour(ca="qwac-ca", behaviour="sulk"), "operator", 400, "sulk"),
        ("an unknown certificate of the CA", _behaviour(ca="qwac-ca", behaviour="stale", serial="ABCDEF"), "operator",
         404, "ABCDEF"),
        ("a malformed behaviour id", ("DELETE", f"{PREFIX}/simulator/behaviours/0", {}), "operator", 400, "behaviour id"),
        ("an unknown behaviour id", ("DELETE", f"{PREFIX}/simulator/behaviours/99", {}), "operator", 404, "99"),
        ("a body that is not a JWS", ("POST", f"{PREFIX}/revoke-by-key", {"data": b"x.y", "content_type": "application/jose"}),
         None, 400, "JWS"),
        ("an unknown API path", ("GET", f"{PREFIX}/nothing", {}), "auditor", 404, ""),
        ("a wrong method", ("DELETE", f"{PREFIX}/certificates", {}), "operator", 405, ""),
        ("NCA: not application/jose", ("POST", "/nca/v1/authorisations", {"json": {}}), None, 415, "application/jose"),
        ("NCA: not a JWS", ("POST", "/nca/v1/revocation-requests", {"data": b"a.b.c", "content_type": "application/jose"}),
         None, (400, 401), ""),
        ("NCA: no signature on a status query", ("GET", "/nca/v1/revocation-requests/req-1", {}), None, 401, "JWS"),
        ("NCA: a wrong method", ("DELETE", "/nca/v1/authorisations", {}), None, 405, ""),
        ("CRL of no CA", ("GET", "/crl/no-such-ca.crl", {}), None, 404, "no-such-ca"),
        ("AIA of no CA", ("GET", "/ca/no-such-ca.der", {}), None, 404, "no-such-ca"),
        ("AIA chain of no CA", ("GET", "/ca/no-such-ca-chain.pem", {}), None, 404, "no-such-ca"),
        ("TL: a wrong method", ("POST", "/tl.xml", {}), None, 405, ""),
        ("metrics: a wrong method", ("PUT", "/metrics", {}), None, 405, ""),
    ]


def test_error_details_speak_the_apis_language_and_change_nothing(api: Api) -> None:
    issued, _ = api.issue(kind="qsealc")
    revoked = issued["serial"]
    response = api.client.post(f"{PREFIX}/certificates/{revoked}/revoke", json={"reason": "superseded"},
                               headers=api.headers("operator"))
    assert response.status_code == 200
    before = store_state(api.data_dir)
    for what, (method, url, kwargs), caller, status, fragment in _error_paths(api, revoked):
        response = api.client.open(url, method=method, headers=api.headers(caller), **kwargs)
        body = assert_problem(response, status)
        detail = body["detail"]
        assert fragment in detail, (what, detail)
        assert not CLI_FLAG.search(detail), (what, detail)
        assert not CLI_COMMAND.search(detail), (what, detail)
        assert not A_BEFORE_VOWEL.search(detail), (what, detail)
    assert store_state(api.data_dir) == before


@pytest.mark.parametrize(("role", "needs"), [("auditor", "operator")])
def test_forbidden_names_the_role_and_the_role_needed(api: Api, role: str, needs: str) -> None:
    response = api.client.put(f"{PREFIX}/simulator/behaviours", json={"ca": "qwac-ca", "behaviour": "stale"},
                              headers=api.headers(role))
    detail = assert_problem(response, 403)["detail"]
    assert f"'{role}'" in detail and needs in detail, detail
