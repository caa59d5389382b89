"""The simulator's table (services.behaviours.BEHAVIOURS) is complete, consistent, and the one list that
the CLI's help, the REST API's OpenAPI document and the responder read."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp

from ca_store.models import ResponderBehaviour
from qtsp.core import ocsp as core_ocsp
from qtsp.services.behaviours import BEHAVIOURS, CRL, OCSP, STATUS_ONLY, Lookalikes, OcspTruth, ResponseStatus
from qtsp.services.crl import CrlPlan

from .fakes import KEY_HASH, NAME_HASH, NOW, responder

TRUE_SERIAL = 0x1234


def test_every_entry_is_complete_and_for_one_target() -> None:
    assert len(BEHAVIOURS) >= 10
    for name, fault in BEHAVIOURS.items():
        assert fault.target in (OCSP, CRL) and fault.description, name
        assert (fault.ocsp is not None) == (fault.target == OCSP) and (fault.crl is not None) == (fault.target == CRL), name
        assert not fault.takes_delay or fault.target == OCSP, name
        assert len(name) <= ResponderBehaviour.__table__.c.behaviour.type.length, name  # what the store keeps
    assert STATUS_ONLY == {"try-later", "internal-error", "unauthorized"}


def test_the_cli_help_lists_the_table() -> None:
    from cli.main import cli

    result = CliRunner().invoke(cli, ["scenarios", "responder", "set", "--help"], terminal_width=400)
    assert result.exit_code == 0, result.output
    lines = [line.split(None, 2) for line in result.output.splitlines() if line.startswith("  ") and len(line.split()) > 2]
    listed = {parts[0]: (parts[1], parts[2]) for parts in lines if parts[0] in BEHAVIOURS or parts[1] in ("OCSP", "CRL")}
    assert listed == {name: (fault.target.upper(), fault.description) for name, fault in BEHAVIOURS.items()}


def test_the_openapi_document_enumerates_the_table() -> None:
    from qtsp.web.openapi import document

    spec = document()
    schemas = spec["components"]["schemas"]
    for schema in ("BehaviourRequest", "Behaviour"):
        assert schemas[schema]["properties"]["behaviour"]["enum"] == list(BEHAVIOURS)
    described = spec["paths"]["/simulator/behaviours"]["put"]["description"]
    for name, fault in BEHAVIOURS.items():
        assert f"{name} ({fault.target}): {fault.description}" in described


# --- what each fault makes, from a known truth ---------------------------------------------------------


def _truth(nonce: bytes | None = b"n" * 16) -> OcspTruth:
    cert_id = core_ocsp.CertID("sha1", NAME_HASH, KEY_HASH, TRUE_SERIAL)
    this_update, next_update = core_ocsp.validity_window(NOW, 96)
    return OcspTruth(RESPONDER, NOW, nonce, 96, lambda: [core_ocsp.SingleStatus(cert_id, "good", this_update, next_update)])


RESPONDER = responder()


def _nonce(response: ocsp.OCSPResponse) -> bytes | None:
    try:
        return response.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce
    except x509.ExtensionNotFound:
        return None


@pytest.mark.parametrize("name", [n for n, f in BEHAVIOURS.items() if f.target == OCSP])
def test_each_ocsp_fault_does_what_its_description_says(name: str) -> None:
    fault = BEHAVIOURS[name]
    assert fault.ocsp is not None
    response = ocsp.load_der_ocsp_response(fault.ocsp(_truth()))
    if isinstance(fault.ocsp, ResponseStatus):
        assert response.response_status != ocsp.OCSPResponseStatus.SUCCESSFUL
        return
    assert response.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    real = x509.load_der_x509_certificate(RESPONDER.certificate_der)
    signer = response.certificates[0]
    assert (signer != real) == (name == "wrong-key")
    if name == "wrong-key":
        assert signer.subject == real.subject and signer.issuer == signer.subject
        assert isinstance(signer.public_key(), ec.EllipticCurvePublicKey) and signer.public_key() != real.public_key()
    assert (response.serial_number != TRUE_SERIAL) == (name == "wrong-serial")
    assert (response.next_update_utc is not None and response.next_update_utc < NOW) == (name == "stale")
    assert (_nonce(response) is None) == (name == "no-nonce")
    assert response.certificate_status == ocsp.OCSPCertStatus.GOOD


def test_crl_faults_change_the_plan_only_where_they_say() -> None:
    plan = CrlPlan(entries_at=NOW, this_update=NOW, validity=dt.timedelta(days=7), key_type="ecdsa-p256")
    expired = BEHAVIOURS["expired-crl"].crl(plan, Lookalikes())  # type: ignore[misc]
    assert expired.this_update + expired.validity < NOW and expired.entries_at == NOW and expired.signer is None
    stranger = BEHAVIOURS["crl-wrong-key"].crl(plan, Lookalikes())  # type: ignore[misc]
    assert dataclasses.replace(stranger, signer=None) == plan
    assert isinstance(stranger.signer, ec.EllipticCurvePrivateKey)
