"""Finding 2 (issue 15): one CA without a responder broke the OCSP refresh for all.

After the documented ``qtsp nca add --generate`` the receipt certificate (issuer ``nca-ca``, which has
no OCSP responder) made every refresh run fail with KeyError 'nca-ca' and roll back the whole batch,
and revoking it through the API answered 500. Now: the refresh skips issuers without a responder and
counts them, isolates a broken issuer and a bad certificate, and such a certificate is revoked in its
CRL only, with an answer that says so."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from cryptography import x509
from prometheus_client import REGISTRY
from sqlalchemy import delete, func, select

from ca_store import repositories as repo
from ca_store.models import Certificate, OcspResponse
from qtsp import scheduler
from qtsp.clock import utcnow
from qtsp.core.types import IssuerId, serial_hex
from qtsp.services import crl, issuance, nca_identity, ocsp_refresh
from qtsp.services.context import Sandbox, open_sandbox
from support import SAMPLE_ORG
from support.api import PREFIX, Api
from support.cli import ok_json, run


def _sample(issuer: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("qtsp_ocsp_refresh_certificates_total", {"issuer": issuer, "outcome": outcome}) or 0.0


def _issue(sb: Sandbox, kind: str = "qwac") -> x509.Certificate:
    domains = ("refresh.example.com",) if kind == "qwac" else ()
    return issuance.issue(sb, issuance.IssueRequest(kind, SAMPLE_ORG, domains=domains, generate_key="ecdsa-p256")).certificate


def _forget_answers(sb: Sandbox, *certs: x509.Certificate) -> None:
    """Make certificates due: their pre-signed answers gone (as after a failed refresh, or expiry)."""
    with sb.transaction() as session:
        session.execute(delete(OcspResponse).where(OcspResponse.serial.in_([serial_hex(c.serial_number) for c in certs])))


def _answers(sb: Sandbox, cert: x509.Certificate) -> int:
    with sb.transaction() as session:
        return int(session.execute(select(func.count(OcspResponse.id))
                                   .where(OcspResponse.serial == serial_hex(cert.serial_number))).scalar_one())


def _receipt(sb: Sandbox, tmp_path: Path) -> x509.Certificate:
    """The documented setup: an NCA with a generated credential; the receipt certificate comes with it. Both are
    certificates of nca-ca (no responder): two to skip."""
    nca_identity.add_nca(sb, "BE-NBB", "National Bank of Belgium", generate=True, out=tmp_path / "nca")
    return nca_identity.receipt_signer(sb)[1][0]


def test_an_issuer_without_a_responder_is_skipped_and_the_others_refreshed(sandbox: Sandbox, tmp_path: Path,
                                                                            caplog: pytest.LogCaptureFixture) -> None:
    receipt = _receipt(sandbox, tmp_path)
    qwac, seal = _issue(sandbox), _issue(sandbox, "qsealc")
    _forget_answers(sandbox, qwac, seal)
    skipped_before, signed_before = _sample("nca-ca", "skipped"), _sample("qwac-ca", "signed")

    report = ocsp_refresh.refresh_due(sandbox, utcnow())  # before the fix: KeyError 'nca-ca', all rolled back
    assert report.skipped == {"nca-ca": 2} and not report.failed
    assert report.signed == {"qwac-ca": 1, "qseal-ca": 1} and report.responses == 4
    assert _answers(sandbox, qwac) == 2 and _answers(sandbox, seal) == 2 and _answers(sandbox, receipt) == 0
    assert _sample("nca-ca", "skipped") == skipped_before + 2
    assert _sample("qwac-ca", "signed") == signed_before + 1
    # Nothing is left due: the next run signs nothing and still says what it skipped.
    again = ocsp_refresh.refresh_due(sandbox, utcnow())
    assert again.responses == 0 and again.skipped == {"nca-ca": 2}

    # The scheduler's job succeeds (no backoff, no job failure) and logs the skip once.
    _forget_answers(sandbox, qwac)
    failures = REGISTRY.get_sample_value("qtsp_job_failures_total", {"job": "refresh-ocsp"}) or 0.0
    with caplog.at_level(logging.INFO, logger="qtsp.scheduler"):
        assert scheduler.run_job("refresh-ocsp", str(sandbox.data_dir)) == 2
        scheduler.run_job("refresh-ocsp", str(sandbox.data_dir))
    assert (REGISTRY.get_sample_value("qtsp_job_failures_total", {"job": "refresh-ocsp"}) or 0.0) == failures
    skips = [r.getMessage() for r in caplog.records if "skips nca-ca" in r.getMessage()]
    assert len(skips) == 1 and "CRL only" in skips[0], skips


def test_a_broken_issuer_fails_alone_and_stays_due(data_dir: Path, tmp_path: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    sb = open_sandbox(data_dir)
    try:
        _receipt(sb, tmp_path)
        qwacs = [_issue(sb) for _ in range(2)]
        seal = _issue(sb, "qsealc")
        _forget_answers(sb, *qwacs, seal)
    finally:
        sb.engine.dispose()
    sb = open_sandbox(data_dir)  # a fresh process: no signer loaded yet
    try:
        with sb.transaction() as session:
            ref = repo.get_ca(session, IssuerId("qseal-ca")).ocsp_key.ref  # type: ignore[union-attr]
        key_file = data_dir / "keys" / f"{ref.split(':', 1)[1]}.p8"
        hidden = key_file.rename(tmp_path / "hidden.p8")  # the qseal-ca responder's key is gone
        failed_before = _sample("qseal-ca", "failed")
        with caplog.at_level(logging.WARNING, logger="qtsp.services.ocsp_refresh"):
            report = ocsp_refresh.refresh_due(sb, utcnow())
        assert report.signed == {"qwac-ca": 2} and report.failed == {"qseal-ca": 1}
        assert report.skipped == {"nca-ca": 2}
        assert all(_answers(sb, c) == 2 for c in qwacs) and _answers(sb, seal) == 0
        assert _sample("qseal-ca", "failed") == failed_before + 1
        warning = next(r.getMessage() for r in caplog.records if "qseal-ca" in r.getMessage())
        assert "missing" in warning and "stay due" in warning
        # The key is back: the next run signs what the last one could not.
        hidden.rename(key_file)
    finally:
        sb.engine.dispose()
    sb = open_sandbox(data_dir)
    try:
        assert ocsp_refresh.refresh_due(sb, utcnow()).signed == {"qseal-ca": 1}
        assert _answers(sb, seal) == 2
    finally:
        sb.engine.dispose()


def test_a_bad_certificate_fails_alone(sandbox: Sandbox) -> None:
    good = [_issue(sandbox) for _ in range(3)]
    _forget_answers(sandbox, *good)
    with sandbox.transaction() as session:  # a damaged row, between the good ones in the same batch
        row = session.execute(select(Certificate).where(Certificate.serial == serial_hex(good[1].serial_number))).scalar_one()
        session.add(Certificate(issuer_id=row.issuer_id, serial="NOT-HEX", profile=row.profile, subject=row.subject,
                                org_id=row.org_id, nca_id=row.nca_id, roles=row.roles, dns_names=row.dns_names,
                                not_before=row.not_before, not_after=row.not_after, fingerprint_sha256="0" * 64,
                                der=row.der, status="good", created_at=row.created_at))
    _forget_answers(sandbox, *good)
    report = ocsp_refresh.refresh_due(sandbox, utcnow(), batch=10)
    assert report.signed == {"qwac-ca": 3} and report.failed == {"qwac-ca": 1}
    assert "ValueError" in report.errors["qwac-ca"]
    assert all(_answers(sandbox, c) == 2 for c in good)


def test_revoking_a_certificate_of_a_ca_without_a_responder_is_published_in_its_crl(api: Api, tmp_path: Path) -> None:
    receipt = _receipt(api.sandbox, tmp_path)
    serial = serial_hex(receipt.serial_number)
    response = api.client.post(f"{PREFIX}/certificates/{serial}/revoke", json={"reason": "superseded"},
                               headers=api.headers("operator"))  # before the fix: 500 (KeyError 'nca-ca')
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["issuer"] == "nca-ca" and body["published_in"] == ["crl"]
    assert "no OCSP responder" in body["note"] and "CRL only" in body["note"]
    # The CRL of nca-ca lists it once the dirty CRLs are published (the scheduler's job).
    crl.regenerate_dirty(api.sandbox, utcnow())
    record = crl.current(api.sandbox, IssuerId("nca-ca"), utcnow())
    listed = x509.load_der_x509_crl(record.der).get_revoked_certificate_by_serial_number(receipt.serial_number)
    assert listed is not None
    # A certificate with a responder still says OCSP too.
    cert = _issue(api.sandbox)
    answer = api.client.post(f"{PREFIX}/certificates/{serial_hex(cert.serial_number)}/revoke",
                             json={"reason": "superseded"}, headers=api.headers("operator")).get_json()
    assert answer["published_in"] == ["ocsp", "crl"] and answer["note"] is None


def test_the_cli_revokes_it_too_and_says_crl_only(data_dir: Path, tmp_path: Path) -> None:
    sb = open_sandbox(data_dir)
    try:
        serial = serial_hex(_receipt(sb, tmp_path).serial_number)
    finally:
        sb.engine.dispose()
    answer = ok_json(run("revoke", serial, "--reason", "superseded", "--data-dir", data_dir, "--json"))
    assert answer["published_in"] == ["crl"] and "CRL only" in answer["note"]
    text = run("revoke", serial, "--reason", "key-compromise", "--data-dir", data_dir)  # the reason change path
    assert text.exit_code == 0 and "CRL only" in text.output, text.output


def test_a_run_ends_even_when_every_certificate_fails(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keyset batches: what failed is never picked again in the same run, so the run ends, all counted."""
    certs = [_issue(sandbox) for _ in range(4)]
    _forget_answers(sandbox, *certs)

    def broken(*_a: object, **_k: object) -> int:
        raise RuntimeError("signer down")

    monkeypatch.setattr(ocsp_refresh.ocsp_svc, "presign", broken)
    report = ocsp_refresh.refresh_due(sandbox, utcnow(), batch=2)
    assert report.failed == {"qwac-ca": 4} and not report.signed and report.errors["qwac-ca"] == "RuntimeError: signer down"
