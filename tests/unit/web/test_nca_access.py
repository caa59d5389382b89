"""Signed requests bound to this service, single-use status queries, uniform answers across NCAs, and the
operator's withdrawal of an NCA credential (issue 15: finding 5 and the "Low" finding). Each test replays
the attack and shows it refused, with nothing changed. The service side of the credential lifecycle:
tests/unit/services/test_nca_credentials.py."""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from cli.main import cli
from qtsp.core.types import serial_hex
from qtsp.services import tokens
from qtsp.services.access import make_scope
from support import SAMPLE_ORG
from support.api import PREFIX, Api, assert_problem, key_payload, signed, store_state
from support.nca import BE_PSP, NL_PSP, issue_cert, nca_counts, sign

REVOKE = "/nca/v1/revocation-requests"


def _post(api: Api, path: str, compact: str) -> Any:
    return api.client.post(path, data=compact, content_type="application/jose")


def _status(api: Api, request_id: str, compact: str) -> Any:
    return api.client.get(f"{REVOKE}/{request_id}", headers={"Authorization": f"JWS {compact}"})


def _fingerprint(ncas: dict[str, dict[str, bytes]], nca_id: str) -> str:
    cert = x509.load_pem_x509_certificate(ncas[nca_id]["cert"])
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


# --- aud: a request signed for another QTSP or another endpoint ---------------------------------------------


def test_an_nca_request_signed_for_another_qtsp_or_endpoint_is_refused(api: Api, ncas: dict[str, Any]) -> None:
    cert = issue_cert(api.sandbox, BE_PSP)
    body = {"org_id": BE_PSP, "reason": "privilege-withdrawn"}
    before = nca_counts(api.data_dir)
    cases = [
        ("signed for another QTSP", sign(ncas, "BE-NBB", body, base="https://qtsp.other.example")),
        ("signed for the register feed, sent to revocation", sign(ncas, "BE-NBB", body, aud="http://127.0.0.1:8080/nca/v1/authorisations")),
        ("another port of the same host", sign(ncas, "BE-NBB", body, base="http://127.0.0.1:8443")),
    ]
    for name, compact in cases:
        problem = assert_problem(_post(api, REVOKE, compact), 401)
        assert "aud must be http://127.0.0.1:8080/nca/v1/revocation-requests" in problem["detail"], name
        assert nca_counts(api.data_dir) == before, name
    assert _post(api, REVOKE, sign(ncas, "BE-NBB", body)).status_code == 200  # this service's URL: accepted
    revoked = api.client.get(f"{PREFIX}/certificates/{serial_hex(cert.serial_number)}", headers=api.headers("auditor"))
    assert revoked.get_json()["status"] == "revoked"


def test_revoke_by_key_signed_for_another_qtsp_is_refused(api: Api) -> None:
    issued, key = api.issue()
    before = store_state(api.data_dir)
    elsewhere = signed(key, "ES256", key_payload(issued["serial"], aud="https://qtsp.other.example/api/v1/revoke-by-key"))
    problem = assert_problem(api.revoke_by_key(elsewhere), 403)
    assert "aud must be http://127.0.0.1:8080/api/v1/revoke-by-key" in problem["detail"]
    payload = key_payload(issued["serial"])
    del payload["aud"]
    assert_problem(api.revoke_by_key(signed(key, "ES256", payload)), 400)  # aud is required
    assert store_state(api.data_dir) == before
    assert api.revoke_by_key(signed(key, "ES256", key_payload(issued["serial"]))).status_code == 200


# --- status queries: single-use ----------------------------------------------------------------------------


def test_a_signed_status_query_is_good_once(api: Api, ncas: dict[str, Any]) -> None:
    issue_cert(api.sandbox, BE_PSP)
    assert _post(api, REVOKE, sign(ncas, "BE-NBB", {"org_id": BE_PSP, "reason": "superseded"}, jti="req-1")).status_code == 200
    query = sign(ncas, "BE-NBB", {"get": "req-1"})
    first = _status(api, "req-1", query)
    assert first.status_code == 200 and first.get_json()["result"]["request_id"] == "req-1"
    replayed = assert_problem(_status(api, "req-1", query), 401)  # the same signed query again, within its window
    assert "used already" in replayed["detail"]
    # signed for another request id's URL: refused by aud (the body alone used to decide)
    other_url = sign(ncas, "BE-NBB", {"get": "req-1"}, aud="http://127.0.0.1:8080/nca/v1/revocation-requests/req-2")
    assert_problem(_status(api, "req-1", other_url), 401)
    assert _status(api, "req-1", sign(ncas, "BE-NBB", {"get": "req-1"})).status_code == 200  # a fresh one


# --- another NCA's serial answers as a serial never issued -----------------------------------------------------


def test_another_ncas_serial_gets_exactly_the_answer_of_a_serial_never_issued(api: Api, ncas: dict[str, Any]) -> None:
    be_cert = issue_cert(api.sandbox, BE_PSP)
    be_serial = format(be_cert.serial_number, "X")
    never = "7E57AB1E00000001"
    before = nca_counts(api.data_dir)

    def ask(serial: str) -> tuple[int, dict[str, Any]]:
        response = _post(api, REVOKE, sign(ncas, "NL-DNB", {"org_id": NL_PSP, "serials": [serial], "reason": "superseded"},
                                           jti=str(uuid.uuid4())))
        return response.status_code, json.loads(response.get_data(as_text=True).replace(serial, "SERIAL"))

    assert ask(be_serial) == ask(never)
    assert ask(be_serial)[0] == 404
    assert nca_counts(api.data_dir) == before


# --- withdrawing a credential: the operator's API endpoint, the CLI, qtsp revoke ------------------------------


def test_the_operator_withdraws_an_nca_credential_through_the_api(api: Api, ncas: dict[str, Any]) -> None:
    fp = _fingerprint(ncas, "BE-NBB")
    url = f"{PREFIX}/nca-credentials/{fp}/withdraw"
    request = {"org_id": BE_PSP, "serials": ["FFFF"], "reason": "superseded"}
    assert _post(api, REVOKE, sign(ncas, "BE-NBB", request)).status_code == 404  # authenticated: no such serial
    scoped = tokens.create(api.sandbox, "psp-a", "operator", scope=make_scope([SAMPLE_ORG]))[1]
    before = store_state(api.data_dir)
    assert_problem(api.client.post(url, json={"reason": "key-compromise"}, headers=api.headers("auditor")), 403)
    out_of_scope = api.client.post(url, json={"reason": "key-compromise"}, headers={"Authorization": f"Bearer {scoped}"})
    unknown = api.client.post(f"{PREFIX}/nca-credentials/{'0' * 64}/withdraw", json={"reason": "key-compromise"},
                              headers={"Authorization": f"Bearer {scoped}"})
    assert out_of_scope.status_code == 404 and out_of_scope.get_data(as_text=True).replace(fp, "0" * 64) == unknown.get_data(as_text=True)
    assert_problem(api.client.post(url, json={"reason": "certificate-hold"}, headers=api.headers("operator")), 400)
    assert store_state(api.data_dir) == before

    done = api.client.post(url, json={"reason": "key-compromise"}, headers=api.headers("operator"))
    assert done.status_code == 200, done.get_data(as_text=True)
    assert done.get_json()["revoked_serial"] == serial_hex(x509.load_pem_x509_certificate(ncas["BE-NBB"]["cert"]).serial_number)
    problem = assert_problem(_post(api, REVOKE, sign(ncas, "BE-NBB", request)), 401)
    assert "withdrawn" in problem["detail"]
    assert_problem(api.client.post(url, json={"reason": "key-compromise"}, headers=api.headers("operator")), 409)


def test_qtsp_revoke_and_withdraw_credential_on_the_command_line(api: Api, ncas: dict[str, Any], data_dir: Path) -> None:
    runner = CliRunner()
    be_serial = serial_hex(x509.load_pem_x509_certificate(ncas["BE-NBB"]["cert"]).serial_number)
    revoked = runner.invoke(cli, ["revoke", be_serial, "--reason", "key-compromise", "--data-dir", str(data_dir)])
    assert revoked.exit_code == 0, revoked.output  # was: no certificate with that serial
    assert "withdrawn" in assert_problem(_post(api, REVOKE, sign(ncas, "BE-NBB", {"org_id": BE_PSP, "reason": "superseded"})),
                                         401)["detail"]
    withdrawn = runner.invoke(cli, ["nca", "withdraw-credential", _fingerprint(ncas, "NL-DNB")[:12], "--json",
                                    "--data-dir", str(data_dir)])
    assert withdrawn.exit_code == 0, withdrawn.output
    assert json.loads(withdrawn.stdout)["nca_id"] == "NL-DNB"
    assert_problem(_post(api, REVOKE, sign(ncas, "NL-DNB", {"org_id": NL_PSP, "reason": "superseded"})), 401)
    listed = json.loads(runner.invoke(cli, ["nca", "list", "--json", "--data-dir", str(data_dir)]).stdout)
    assert {v["nca_id"]: len(v["withdrawn"]) for v in listed if v["nca_id"] in ("BE-NBB", "NL-DNB")} == {"BE-NBB": 1, "NL-DNB": 1}
    again = runner.invoke(cli, ["nca", "withdraw-credential", _fingerprint(ncas, "NL-DNB"), "--data-dir", str(data_dir)])
    assert again.exit_code != 0 and "withdrawn at" in again.output
