"""API tokens expire and may be scoped (issue 15, finding 6: "an operator token issues a QWAC naming any
PSP for any domain and revokes any PSP's certificate; tokens have no expiry"). The scope is enforced in the
services (qtsp.services.access), so the checks here run twice: through the REST API, and on the services
directly as the portal will call them. Out of scope answers exactly as a real miss: same status, same body
with the names swapped."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from qtsp.core.errors import QTSPError
from qtsp.core.types import SerialHex, serial_hex
from qtsp.services import issuance, register, revocation, search, simulator, tokens
from qtsp.services.access import make_scope
from support import SAMPLE_ORG
from support.api import DOMAIN, PREFIX, Api, csr_pem, new_key, store_state
from support.nca import issue_cert

OTHER_ORG = "PSDBE-NBB-0555555555"
NEVER_ORG = "PSDBE-NBB-0999999999"  # in no register
NEVER_SERIAL = "7E57AB1E0000000000000001"


def _other_psp(api: Api) -> None:
    register.add_psp(api.sandbox, org_id=OTHER_ORG, name="Other Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Gent", registration_number="0555.555.555")


def _bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def _body(response: Any, swap: tuple[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    text = response.get_data(as_text=True)
    if swap is not None:
        text = text.replace(*swap)
    return response.status_code, json.loads(text)


def _issue(api: Api, headers: dict[str, str], org: str, kind: str = "qwac") -> Any:
    body: dict[str, Any] = {"kind": kind, "org_id": org, "csr": csr_pem(new_key())}
    if kind == "qwac":
        body["domains"] = [DOMAIN]
    return api.client.post(f"{PREFIX}/certificates", json=body, headers=headers)


def test_an_expired_token_is_refused(api: Api) -> None:
    long_ago = dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=10)
    _, secret = tokens.create(api.sandbox, "old", "operator", now=long_ago, valid_days=7)
    response = api.client.get(f"{PREFIX}/certificates", headers=_bearer(secret))
    assert response.status_code == 401 and "expired" in response.get_json()["detail"]
    # the default: 90 days, shown by list
    _, fresh = tokens.create(api.sandbox, "fresh", "auditor")
    assert api.client.get(f"{PREFIX}/certificates", headers=_bearer(fresh)).status_code == 200
    info = next(t for t in tokens.list_tokens(api.sandbox) if t.name == "fresh")
    assert dt.timedelta(days=89) < info.expires_at - dt.datetime.now(dt.timezone.utc) <= dt.timedelta(days=90)
    assert info.as_dict()["status"] == "active"
    assert next(t for t in tokens.list_tokens(api.sandbox) if t.name == "old").as_dict()["status"] == "expired"


@pytest.mark.parametrize("kwargs", [{"valid_days": 0}, {"valid_days": 731}, {"valid_days": 5, "expires": dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)},
                                    {"expires": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)}, {"expires": dt.datetime(2027, 1, 1)}])
def test_token_expiry_out_of_bounds_is_refused_and_changes_nothing(api: Api, kwargs: dict[str, Any]) -> None:
    before = store_state(api.data_dir)
    with pytest.raises(QTSPError):
        tokens.create(api.sandbox, "bad", "operator", **kwargs)
    assert store_state(api.data_dir) == before


def test_a_psp_scoped_token_reaches_its_psp_only_and_the_rest_looks_absent(api: Api) -> None:
    _other_psp(api)
    mine = issue_cert(api.sandbox, SAMPLE_ORG)
    theirs = issue_cert(api.sandbox, OTHER_ORG)
    their_serial = serial_hex(theirs.serial_number)
    _, secret = tokens.create(api.sandbox, "fintech-a", "operator", scope=make_scope([SAMPLE_ORG]))
    scoped = _bearer(secret)
    before = store_state(api.data_dir)

    # issuing for another PSP: exactly the answer for a PSP in no register
    assert _body(_issue(api, scoped, OTHER_ORG), (OTHER_ORG, NEVER_ORG)) == _body(_issue(api, scoped, NEVER_ORG))
    assert _issue(api, scoped, OTHER_ORG).status_code == 422
    # reading and revoking another PSP's certificate: exactly the answers for a serial never issued
    get = api.client.get(f"{PREFIX}/certificates/{their_serial}", headers=scoped)
    assert _body(get, (their_serial, NEVER_SERIAL)) == _body(api.client.get(f"{PREFIX}/certificates/{NEVER_SERIAL}",
                                                                             headers=scoped))
    assert get.status_code == 404
    revoke = api.client.post(f"{PREFIX}/certificates/{their_serial}/revoke", json={"reason": "superseded"}, headers=scoped)
    never = api.client.post(f"{PREFIX}/certificates/{NEVER_SERIAL}/revoke", json={"reason": "superseded"}, headers=scoped)
    assert revoke.status_code == 404 and _body(revoke, (their_serial, NEVER_SERIAL)) == _body(never)
    # the list holds its PSP's certificates only, and counts only those
    listed = api.client.get(f"{PREFIX}/certificates", headers=scoped).get_json()
    assert {c["org_id"] for c in listed["certificates"]} == {SAMPLE_ORG} and listed["total"] == len(listed["certificates"])
    assert api.client.get(f"{PREFIX}/certificates", query_string={"org_id": OTHER_ORG}, headers=scoped).get_json()["total"] == 0
    # CA-wide things are out of reach: the simulator answers as for a CA that does not exist
    put = api.client.put(f"{PREFIX}/simulator/behaviours", json={"ca": "qwac-ca", "behaviour": "try-later"}, headers=scoped)
    nope = api.client.put(f"{PREFIX}/simulator/behaviours", json={"ca": "nope-ca", "behaviour": "try-later"}, headers=scoped)
    assert put.status_code == 404 and _body(put, ("qwac-ca", "nope-ca")) == _body(nope)
    assert store_state(api.data_dir) == before  # nothing of the other PSP's changed, nothing issued

    # its own PSP: as any operator token
    assert _issue(api, scoped, SAMPLE_ORG).status_code == 201
    assert api.client.get(f"{PREFIX}/certificates/{serial_hex(mine.serial_number)}", headers=scoped).status_code == 200
    assert api.client.post(f"{PREFIX}/certificates/{serial_hex(mine.serial_number)}/revoke", json={"reason": "superseded"},
                           headers=scoped).status_code == 200
    assert api.client.get(f"{PREFIX}/certificates/{their_serial}", headers=api.headers("operator")).get_json()["status"] == "good"


def test_kind_and_ca_scopes(api: Api) -> None:
    seals_only = _bearer(tokens.create(api.sandbox, "seals", "operator", scope=make_scope(kinds=["qsealc"]))[1])
    before = store_state(api.data_dir)
    refused = _issue(api, seals_only, SAMPLE_ORG, "qwac")
    assert refused.status_code == 404 and refused.get_json()["detail"] == "no qwac CA in this sandbox"
    assert store_state(api.data_dir) == before
    assert _issue(api, seals_only, SAMPLE_ORG, "qsealc").status_code == 201
    qwac_ca_only = _bearer(tokens.create(api.sandbox, "qwac-ca", "operator", scope=make_scope(cas=["qwac-ca"]))[1])
    assert _issue(api, qwac_ca_only, SAMPLE_ORG, "qsealc").status_code == 404
    assert _issue(api, qwac_ca_only, SAMPLE_ORG, "qwac").status_code == 201
    # a CA-scoped token may set its CA's behaviours, not another's
    put = api.client.put(f"{PREFIX}/simulator/behaviours", json={"ca": "qwac-ca", "behaviour": "try-later"}, headers=qwac_ca_only)
    assert put.status_code == 200
    other = api.client.put(f"{PREFIX}/simulator/behaviours", json={"ca": "qseal-ca", "behaviour": "try-later"},
                           headers=qwac_ca_only)
    assert other.status_code == 404
    assert api.client.delete(f"{PREFIX}/simulator/behaviours/{put.get_json()['id']}", headers=seals_only).status_code == 404


def test_the_services_enforce_the_scope_without_the_web_layer(api: Api) -> None:
    """What the future portal calls: the same refusals, the same words, with no HTTP in between."""
    _other_psp(api)
    theirs = serial_hex(issue_cert(api.sandbox, OTHER_ORG).serial_number)
    issue_cert(api.sandbox, SAMPLE_ORG)
    scope = make_scope([SAMPLE_ORG])
    before = store_state(api.data_dir)

    def refusal(call: Any) -> tuple[str, str]:
        with pytest.raises(QTSPError) as err:
            call()
        return err.value.kind.value, err.value.detail

    never = SerialHex(NEVER_SERIAL)
    assert refusal(lambda: revocation.revoke(api.sandbox, theirs, "superseded", scope=scope)) \
        == refusal(lambda: revocation.revoke(api.sandbox, never, "superseded"))[:1] + (f"no certificate with serial {theirs}",)
    assert refusal(lambda: search.certificate(api.sandbox, SerialHex(theirs), scope)) \
        == refusal(lambda: search.certificate(api.sandbox, never))[:1] + (f"no certificate with serial {theirs}",)
    request = issuance.IssueRequest("qsealc", OTHER_ORG, generate_key="ecdsa-p256")
    missing = issuance.IssueRequest("qsealc", NEVER_ORG, generate_key="ecdsa-p256")
    assert refusal(lambda: issuance.issue(api.sandbox, request, scope=scope))[1].replace(OTHER_ORG, NEVER_ORG) \
        == refusal(lambda: issuance.issue(api.sandbox, missing))[1]
    assert refusal(lambda: simulator.set_behaviour(api.sandbox, "try-later", "qwac-ca", scope=scope)) \
        == ("not_found", "no CA 'qwac-ca'")
    page = search.certificates(api.sandbox, now=dt.datetime.now(dt.timezone.utc), scope=scope)
    assert page.total >= 1 and all(isinstance(r, search.CertificateRecord) and r.org_id == SAMPLE_ORG for r in page.items)
    assert store_state(api.data_dir) == before
