"""``POST /api/v1/certificates`` with ``purpose``: each hierarchy issues its QWACs, answers OCSP for them with its
own responder, and publishes its CA certificates and CRLs (the browser root's ARL too); a bad purpose is a
400 problem naming the field, with nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.x509 import ocsp

from ca_store import repositories as repo
from support.api import PREFIX, SAMPLE_ORG, Api, assert_problem, csr_pem, new_key

SERVER, CLIENT = x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH


@pytest.mark.parametrize(("fields", "issuer", "root", "ekus"), [
    ({"purpose": "server"}, "qwac-browser-ca", "browser-root", {SERVER}),
    ({"browser": True}, "qwac-browser-ca", "browser-root", {SERVER}),
    ({"purpose": "client"}, "qwac-ca", "root", {CLIENT}),
    ({"purpose": "both"}, "qwac-ca", "root", {SERVER, CLIENT}),
])
def test_api_issues_from_the_hierarchy_of_the_purpose(api: Api, fields: dict[str, Any], issuer: str, root: str,
                                                      ekus: set[x509.ObjectIdentifier]) -> None:
    body, _ = api.issue(**fields)
    assert body["issuer"] == issuer
    cert = x509.load_pem_x509_certificate(body["certificate"].encode())
    chain = [x509.load_pem_x509_certificate(pem.encode()) for pem in body["chain"]]
    assert set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == ekus
    served_root = api.client.get(f"/ca/{root}.der")
    assert served_root.status_code == 200 and x509.load_der_x509_certificate(served_root.data) == chain[1]
    assert x509.load_der_x509_certificate(api.client.get(f"/ca/{issuer}.der").data) == chain[0]
    # OCSP: answered "good", signed by this CA's own delegated responder.
    answer = api.ocsp_status(cert, chain[0])
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.certificates[0].issuer == chain[0].subject
    for ca_id, signer in ((issuer, chain[0]), (root, chain[1])):  # the CA's CRL, and its root's ARL
        served = api.client.get(f"/crl/{ca_id}.crl")
        assert served.status_code == 200
        assert x509.load_der_x509_crl(served.data).is_signature_valid(signer.public_key())  # type: ignore[arg-type]


def test_api_refuses_a_bad_purpose_naming_it_and_stores_nothing(api: Api) -> None:
    with api.sandbox.transaction() as session:
        cas_before = len(repo.list_cas(session))
    for purpose, fragment in (("browser", "purpose must be one of server, client, both"), (True, "purpose must be")):
        body = {"kind": "qwac", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key()), "domains": ["api.example.com"],
                "purpose": purpose}
        problem = assert_problem(api.client.post(f"{PREFIX}/certificates", json=body, headers=api.headers("operator")), 400)
        assert fragment in problem["detail"]
    body = {"kind": "qsealc", "org_id": SAMPLE_ORG, "csr": csr_pem(new_key()), "purpose": "client"}
    problem = assert_problem(api.client.post(f"{PREFIX}/certificates", json=body, headers=api.headers("operator")), 400)
    assert "QWACs only" in problem["detail"]
    assert api.client.get(f"{PREFIX}/certificates", headers=api.headers("auditor")).get_json()["total"] == 0
    with api.sandbox.transaction() as session:
        assert len(repo.list_cas(session)) == cas_before
