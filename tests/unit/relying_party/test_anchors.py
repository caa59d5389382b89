"""Offline trust anchors stand in for Trusted List services: a CA is granted for web and seals, a leaf is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtsp.core.errors import QTSPError
from qtsp.core.trusted_list import CA_QC, FOR_ESEALS, FOR_WEB, GRANTED
from qtsp.relying_party import anchors as anchor_list
from qtsp.relying_party import trusted_list_from_anchors

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.timezone.utc)


def _cert(cn: str, ca: bool | None) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(x509.random_serial_number()).not_valid_before(NOW - dt.timedelta(days=1))
               .not_valid_after(NOW + dt.timedelta(days=30)))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    return builder.sign(key, hashes.SHA256())


def test_a_ca_anchor_is_a_granted_service_for_web_and_seals() -> None:
    root = _cert("Foreign Demo Root", ca=True)
    parsed = trusted_list_from_anchors([root], NOW)
    [service] = parsed.services
    assert (service.name, service.service_type, service.status) == ("Foreign Demo Root", CA_QC, GRANTED)
    assert service.additional_info == {FOR_WEB, FOR_ESEALS}
    assert anchor_list(parsed) == [service]  # what the validator builds its paths to


@pytest.mark.parametrize("ca", [False, None])
def test_a_leaf_or_a_certificate_without_basic_constraints_is_refused(ca: bool | None) -> None:
    with pytest.raises(QTSPError, match="not a CA certificate"):
        trusted_list_from_anchors([_cert("leaf", ca=ca)], NOW)


def test_no_anchor_is_refused() -> None:
    with pytest.raises(QTSPError, match="no trust anchor"):
        trusted_list_from_anchors([], NOW)


def test_a_finding_names_its_rule_and_source_and_refuses_an_unknown_severity() -> None:
    from qtsp.relying_party.findings import Finding

    finding = Finding("psd2-roles-empty", "ETSI TS 119 495 V1.8.1 5.1", "error", "RolesOfPSP is empty")
    assert finding.is_error
    assert finding.as_dict() == {"rule": "psd2-roles-empty", "source": "ETSI TS 119 495 V1.8.1 5.1",
                                 "severity": "error", "message": "RolesOfPSP is empty"}
    with pytest.raises(ValueError, match="severity"):
        Finding("x", "y", "fatal", "z")  # type: ignore[arg-type]
