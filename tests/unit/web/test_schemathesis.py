"""schemathesis against the service's own OpenAPI document: every operation, stateful sequences
(issue -> get -> revoke, through the document's links), no 500 and no response that breaks the schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import schemathesis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, settings

from qtsp.services import tokens
from qtsp.services.context import Sandbox

ORG = "PSDBE-NBB-0123456789"
# positive_data_acceptance expects every schema-valid body to be accepted; ours is refused when the
# content is wrong beyond what JSON Schema can say (an organizationIdentifier that is a string but
# not PSD..., a CSR that is a string but not a CSR, a PSP that is not in the register). Every other
# check runs: no 5xx, documented status codes, content types, headers, response schemas, auth.
EXCLUDED = [schemathesis.checks.positive_data_acceptance]


@schemathesis.serializer("application/jose")
def _jose(ctx, value):  # type: ignore[no-untyped-def]
    """NCA bodies are compact JWS strings: send whatever was generated as text."""
    return value.encode("utf-8", "surrogatepass") if isinstance(value, str) else str(value).encode()


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "x")])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@pytest.fixture
def api_schema(sandbox: Sandbox, data_dir: Path):  # type: ignore[no-untyped-def]
    from qtsp.web import create_app

    app = create_app({"data_dir": data_dir})
    token = tokens.create(sandbox, "schemathesis", "operator")[1]
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    schema.token = token  # type: ignore[attr-defined]
    schema.csr = _csr()  # type: ignore[attr-defined]
    return schema


def test_every_operation(api_schema, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Random (often invalid) input to every operation: no 500, every response conforms to the document.

    (The operations are driven with hypothesis here rather than through schemathesis' pytest plugin,
    which does not run under pytest 9.)"""
    from hypothesis import given

    headers = {"Authorization": f"Bearer {api_schema.token}"}
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case) -> None:  # type: ignore[no-untyped-def]
            if operation.path == "/certificates" and case.method == "POST" and isinstance(case.body, dict):
                case.body["csr"] = api_schema.csr  # a real CSR too, so issuance itself gets exercised
            response = case.call(headers=headers)
            assert response.status_code < 500, (case.method, case.path, response.status_code, response.text[:300])
            case.validate_response(response, headers=headers, excluded_checks=EXCLUDED)

        run()


def test_stateful_sequences(api_schema, data_dir: Path) -> None:  # type: ignore[no-untyped-def]
    """Sequences that follow the links: issue a certificate, read it, revoke it; no 500, schema kept."""
    token, csr = api_schema.token, api_schema.csr
    # The simulator's endpoints have no links to the certificate ones; left in, they dilute the walk so that
    # issuance is sometimes never reached (test_every_operation covers them).
    machine_cls = api_schema.exclude(path_regex="^/simulator").as_state_machine()

    class Machine(machine_cls):  # type: ignore[valid-type,misc]
        def get_call_kwargs(self, case):  # type: ignore[no-untyped-def]
            if case.path == "/certificates" and case.method == "POST":
                case.body = {"kind": "qwac", "org_id": ORG, "csr": csr, "domains": ["api.example.com"]}
            return {"headers": {"Authorization": f"Bearer {token}"}}

        def validate_response(self, response, case, additional_checks=None, **kwargs):  # type: ignore[no-untyped-def]
            # Every call here carries the real token and, for issuance, a valid body (get_call_kwargs), so
            # ignored_auth and negative_data_rejection, which assume the generated credentials and body reach
            # the server, do not apply; the auth table (test_hostile) and test_every_operation cover them.
            case.validate_response(response, additional_checks=additional_checks, transport_kwargs=kwargs or None,
                                   excluded_checks=EXCLUDED + [schemathesis.checks.ignored_auth,
                                                               schemathesis.checks.negative_data_rejection])

    Machine.run(settings=settings(max_examples=15, stateful_step_count=4, deadline=None,
                                  suppress_health_check=list(HealthCheck)))
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        issued = con.execute("select count(*) from certificates").fetchone()[0]
    finally:
        con.close()
    assert issued >= 1, "the stateful run never issued a certificate"
