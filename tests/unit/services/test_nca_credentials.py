"""The NCA credential lifecycle (issue 15, finding 5; qtsp.services.nca_identity, qtsp.core.credentials):
``nca add --cert`` refuses what is not a current documentSigning certificate chaining to a configured
anchor, authentication checks validity and chain on every request, a credential can be withdrawn, and its
certificate (issued by nca-ca) is in the store, so that revoking it withdraws it and the nca-ca CRL lists it.
The HTTP side (the operator's API endpoint, the CLI command): tests/unit/web/test_nca_access.py."""

from __future__ import annotations

import datetime as dt
import hashlib
import sqlite3
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from qtsp.core.errors import Kind, QTSPError
from qtsp.core.types import IssuerId, serial_hex
from qtsp.relying_party import nca_client
from qtsp.services import crl as crl_svc, nca as nca_svc, nca_identity, revocation
from qtsp.services.context import Sandbox
from support.nca import BASE, BE_PSP, issue_cert, nca_anchor, nca_leaf, pem, sign

NOW = dt.datetime.now(dt.timezone.utc)
ACPR = "Autorite de Controle Prudentiel et de Resolution"
REVOKE = "/nca/v1/revocation-requests"


def _rows(data_dir: Path) -> tuple[int, ...]:
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        return tuple(db.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
                     for t in ("ncas", "nca_credentials", "certificates", "audit_events"))


def _fp(cert: x509.Certificate) -> str:
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _request(key_pem: bytes, cert: x509.Certificate, nca_id: str = "FR-ACPR", iat: int | None = None) -> str:
    return nca_client.sign_request(nca_id, key_pem, pem(cert), {"org_id": f"PSD{nca_id}-1", "reason": "superseded"},
                                   aud=BASE + REVOKE, iat=iat)


# --- nca add --cert: what is refused, and nothing stored -------------------------------------------------


def _cases() -> list[tuple[str, bytes, bytes | None, str]]:
    anchor_key, anchor = nca_anchor(NOW)
    other_key, other = nca_anchor(NOW, "Someone else's root")
    expired_key, expired_anchor = nca_anchor(NOW - dt.timedelta(days=800))
    _, self_signed_no_eku = nca_leaf(None, None, NOW, eku=None, not_before=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc),
                                     days=730)  # the finding's certificate exactly
    _, self_signed = nca_leaf(None, None, NOW)
    _, no_eku = nca_leaf(anchor_key, anchor, NOW, eku=None)
    _, client_auth = nca_leaf(anchor_key, anchor, NOW, eku=(x509.ExtendedKeyUsageOID.CLIENT_AUTH,))
    _, future = nca_leaf(anchor_key, anchor, NOW, not_before=NOW + dt.timedelta(days=30))
    _, lapsed = nca_leaf(anchor_key, anchor, NOW, not_before=NOW - dt.timedelta(days=60), days=30)
    _, by_other = nca_leaf(other_key, other, NOW)
    _, under_expired = nca_leaf(expired_key, expired_anchor, NOW)
    a = pem(anchor)
    return [
        ("self-signed, no EKU, notBefore 2031 (no anchor: the sandbox's NCA CA)", pem(self_signed_no_eku), None, "not valid before"),
        ("the same, with an anchor", pem(self_signed_no_eku), a, "not valid before"),
        ("self-signed with documentSigning", pem(self_signed), None, "does not chain"),
        ("self-signed, given as its own anchor", pem(self_signed), pem(self_signed), "not a CA"),
        ("no EKU", pem(no_eku), a, "no extended key usage"),
        ("clientAuth, not documentSigning", pem(client_auth), a, "lacks documentSigning"),
        ("notBefore in a month", pem(future), a, "not valid before"),
        ("expired", pem(lapsed), a, "expired"),
        ("chains to another anchor", pem(by_other), a, "does not chain"),
        ("the anchor itself expired", pem(under_expired), pem(expired_anchor), "the anchor expired"),
    ]


def test_add_cert_refuses_what_is_not_a_current_document_signing_certificate_under_an_anchor(sandbox: Sandbox,
                                                                                           data_dir: Path) -> None:
    nca_identity.ensure_nca_ca(sandbox, NOW)  # made on first use: before the count
    before = _rows(data_dir)
    for name, cert_pem, anchor_pem, says in _cases():
        with pytest.raises(QTSPError) as err:
            nca_identity.add_nca(sandbox, "FR-ACPR", ACPR, cert_pem=cert_pem, anchor_pem=anchor_pem)
        assert err.value.kind is Kind.POLICY and says in err.value.detail, (name, err.value.detail)
        assert _rows(data_dir) == before, name


def test_a_certificate_of_the_sandbox_nca_ca_needs_no_anchor_and_lands_in_the_store(sandbox: Sandbox, data_dir: Path) -> None:
    key = nca_identity.generate_private_key(nca_identity.CREDENTIAL_KEY_TYPE)
    cert, _ = nca_identity.issue_seal(sandbox, key.public_key(), "ACPR request signing", "ACPR", "FR", NOW)
    view, _ = nca_identity.add_nca(sandbox, "FR-ACPR", ACPR, cert_pem=pem(cert))
    assert view.credentials == [_fp(cert)] and view.withdrawn == []
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        row = db.execute("SELECT issuer_id, status FROM certificates WHERE serial = ?", (serial_hex(cert.serial_number),)).fetchall()
    assert row == [("nca-ca", "good")]


# --- authentication: validity and chain on every request ----------------------------------------------


def test_authentication_checks_the_validity_period_every_time(sandbox: Sandbox) -> None:
    anchor_key, anchor = nca_anchor(NOW)
    key_pem, cert = nca_leaf(anchor_key, anchor, NOW, days=2)
    nca_identity.add_nca(sandbox, "FR-ACPR", ACPR, cert_pem=pem(cert), anchor_pem=pem(anchor))
    with pytest.raises(QTSPError) as err:  # authenticated: then no such PSP
        nca_svc.handle(sandbox, "revocation", _request(key_pem, cert))
    assert err.value.kind is Kind.NOT_FOUND
    later = NOW + dt.timedelta(days=3)
    with pytest.raises(QTSPError) as err:
        nca_svc.handle(sandbox, "revocation", _request(key_pem, cert, iat=int(later.timestamp())), now=later)
    assert err.value.kind is Kind.UNAUTHENTICATED and "expired" in err.value.detail


def test_a_credential_put_in_the_store_directly_is_still_checked(sandbox: Sandbox, data_dir: Path) -> None:
    """The finding: a self-signed certificate without EKU and a notBefore in 2031 passed authentication.
    Registered behind add_nca's back (straight into the table), it is refused on use."""
    key_pem, cert = nca_leaf(None, None, NOW, eku=None, not_before=dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc), days=730)
    nca_identity.ensure_nca_ca(sandbox, NOW)
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        db.execute("INSERT INTO nca_credentials (nca_id, fingerprint_sha256, cert_der, not_after, created_at) "
                   "VALUES ('FR-ACPR', ?, ?, ?, ?)", (_fp(cert), cert.public_bytes(serialization.Encoding.DER),
                                                      cert.not_valid_after_utc.isoformat(), NOW.isoformat()))
        db.commit()
    with pytest.raises(QTSPError) as err:
        nca_svc.handle(sandbox, "revocation", _request(key_pem, cert))
    assert err.value.kind is Kind.UNAUTHENTICATED and "not valid before" in err.value.detail


# --- withdrawal and revocation ------------------------------------------------------------------------------


def _be_request(ncas: dict[str, dict[str, bytes]]) -> str:
    return sign(ncas, "BE-NBB", {"org_id": BE_PSP, "serials": ["FFFF"], "reason": "superseded"}, jti=str(uuid.uuid4()))


def _refused(sandbox: Sandbox, compact: str) -> str:
    with pytest.raises(QTSPError) as err:
        nca_svc.handle(sandbox, "revocation", compact)
    assert err.value.kind is Kind.UNAUTHENTICATED
    return err.value.detail


def _credential_serial(ncas: dict[str, Any], nca_id: str) -> str:
    return serial_hex(x509.load_pem_x509_certificate(ncas[nca_id]["cert"]).serial_number)


def test_withdraw_credential_refuses_it_at_once_and_revokes_its_certificate(sandbox: Sandbox, ncas: dict[str, Any],
                                                                             data_dir: Path) -> None:
    cert = issue_cert(sandbox, BE_PSP)
    with pytest.raises(QTSPError) as err:  # authenticated; no such serial of this PSP
        nca_svc.handle(sandbox, "revocation", _be_request(ncas))
    assert err.value.kind is Kind.NOT_FOUND
    fp = nca_identity.find_credential(sandbox, _fp(x509.load_pem_x509_certificate(ncas["BE-NBB"]["cert"]))[:12])
    done = nca_identity.withdraw_credential(sandbox, fp, reason="key-compromise", actor="test")
    assert done.revoked_serial == _credential_serial(ncas, "BE-NBB")
    assert "withdrawn" in _refused(sandbox, _be_request(ncas))
    # a leaked key cannot withdraw the PSP's certificates any more
    withdraw = sign(ncas, "BE-NBB", {"action": "withdraw", "org_id": BE_PSP})
    with pytest.raises(QTSPError):
        nca_svc.handle(sandbox, "authorisation", withdraw)
    assert revocation.revoke  # the PSP's certificate is untouched:
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        assert db.execute("SELECT status FROM certificates WHERE serial = ?", (serial_hex(cert.serial_number),)).fetchone() == ("good",)
        actions = [r[0] for r in db.execute("SELECT action FROM audit_events WHERE subject IN ('BE-NBB', ?)",
                                              (done.revoked_serial,))]
    assert "nca.credential.withdraw" in actions and "certificate.revoke" in actions
    with pytest.raises(QTSPError) as err:
        nca_identity.withdraw_credential(sandbox, fp)
    assert err.value.kind is Kind.ALREADY_REVOKED
    assert nca_identity.get_nca(sandbox, "BE-NBB").withdrawn == [fp]
    # the other NCA's credential still works
    with pytest.raises(QTSPError) as err:
        nca_svc.handle(sandbox, "revocation", sign(ncas, "NL-DNB", {"org_id": "PSDNL-DNB-R161162", "serials": ["FFFF"],
                                                                   "reason": "superseded"}))
    assert err.value.kind is Kind.NOT_FOUND


def test_revoking_the_credential_certificate_withdraws_it_and_the_nca_ca_crl_lists_it(sandbox: Sandbox,
                                                                                     ncas: dict[str, Any]) -> None:
    serial = _credential_serial(ncas, "BE-NBB")
    result = revocation.revoke(sandbox, serial, "key-compromise", actor="test")  # was: no certificate with that serial
    assert result.issuer_id == "nca-ca"
    assert "withdrawn" in _refused(sandbox, _be_request(ncas))
    record = crl_svc.generate(sandbox, IssuerId("nca-ca"), dt.datetime.now(dt.timezone.utc))
    listed = x509.load_der_x509_crl(record.der).get_revoked_certificate_by_serial_number(int(serial, 16))
    assert listed is not None and listed.extensions.get_extension_for_class(x509.CRLReason).value.reason \
        is x509.ReasonFlags.key_compromise
    fp = _fp(x509.load_pem_x509_certificate(ncas["BE-NBB"]["cert"]))
    assert nca_identity.get_nca(sandbox, "BE-NBB").withdrawn == [fp]
