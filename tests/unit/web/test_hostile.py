"""Hostile input, beyond the per-endpoint tests: one authentication/authorisation table over every
REST and NCA endpoint, and fuzzing of the NCA API and of CSR/PEM/identifier intake.

``QTSP_FUZZ_EXAMPLES`` raises the number of generated cases (stress/fuzz.py runs it long)."""

from __future__ import annotations

import os
import sqlite3
import uuid
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings, strategies as st

from qtsp.relying_party import nca_client
from qtsp.core.errors import QTSPError
from qtsp.core.keys import load_csr
from qtsp.core.names import check_domain, parse_org_id
from qtsp.core.psd2 import parse_roles
from qtsp.services import issuance, nca_identity, tokens
from qtsp.services.context import Sandbox
from support.nca import BASE as NCA_BASE

EXAMPLES = int(os.environ.get("QTSP_FUZZ_EXAMPLES", "60"))
ORG = "PSDBE-NBB-0123456789"
NL_ORG = "PSDNL-DNB-R161162"


def _counts(data_dir: Path) -> tuple[int, ...]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return tuple(con.execute(f"select count(*) from {t}").fetchone()[0]
                     for t in ("certificates", "revocations", "nca_requests", "psp_authorisations", "api_tokens"))
    finally:
        con.close()


@pytest.fixture
def world(sandbox: Sandbox, data_dir: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    from qtsp.services import register
    from qtsp.web import create_app

    creds = {}
    for nca_id, name in (("BE-NBB", "National Bank of Belgium"), ("NL-DNB", "The Netherlands Bank")):
        nca_identity.add_nca(sandbox, nca_id, name, generate=True, out=tmp_path / nca_id)
        creds[nca_id] = ((tmp_path / nca_id / "key.pem").read_bytes(), (tmp_path / nca_id / "cert.pem").read_bytes())
    register.add_psp(sandbox, org_id=NL_ORG, name="Example Payments BV", roles="PSP_AI", locality="Amsterdam",
                     registration_number="1")
    cert = issuance.issue(sandbox, issuance.IssueRequest("qwac", ORG, domains=("m.example.com",), generate_key="ecdsa-p256"))
    rogue = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "rogue")])
    import datetime as dt

    now = dt.datetime.now(dt.timezone.utc)
    rogue_cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(rogue.public_key()).serial_number(3) \
        .not_valid_before(now).not_valid_after(now + dt.timedelta(days=9)).sign(rogue, hashes.SHA256())
    creds["rogue"] = (rogue.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
                      rogue_cert.public_bytes(serialization.Encoding.PEM))
    return {
        "client": create_app({"data_dir": data_dir}).test_client(),
        "tokens": {"operator": tokens.create(sandbox, "op", "operator")[1], "auditor": tokens.create(sandbox, "au", "auditor")[1],
                   "wrong": "qtsp_" + "A" * 43},
        "ncas": creds,
        "serial": format(cert.certificate.serial_number, "X"),
    }


def _rest_call(world, endpoint: str, caller: str | None) -> int:  # type: ignore[no-untyped-def]
    headers = {} if caller is None else {"Authorization": f"Bearer {world['tokens'][caller]}"}
    client, serial = world["client"], world["serial"]
    if endpoint == "POST /api/v1/certificates":
        return client.post("/api/v1/certificates", json={"kind": "qsealc", "org_id": ORG, "csr": "not a csr"}, headers=headers).status_code
    if endpoint == "GET /api/v1/certificates":
        return client.get("/api/v1/certificates", headers=headers).status_code
    if endpoint == "GET /api/v1/certificates/{serial}":
        return client.get(f"/api/v1/certificates/{serial}", headers=headers).status_code
    if endpoint == "POST /api/v1/certificates/{serial}/revoke":
        return client.post("/api/v1/certificates/FFFF/revoke", json={"reason": "superseded"}, headers=headers).status_code
    if endpoint == "GET /api/v1/openapi.json":
        return client.get("/api/v1/openapi.json", headers=headers).status_code
    raise AssertionError(endpoint)


def _nca_call(world, endpoint: str, caller: str | None) -> int:  # type: ignore[no-untyped-def]
    client = world["client"]
    body = {"org_id": NL_ORG, "reason": "superseded", "serials": ["FFFF"]} if "revocation" in endpoint else \
        {"action": "change-roles", "org_id": NL_ORG, "roles": ["PSP_AI"]}
    if caller is None:
        compact = "eyJhbGciOiJFUzI1NiJ9." + "e30" + "."  # unsigned
    else:
        signer = {"own": "NL-DNB", "other": "BE-NBB", "wrong": "rogue"}[caller]
        key, cert = world["ncas"][signer]
        if endpoint.startswith("GET"):
            body = {"get": "nope"}
        compact = nca_client.sign_request("NL-DNB" if caller != "other" else "BE-NBB", key, cert, body, jti=str(uuid.uuid4()),
                                          aud=NCA_BASE + endpoint.split(" ", 1)[1].replace("{id}", "nope"))
    if endpoint == "POST /nca/v1/authorisations":
        return client.post("/nca/v1/authorisations", data=compact, content_type="application/jose").status_code
    if endpoint == "POST /nca/v1/revocation-requests":
        return client.post("/nca/v1/revocation-requests", data=compact, content_type="application/jose").status_code
    if endpoint == "GET /nca/v1/revocation-requests/{id}":
        return client.get("/nca/v1/revocation-requests/nope", headers={"Authorization": f"JWS {compact}"}).status_code
    raise AssertionError(endpoint)


# The table: endpoint x caller -> outcome. REST callers: no token, a wrong token, auditor, operator.
# NCA callers: unsigned, signed by an unregistered key, another NCA (BE-NBB about an NL PSP), the PSP's own NCA.
REST = {
    "POST /api/v1/certificates":                  {None: 401, "wrong": 401, "auditor": 403, "operator": 400},
    "GET /api/v1/certificates":                   {None: 401, "wrong": 401, "auditor": 200, "operator": 200},
    "GET /api/v1/certificates/{serial}":          {None: 401, "wrong": 401, "auditor": 200, "operator": 200},
    "POST /api/v1/certificates/{serial}/revoke":  {None: 401, "wrong": 401, "auditor": 403, "operator": 404},
    "GET /api/v1/openapi.json":                   {None: 200, "wrong": 200, "auditor": 200, "operator": 200},
}
NCA = {
    "POST /nca/v1/authorisations":           {None: 401, "wrong": 401, "other": 403, "own": 200},
    "POST /nca/v1/revocation-requests":      {None: 401, "wrong": 401, "other": 403, "own": 404},
    "GET /nca/v1/revocation-requests/{id}":  {None: 401, "wrong": 401, "other": 404, "own": 404},
}


def test_authentication_and_authorisation_table(world, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    before = _counts(data_dir)
    seen = {endpoint: {caller: _rest_call(world, endpoint, caller) for caller in row} for endpoint, row in REST.items()}
    seen.update({endpoint: {caller: _nca_call(world, endpoint, caller) for caller in row} for endpoint, row in NCA.items()})
    table = "\n".join(f"{endpoint:45} " + "  ".join(f"{str(c):9}{s}" for c, s in row.items()) for endpoint, row in seen.items())
    assert seen == {**REST, **NCA}, "\n" + table
    after = _counts(data_dir)
    # only the own-NCA register change went through: one stored request, no other row added
    assert after == (before[0], before[1], before[2] + 1, before[3], before[4])


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
@given(payload=st.one_of(st.binary(max_size=2000), st.text(max_size=2000),
                         st.builds(lambda a, b, c: f"{a}.{b}.{c}", st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_", max_size=200),
                                   st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_", max_size=400),
                                   st.text(alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJ0123456789-_", max_size=100))),
       body=st.dictionaries(st.sampled_from(["org_id", "authorisation_number", "serials", "reason", "action", "roles", "name", "x"]),
                            st.one_of(st.none(), st.integers(), st.text(max_size=40), st.lists(st.text(max_size=10), max_size=3)),
                            max_size=5))
def test_fuzz_nca_api(world, data_dir: Path, payload, body) -> None:  # type: ignore[no-untyped-def]
    """Random bytes, random JWS-shaped strings, and validly signed random bodies: never a 5xx, nothing changed
    except by a well-formed request of the PSP's own NCA."""
    before = _counts(data_dir)
    client = world["client"]
    for path in ("/nca/v1/authorisations", "/nca/v1/revocation-requests"):
        response = client.post(path, data=payload, content_type="application/jose")
        assert response.status_code < 500 and response.status_code in (400, 401, 403, 404, 409, 413, 415), response.status_code
        key, cert = world["ncas"]["BE-NBB"]
        signed = nca_client.sign_request("BE-NBB", key, cert, body, aud=NCA_BASE + path)
        response = client.post(path, data=signed, content_type="application/jose")
        assert response.status_code < 500, (body, response.data)
        if response.status_code != 200:
            assert _counts(data_dir)[:4] == before[:4]


@settings(max_examples=EXAMPLES * 3, deadline=None, database=None)
@given(data=st.one_of(st.binary(max_size=3000),
                      st.builds(lambda b: b"-----BEGIN CERTIFICATE REQUEST-----\n" + b + b"\n-----END CERTIFICATE REQUEST-----\n",
                                st.binary(max_size=600)),
                      st.builds(lambda b: b"\x30\x82" + b, st.binary(max_size=600))))
def test_fuzz_csr_and_pem_intake(data: bytes) -> None:
    """CSR intake: anything that is not a valid, self-signed PKCS#10 is a QTSPError, never a crash."""
    try:
        csr = load_csr(data)
    except QTSPError:
        return
    assert csr.is_signature_valid


@settings(max_examples=EXAMPLES * 3, deadline=None, database=None)
@given(text=st.text(max_size=300))
def test_fuzz_identifier_intake(text: str) -> None:
    """organizationIdentifier, roles and domain names: a QTSPError or a normalised value, nothing else."""
    for parse in (parse_org_id, parse_roles, check_domain):
        try:
            parse(text)
        except QTSPError:
            pass
