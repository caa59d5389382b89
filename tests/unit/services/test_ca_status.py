"""Status for CA certificates (issue 16, item 1): the issuing CAs name the root-delegated responder and
the root's ARL, the service answers OCSP for them, ``qtsp ca revoke`` revokes one with the root key,
and a data dir made before all this gets the root's responder on first need.

What relying parties make of it (nginx, HAProxy, Java, openssl...) is
tests/system/relying_party/test_matrix_*.py's."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ca_store import repositories as repo
from qtsp.clock import utcnow
from qtsp.core import crl as core_crl
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.types import IssuerId
from qtsp.services import authorities, ca_revocation, issuance, keys, revocation
from qtsp.services.context import Sandbox
from qtsp.web import create_app
from support import SAMPLE_ORG
from support.cli import assert_refused, ok, run, snapshot

ROOT, QWAC_CA = IssuerId("root"), IssuerId("qwac-ca")


def _cert(sandbox: Sandbox, ca_id: str) -> x509.Certificate:
    return authorities.load(sandbox, IssuerId(ca_id)).cert


def _ask(data_dir: Path, cert: x509.Certificate, issuer: x509.Certificate) -> ocsp.OCSPResponse:
    """The service's OCSP answer about ``cert``, as a relying party POSTs it."""
    request = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build()
    client = create_app({"data_dir": data_dir}).test_client()
    response = client.post("/ocsp", data=request.public_bytes(serialization.Encoding.DER),
                           content_type="application/ocsp-request")
    assert response.status_code == 200
    return ocsp.load_der_ocsp_response(response.data)


def _signed_by_root_responder(answer: ocsp.OCSPResponse, root: x509.Certificate) -> None:
    assert answer.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
    (responder,) = answer.certificates
    responder.verify_directly_issued_by(root)  # delegated by the root (RFC 6960 4.2.2.2)
    assert responder.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value == x509.ExtendedKeyUsage(
        [ExtendedKeyUsageOID.OCSP_SIGNING])
    assert responder.extensions.get_extension_for_class(x509.OCSPNoCheck)
    assert responder.not_valid_after_utc - responder.not_valid_before_utc <= dt.timedelta(days=366)  # short-lived
    key = responder.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey) and answer.signature_hash_algorithm is not None
    key.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm))


def test_issuing_cas_name_the_root_responder_and_the_arl(sandbox: Sandbox) -> None:
    base = sandbox.config.base
    for ca_id in ("qwac-ca", "qseal-ca"):
        cert = _cert(sandbox, ca_id)
        aia = {(d.access_method, d.access_location.value)
               for d in cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value}
        assert aia == {(AuthorityInformationAccessOID.OCSP, f"{base}/ocsp"),
                       (AuthorityInformationAccessOID.CA_ISSUERS, f"{base}/ca/root.der")}
        points = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        assert [p.full_name[0].value for p in points] == [f"{base}/crl/root.crl"]  # the ARL


def test_the_service_answers_for_an_issuing_ca_and_revoke_ca_turns_it_revoked(sandbox: Sandbox, data_dir: Path) -> None:
    root, qwac_ca = _cert(sandbox, "root"), _cert(sandbox, "qwac-ca")
    before = _ask(data_dir, qwac_ca, root)
    _signed_by_root_responder(before, root)
    assert before.certificate_status == ocsp.OCSPCertStatus.GOOD and before.serial_number == qwac_ca.serial_number

    result = ca_revocation.revoke_ca(sandbox, "qwac-ca", "ca-compromise", actor="test")
    after = _ask(data_dir, qwac_ca, root)
    _signed_by_root_responder(after, root)
    assert after.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason == x509.ReasonFlags.ca_compromise
    assert after.revocation_time_utc == result.revoked_at

    # The ARL that the CA certificate names lists it, signed before revoke_ca returned.
    client = create_app({"data_dir": data_dir}).test_client()
    arl = x509.load_der_x509_crl(client.get("/crl/root.crl").data)
    assert arl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert arl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == result.crl_number
    entry = arl.get_revoked_certificate_by_serial_number(qwac_ca.serial_number)
    assert entry is not None and entry.revocation_date_utc == result.revoked_at
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.ca_compromise

    # Audited, and nothing more is issued from it.
    assert "verifies" in ok(run("audit", "verify", "--data-dir", data_dir))
    with sandbox.transaction() as session:
        actions = [(e.action, e.subject) for e in repo.audit_events(session)]
    assert ("ca.revoke", "qwac-ca") in actions
    with pytest.raises(QTSPError) as err:
        issuance.issue(sandbox, issuance.IssueRequest("qwac", SAMPLE_ORG, domains=("x.example.com",),
                                                      generate_key="ecdsa-p256"))
    assert err.value.kind is Kind.POLICY and "qwac-ca was revoked" in str(err.value)
    # QSealCs still come from their own, unrevoked, CA.
    issuance.issue(sandbox, issuance.IssueRequest("qsealc", SAMPLE_ORG, generate_key="ecdsa-p256"))


@pytest.mark.parametrize(("ca_id", "reason", "kind"), [
    ("root", "ca-compromise", Kind.POLICY),  # a root is taken off the Trusted List, not revoked
    ("qwac-ca", "certificate-hold", Kind.MALFORMED),  # BR 7.2.2: never on an ARL
    ("qwac-ca", "not-a-reason", Kind.MALFORMED),
    ("no-such-ca", "ca-compromise", Kind.NOT_FOUND),
])
def test_revoke_ca_refuses_bad_input_and_changes_nothing(sandbox: Sandbox, data_dir: Path, ca_id: str, reason: str,
                                                         kind: Kind) -> None:
    before = snapshot(data_dir)
    with pytest.raises(QTSPError) as err:
        ca_revocation.revoke_ca(sandbox, ca_id, reason, actor="test")
    assert err.value.kind is kind
    assert snapshot(data_dir) == before


def test_a_ca_is_revoked_once_and_only_by_revoke_ca(sandbox: Sandbox, data_dir: Path) -> None:
    serial = format(_cert(sandbox, "qseal-ca").serial_number, "X")
    before = snapshot(data_dir)[0]
    # Not through the paths an operator token or a subscriber reaches (API, revoke-by-key, `qtsp revoke`).
    with pytest.raises(QTSPError) as err:
        revocation.revoke(sandbox, serial, "key-compromise")
    assert err.value.kind is Kind.POLICY and "qtsp ca revoke" in str(err.value)
    assert_refused(run("revoke", serial, "--reason", "key-compromise", "--data-dir", data_dir), "qtsp ca revoke")
    assert snapshot(data_dir)[0] == before  # no row changed

    assert "revoked CA qseal-ca" in ok(run("ca", "revoke", "qseal-ca", "--reason", "key-compromise", "--data-dir", data_dir))
    with pytest.raises(QTSPError) as err:
        ca_revocation.revoke_ca(sandbox, "qseal-ca", "ca-compromise", actor="test")
    assert err.value.kind is Kind.ALREADY_REVOKED


def test_revoke_ca_needs_the_root_key_first(sandbox: Sandbox, data_dir: Path) -> None:
    """The root key is checked before anything is recorded: without it, nothing changes."""
    root_key = data_dir / "keys" / "root-1.p8"
    saved = root_key.read_bytes()
    root_key.write_bytes(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nbroken\n-----END ENCRYPTED PRIVATE KEY-----\n")
    before = snapshot(data_dir)
    try:
        with pytest.raises(QTSPError) as err:
            ca_revocation.revoke_ca(sandbox, "qwac-ca", "ca-compromise", actor="test")
        assert err.value.kind in (Kind.SIGNER_UNAVAILABLE, Kind.STORAGE, Kind.INTEGRITY, Kind.MALFORMED), err.value
        assert "broken" not in str(err.value) and "BEGIN" not in str(err.value)  # no key material in the message
        assert snapshot(data_dir) == before
    finally:
        root_key.write_bytes(saved)


def _make_old(data_dir: Path) -> None:
    """What a data dir made before CA certificates had status looks like: the root without a responder,
    the CA certificates not registered with it (and no answers about them)."""
    with sqlite3.connect(data_dir / "qtsp.db") as con:
        ids = [row[0] for row in con.execute("select id from certificates where issuer_id = 'root'")]
        con.executemany("delete from ocsp_responses where certificate_id = ?", [(i,) for i in ids])
        con.execute("delete from certificates where issuer_id = 'root'")
        (key_id,) = con.execute("select ocsp_key_id from certificate_authorities where id = 'root'").fetchone()
        con.execute("update certificate_authorities set ocsp_responder_der = null, ocsp_key_id = null where id = 'root'")
        con.execute("delete from key_references where id = ?", (key_id,))
    (data_dir / "keys" / "root-ocsp-1.p8").unlink()


def test_a_data_dir_made_before_gets_the_root_responder_on_first_need(sandbox: Sandbox, data_dir: Path) -> None:
    _make_old(data_dir)
    root, qwac_ca = _cert(sandbox, "root"), _cert(sandbox, "qwac-ca")
    assert _ask(data_dir, qwac_ca, root).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED  # as before

    new_id = keys.rollover_ca(sandbox, QWAC_CA, actor="test")  # the first command that needs it
    for cert in (qwac_ca, _cert(sandbox, new_id)):  # the old generation is registered too
        answer = _ask(data_dir, cert, root)
        _signed_by_root_responder(answer, root)
        assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert authorities.ensure_ca_status(sandbox, utcnow(), actor="test") == []  # once only
    ca_revocation.revoke_ca(sandbox, "qwac-ca", "superseded", actor="test")
    assert _ask(data_dir, qwac_ca, root).certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_revoke_ca_on_a_data_dir_made_before(sandbox: Sandbox, data_dir: Path) -> None:
    _make_old(data_dir)
    ok(run("ca", "revoke", "qseal-ca", "--reason", "cessation-of-operation", "--data-dir", data_dir))
    root = _cert(sandbox, "root")
    answer = _ask(data_dir, _cert(sandbox, "qseal-ca"), root)
    _signed_by_root_responder(answer, root)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_an_imported_arl_revokes_the_cas_it_lists(sandbox: Sandbox, data_dir: Path) -> None:
    """The offline root's way: a crl ceremony lists the CA, import-arl records it for OCSP too."""
    root = authorities.load(sandbox, ROOT)
    qwac_ca = _cert(sandbox, "qwac-ca")
    now = utcnow().replace(microsecond=0)
    revoked_at = now - dt.timedelta(minutes=5)
    der = core_crl.build_crl(root.row.cert_der, root.signer, core_crl.CrlParams(
        number=7, this_update=now, next_update=now + dt.timedelta(days=30)),
        [core_crl.Entry(qwac_ca.serial_number, revoked_at, "ca-compromise")])
    newly: list[str] = []
    authorities.store_arl(data_dir, ROOT, 7, der, now, {"test": True}, also=lambda sb, session, crl: newly.extend(
        ca_revocation.record_arl_revocations(sb, session, ROOT, crl, now, actor="test")))
    assert newly == ["qwac-ca"]
    answer = _ask(data_dir, qwac_ca, root.cert)
    assert answer.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert answer.revocation_time_utc == revoked_at and answer.revocation_reason == x509.ReasonFlags.ca_compromise
    client = create_app({"data_dir": data_dir}).test_client()
    assert client.get("/crl/root.crl").data == der  # the ceremony's ARL is served, not re-signed by the service
    with sandbox.transaction() as session:
        assert repo.lock_publication_state(session, ROOT).crl_dirty_since is None


def test_the_root_responder_rotates_by_policy_and_its_answers_are_re_signed(sandbox: Sandbox, data_dir: Path) -> None:
    """The scheduler's rotate-keys job (keys.run_due) treats the root's responder like the others."""
    root = authorities.load(sandbox, ROOT)
    old = x509.load_der_x509_certificate(root.row.ocsp_responder_der or b"")
    later = utcnow() + dt.timedelta(days=sandbox.config.ocsp_key_rotation_days + 1)
    assert any(p.action == "rotate-ocsp" and p.ca_id == "root" and p.due_at <= later for p in keys.plan(sandbox, later))
    keys.rotate_ocsp(sandbox, ROOT, actor="test")
    answer = _ask(data_dir, _cert(sandbox, "qwac-ca"), root.cert)
    _signed_by_root_responder(answer, root.cert)
    assert answer.certificates[0].serial_number != old.serial_number  # the pre-signed answer was re-signed
