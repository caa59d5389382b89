"""The REST API under /api/v1, through Flask's test client: tokens and roles, issuance from a
CSR, search, revocation by an operator, the OpenAPI document, and bad input that is refused with
problem+json and changes nothing. (Revocation by the certificate's own key: test_api_revoke_by_key.py;
random input: test_api_fuzz.py; the issued QWAC judged by openssl: tests/system/web/test_api.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from prometheus_client import REGISTRY

from qtsp.services import tokens
from qtsp.services.revocation import REASON_CHOICES
from qtsp.web import create_app
from qtsp.web.api import ACCESS, PUBLIC
from support.api import DOMAIN, PREFIX, SAMPLE_ORG, Api, assert_problem, csr_pem, new_key, store_state


# --- authentication and roles -------------------------------------------------------------------

WRONG = "qtsp_" + "A" * 43  # well formed, never issued
# (operation, caller, expected status); operations are defined in _operation below.
AUTH_MATRIX = [
    (op, caller, expected)
    for op, expected_by_caller in {
        "issue": {"operator": 201, "auditor": 403},
        "list": {"operator": 200, "auditor": 200},
        "get": {"operator": 200, "auditor": 200},
        "revoke": {"operator": 200, "auditor": 403},
    }.items()
    for caller, expected in [(None, 401), (WRONG, 401), ("Basic b3BzOm9wcw==", 401), ("revoked", 401),
                             *expected_by_caller.items()]
]


def _operation(api: Api, op: str, serial: str) -> tuple[str, str, dict[str, Any] | None]:
    return {
        "issue": ("POST", f"{PREFIX}/certificates",
                  {"kind": "qsealc", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key())}),
        "list": ("GET", f"{PREFIX}/certificates?limit=5", None),
        "get": ("GET", f"{PREFIX}/certificates/{serial}", None),
        "revoke": ("POST", f"{PREFIX}/certificates/{serial}/revoke", {"reason": "superseded"}),
    }[op]


@pytest.mark.parametrize("op, caller, expected", AUTH_MATRIX, ids=[f"{o}-{str(c)[:8]}-{e}" for o, c, e in AUTH_MATRIX])
def test_auth_matrix(api: Api, op: str, caller: str | None, expected: int) -> None:
    issued, _ = api.issue()
    if caller == "revoked":
        token_id, secret = tokens.create(api.sandbox, "short-lived", "operator")
        tokens.revoke_token(api.sandbox, token_id)
        headers = {"Authorization": f"Bearer {secret}"}
    elif caller is not None and caller.startswith("Basic"):
        headers = {"Authorization": caller}
    else:
        headers = api.headers(caller)
    method, url, body = _operation(api, op, issued["serial"])
    before = store_state(api.data_dir)
    response = api.client.open(url, method=method, json=body, headers=headers)
    assert response.status_code == expected, response.get_data(as_text=True)
    if expected >= 400:
        assert_problem(response, expected)
        assert store_state(api.data_dir) == before
        challenge = response.headers.get("WWW-Authenticate", "")
        assert challenge.startswith('Bearer realm="qtsp-api"')
        if caller not in (None,) and expected == 401 and not str(caller).startswith("Basic"):
            assert 'error="invalid_token"' in challenge
        if expected == 403:
            assert 'error="insufficient_scope"' in challenge


def test_public_endpoints_need_no_token_and_unknown_api_paths_do(api: Api) -> None:
    assert api.client.get(f"{PREFIX}/openapi.json").status_code == 200
    assert_problem(api.client.get(f"{PREFIX}/no-such-thing"), 401)
    assert_problem(api.client.get(f"{PREFIX}/no-such-thing", headers=api.headers("auditor")), 404)
    assert_problem(api.client.delete(f"{PREFIX}/certificates", headers=api.headers("operator")), 405)
    assert_problem(api.client.get(f"{PREFIX}/revoke-by-key"), 401)  # wrong method: not the public endpoint


def test_default_deny_for_endpoints_missing_from_the_access_table(api: Api) -> None:
    app = create_app({"data_dir": api.data_dir})
    app.add_url_rule(f"{PREFIX}/forgotten", endpoint="api.forgotten", view_func=lambda: "secret")
    app.add_url_rule(f"{PREFIX}/elsewhere", endpoint="other.elsewhere", view_func=lambda: "secret")
    client = app.test_client()
    for path in ("/forgotten", "/elsewhere"):
        assert_problem(client.get(PREFIX + path), 401)
        assert_problem(client.get(PREFIX + path, headers=api.headers("operator")), 403)
        assert_problem(client.get(PREFIX + path, headers=api.headers("auditor")), 403)


def test_access_table_covers_every_api_route(api: Api) -> None:
    endpoints = {r.endpoint for r in api.app.url_map.iter_rules() if r.endpoint.startswith("api.")}
    assert endpoints == set(ACCESS)
    assert {e for e, p in ACCESS.items() if p == PUBLIC} == {"api.revoke_by_key", "api.openapi"}


def test_metrics_count_api_responses(api: Api) -> None:
    def sample(endpoint: str, status: str) -> float:
        return REGISTRY.get_sample_value("qtsp_http_requests_total", {"endpoint": endpoint, "outcome": status}) or 0.0

    before = (sample("api.list_certificates", "200"), sample("api.list_certificates", "401"),
              sample("api.list_certificates", "400"))
    api.client.get(f"{PREFIX}/certificates", headers=api.headers("auditor"))
    api.client.get(f"{PREFIX}/certificates")
    api.client.get(f"{PREFIX}/certificates?limit=0", headers=api.headers("auditor"))
    after = (sample("api.list_certificates", "200"), sample("api.list_certificates", "401"),
             sample("api.list_certificates", "400"))
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]


# --- issuance, lookup, search -----------------------------------------------------------------------


def test_issue_qsealc_and_search(api: Api) -> None:
    qwac, _ = api.issue()
    seal, _ = api.issue(kind="qsealc", qscd=True)
    client, reader = api.client, api.headers("auditor")

    def serials(query: str) -> list[str]:
        response = client.get(f"{PREFIX}/certificates{query}", headers=reader)
        assert response.status_code == 200, response.get_data(as_text=True)
        return [c["serial"] for c in response.get_json()["certificates"]]

    assert serials("") == [seal["serial"], qwac["serial"]]
    assert serials("?profile=qwac") == [qwac["serial"]]
    assert serials(f"?org_id={SAMPLE_ORG}&limit=1") == [seal["serial"]]
    assert serials("?limit=1&offset=1") == [qwac["serial"]]
    assert serials("?org_id=PSDBE-NBB-9999999999") == []
    assert serials("?status=revoked") == []
    client.post(f"{PREFIX}/certificates/{qwac['serial']}/revoke", json={"reason": "superseded"}, headers=api.headers("operator"))
    assert serials("?status=revoked") == [qwac["serial"]]
    assert serials("?status=good") == [seal["serial"]]
    page = client.get(f"{PREFIX}/certificates?limit=1", headers=reader).get_json()
    assert page["next_offset"] == 1 and page["certificates"][0]["profile"].startswith("qsealc")


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "limit=abc", "limit=-1", "offset=-1", "offset=99999999999",
                                   "status=expiring", "colour=red", "limit=1&limit=2", "profile=" + "p" * 65])
def test_search_refuses_bad_query(api: Api, query: str) -> None:
    assert_problem(api.client.get(f"{PREFIX}/certificates?{query}", headers=api.headers("auditor")), 400)


def test_get_certificate_unknown_and_malformed_serials(api: Api) -> None:
    reader = api.headers("auditor")
    assert_problem(api.client.get(f"{PREFIX}/certificates/0123456789ABCDEF", headers=reader), 404)
    for bad in ("zz", "x" * 41, "12 34", "0x"):
        assert_problem(api.client.get(f"{PREFIX}/certificates/{bad}", headers=reader), 400)


# --- revocation by an operator ---------------------------------------------------------------------


def test_revoke_then_ocsp_says_revoked_and_rerevoke_is_409(api: Api) -> None:
    issued, _ = api.issue()
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(issued["chain"][0].encode())
    assert api.ocsp_status(cert, issuer).certificate_status == ocsp.OCSPCertStatus.GOOD

    operator = api.headers("operator")
    url = f"{PREFIX}/certificates/{issued['serial']}/revoke"
    response = api.client.post(url, json={"reason": "superseded"}, headers=operator)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert (body["serial"], body["reason"]) == (issued["serial"], "superseded") and body["revoked_at"]

    answer = api.ocsp_status(cert, issuer)
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_reason == x509.ReasonFlags.superseded
    assert answer.serial_number == cert.serial_number

    before = store_state(api.data_dir)
    for reason in ("superseded", "unspecified", "cessation-of-operation"):
        assert_problem(api.client.post(url, json={"reason": reason}, headers=operator), 409)
    assert store_state(api.data_dir) == before
    # the one change allowed: to key-compromise, once
    changed = api.client.post(url, json={"reason": "key-compromise"}, headers=operator)
    assert changed.status_code == 200 and changed.get_json()["reason_changed_from"] == "superseded"
    assert api.ocsp_status(cert, issuer).revocation_reason == x509.ReasonFlags.key_compromise
    assert_problem(api.client.post(url, json={"reason": "key-compromise"}, headers=operator), 409)


def test_revoke_unknown_serial_is_404_and_changes_nothing(api: Api) -> None:
    api.issue()
    before = store_state(api.data_dir)
    operator = api.headers("operator")
    assert_problem(api.client.post(f"{PREFIX}/certificates/0123456789ABCDEF/revoke", json={"reason": "superseded"},
                                   headers=operator), 404)
    assert_problem(api.client.post(f"{PREFIX}/certificates/not-hex/revoke", json={"reason": "superseded"},
                                   headers=operator), 400)
    assert store_state(api.data_dir) == before


@pytest.mark.parametrize("body", [{}, {"reason": "because"}, {"reason": None}, {"reason": "superseded", "force": True},
                                  {"reason": "certificate-hold"}, ["superseded"]])
def test_revoke_refuses_bad_bodies(api: Api, body: Any) -> None:
    issued, _ = api.issue()
    before = store_state(api.data_dir)
    assert_problem(api.client.post(f"{PREFIX}/certificates/{issued['serial']}/revoke", json=body,
                                   headers=api.headers("operator")), 400)
    assert store_state(api.data_dir) == before


# --- bad input: 4xx problem+json, never 500, nothing changes -------------------------------------------

GOOD_CSR = csr_pem(ec.generate_private_key(ec.SECP256R1()))
BAD_REQUESTS: list[tuple[str, dict[str, Any], int]] = [
    ("bad JSON", {"data": b'{"kind": "qwac",', "content_type": "application/json"}, 400),
    ("not UTF-8", {"data": b'{"kind": "\xff"}', "content_type": "application/json"}, 400),
    ("empty body", {"data": b"", "content_type": "application/json"}, 400),
    ("JSON array", {"json": [1, 2]}, 400),
    ("NaN", {"data": b'{"kind": "qwac", "qscd": NaN}', "content_type": "application/json"}, 400),
    ("duplicate keys", {"data": b'{"kind": "qwac", "kind": "qsealc"}', "content_type": "application/json"}, 400),
    ("deep nesting", {"data": b"[" * 100_000 + b"]" * 100_000, "content_type": "application/json"}, 400),
    ("lone surrogate", {"data": b'{"kind": "qwac", "org_id": "\\ud800", "csr": "x"}', "content_type": "application/json"}, 400),
    ("unknown field", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN],
                                "generate_key": "ecdsa-p256"}}, 400),
    ("missing csr", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "domains": [DOMAIN]}}, 400),
    ("wrong kind", {"json": {"kind": "tls", "org_id": SAMPLE_ORG, "csr": GOOD_CSR}}, 400),
    ("csr not a string", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": 7, "domains": [DOMAIN]}}, 400),
    ("qscd not a boolean", {"json": {"kind": "qsealc", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "qscd": "yes"}}, 400),
    ("browser as 1", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN], "browser": 1}}, 400),
    ("domains not strings", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [1]}}, 400),
    ("domains a string", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": DOMAIN}}, 400),
    ("bad CSR", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "domains": [DOMAIN],
                          "csr": "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n"}}, 400),
    ("DER CSR as text", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "domains": [DOMAIN], "csr": "MIIB"}}, 400),
    ("bad domain", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": ["not a domain"]}}, 400),
    ("IP as domain", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": ["10.0.0.1"]}}, 422),
    ("unregistered PSP", {"json": {"kind": "qwac", "org_id": "PSDBE-NBB-9999999999", "csr": GOOD_CSR,
                                   "domains": [DOMAIN]}}, 422),
    ("unauthorised role", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN],
                                    "roles": "PSP_AS"}}, 422),
    ("qscd on a QWAC", {"json": {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN],
                                 "qscd": True}}, 422),
    ("domains on a QSealC", {"json": {"kind": "qsealc", "org_id": SAMPLE_ORG, "csr": GOOD_CSR, "domains": [DOMAIN]}}, 400),
    ("wrong content type", {"data": json.dumps({"kind": "qwac"}), "content_type": "text/plain"}, 415),
    ("form body", {"data": {"kind": "qwac"}}, 415),
    ("oversized body", {"data": b'{"csr": "' + b"A" * (300 * 1024) + b'"}', "content_type": "application/json"}, 413),
]


@pytest.mark.parametrize("why, kwargs, expected", BAD_REQUESTS, ids=[b[0] for b in BAD_REQUESTS])
def test_issue_refuses_bad_input(api: Api, why: str, kwargs: dict[str, Any], expected: int) -> None:
    before = store_state(api.data_dir)
    response = api.client.post(f"{PREFIX}/certificates", headers=api.headers("operator"), **kwargs)
    assert_problem(response, expected)
    assert store_state(api.data_dir) == before


def test_oversized_bodies_are_413_everywhere(api: Api) -> None:
    issued, _ = api.issue()
    big = b"A" * (257 * 1024)
    before = store_state(api.data_dir)
    operator = api.headers("operator")
    assert_problem(api.client.post(f"{PREFIX}/certificates/{issued['serial']}/revoke", data=big,
                                   content_type="application/json", headers=operator), 413)
    assert_problem(api.revoke_by_key(big), 413)
    assert store_state(api.data_dir) == before


# --- the OpenAPI document ---------------------------------------------------------------------------


def test_openapi_lists_every_route(api: Api) -> None:
    response = api.client.get(f"{PREFIX}/openapi.json")
    assert response.status_code == 200 and response.mimetype == "application/json"
    doc = json.loads(response.get_data())
    assert doc["openapi"].startswith("3.") and doc["servers"] == [{"url": PREFIX}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {**doc["components"]["securitySchemes"]["bearerAuth"],
                                                                  "type": "http", "scheme": "bearer"}
    routes = set()
    for rule in api.app.url_map.iter_rules():
        if not rule.endpoint.startswith("api."):
            continue
        path = rule.rule[len(PREFIX):]
        for name in rule.arguments:
            path = path.replace(f"<{name}>", f"{{{name}}}")
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routes.add((path, method.lower(), rule.endpoint))
    documented = {(path, method) for path, item in doc["paths"].items() if "servers" not in item  # /nca/v1 paths
                  for method in item}
    assert {(p, m) for p, m, _ in routes} == documented
    for path, method, endpoint in routes:
        operation = doc["paths"][path][method]
        assert operation["responses"] and operation["summary"]
        assert (operation["security"] == []) == (ACCESS[endpoint] == PUBLIC), (path, method)
        for parameter in operation.get("parameters", []):
            if parameter["in"] == "path":
                assert "{" + parameter["name"] + "}" in path
    assert doc["components"]["schemas"]["RevokeRequest"]["properties"]["reason"]["enum"] == list(REASON_CHOICES)

    def refs(node: Any) -> list[str]:
        if isinstance(node, dict):
            return ([node["$ref"]] if "$ref" in node else []) + [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        assert ref.startswith("#/components/schemas/") and ref.rsplit("/", 1)[1] in doc["components"]["schemas"], ref
