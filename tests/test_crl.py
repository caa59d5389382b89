"""CRLs: content (reasons, AKI, number, ExpiredCertsOnCRL, delta/freshest), number sequence,
debounced regeneration, judged by openssl and pkilint; HTTP publication; CLI; 100k entries."""

from __future__ import annotations

import datetime as dt
import json
import secrets
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator

import pytest
from asn1crypto import crl as acrl
from asn1crypto import x509 as ax509
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, insert, select

from ca_store.models import Certificate, CrlRecord, PublicationState, Revocation
from qtsp.clock import utcnow
from qtsp.core import crl as core_crl
from qtsp.core.ocsp import REASONS
from qtsp.core.types import serial_hex
from qtsp.services import crl as crl_svc
from qtsp.services import issuance, revocation
from qtsp.services.context import Sandbox

from support.pg import PostgresCluster  # tests/pg.py

ORG = "PSDBE-NBB-0123456789"
BIN = Path(sys.executable).parent
UTC = dt.timezone.utc
EXPIRED_CERTS_ON_CRL = "2.5.29.60"
DELTA_CRL_INDICATOR = "2.5.29.27"
FRESHEST_CRL = "2.5.29.46"
TIMEOUT = 120

# CRLReason values for the reason names of qtsp.core.ocsp.REASONS (BR 7.2.2).
REASON_CODES = {"key-compromise": 1, "affiliation-changed": 3, "superseded": 4,
                "cessation-of-operation": 5, "privilege-withdrawn": 9}


# --- helpers ------------------------------------------------------------------------------


def _issue(sandbox: Sandbox, name: str, kind: str = "qwac", now: dt.datetime | None = None) -> x509.Certificate:
    domains = (f"{name}.example.com",) if kind == "qwac" else ()
    return issuance.issue(sandbox, issuance.IssueRequest(kind, ORG, domains=domains, generate_key="ecdsa-p256"),
                          now=now).certificate


def _ca_cert(data_dir: Path, ca_id: str) -> x509.Certificate:
    return x509.load_pem_x509_certificate((data_dir / "ca" / f"{ca_id}.pem").read_bytes())


def _ext(crl: x509.CertificateRevocationList, oid: str) -> x509.Extension[x509.ExtensionType] | None:
    for ext in crl.extensions:
        if ext.oid.dotted_string == oid:
            return ext
    return None


def _reasons(crl: x509.CertificateRevocationList) -> dict[int, int | None]:
    """serial -> CRLReason code, None where the entry has no reasonCode."""
    raw = acrl.CertificateList.load(crl.public_bytes(Encoding.DER))
    out: dict[int, int | None] = {}
    for entry in raw["tbs_cert_list"]["revoked_certificates"]:
        codes = [e["extn_value"].parsed.native for e in entry["crl_entry_extensions"] if e["extn_id"].dotted == "2.5.29.21"]
        out[entry["user_certificate"].native] = None if not codes else _code(codes[0])
    return out


def _code(name: str) -> int:
    names = {"unspecified": 0, "key_compromise": 1, "ca_compromise": 2, "affiliation_changed": 3, "superseded": 4,
             "cessation_of_operation": 5, "certificate_hold": 6, "remove_from_crl": 8, "privilege_withdrawn": 9,
             "aa_compromise": 10}
    return names[name]


def _load(record: CrlRecord) -> x509.CertificateRevocationList:
    return x509.load_der_x509_crl(record.der)


def _records(sandbox: Sandbox, issuer_id: str) -> list[CrlRecord]:
    with sandbox.transaction() as session:
        return list(session.execute(select(CrlRecord).where(CrlRecord.issuer_id == issuer_id)
                                    .order_by(CrlRecord.id)).scalars())


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)


def _openssl() -> str:
    path = shutil.which("openssl")
    assert path, "openssl missing: apt-get install openssl"
    return path


def _pkilint(path: Path, kind: str) -> subprocess.CompletedProcess[str]:
    linter = BIN / "lint_crl"
    assert linter.exists(), f"pkilint's lint_crl not in {BIN}"
    return _run([str(linter), "lint", "-t", kind, "-p", "BR", "-s", "ERROR", str(path)])


@pytest.fixture
def revoked(sandbox: Sandbox) -> dict[str, x509.Certificate]:
    """One QWAC revoked with each reason, one left good."""
    certs = {}
    for reason in (*REASONS, "good"):
        cert = _issue(sandbox, reason)
        if reason != "good":
            revocation.revoke(sandbox, serial_hex(cert.serial_number), reason, issuer_id="qwac-ca")
        certs[reason] = cert
    return certs


# --- content -----------------------------------------------------------------------------


def test_full_crl_content(sandbox: Sandbox, data_dir: Path, revoked: dict[str, x509.Certificate]) -> None:
    now = utcnow()
    record = crl_svc.generate(sandbox, "qwac-ca", now)
    crl = _load(record)
    ca = _ca_cert(data_dir, "qwac-ca")

    raw = acrl.CertificateList.load(record.der)
    assert raw["tbs_cert_list"]["version"].native == "v2"
    assert raw["tbs_cert_list"]["issuer"].dump() == ax509.Certificate.load(ca.public_bytes(Encoding.DER))["tbs_certificate"]["subject"].dump()
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.signature_hash_algorithm is not None and crl.signature_hash_algorithm.name == "sha384"  # P-384 CA

    reasons = _reasons(crl)
    assert set(reasons) == {c.serial_number for r, c in revoked.items() if r != "good"}
    assert revoked["good"].serial_number not in reasons
    assert reasons[revoked["unspecified"].serial_number] is None  # no reasonCode for unspecified (BR 7.2.2)
    for reason, code in REASON_CODES.items():
        assert reasons[revoked[reason].serial_number] == code
    assert 6 not in reasons.values() and 0 not in reasons.values()  # never certificateHold, never an explicit unspecified
    for entry in crl:
        assert entry.revocation_date_utc <= crl.last_update_utc

    aki = crl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier)
    ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert not aki.critical and aki.value.key_identifier == ski.digest
    number = crl.extensions.get_extension_for_class(x509.CRLNumber)
    assert not number.critical and number.value.crl_number == record.number >= 1

    expired = _ext(crl, EXPIRED_CERTS_ON_CRL)
    assert expired is not None and not expired.critical
    value = expired.value.value  # type: ignore[attr-defined]
    assert value[0] == 0x18  # GeneralizedTime, even before 2050
    assert value[2:].decode() == ca.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ")
    assert _ext(crl, DELTA_CRL_INDICATOR) is None  # 2.5.29.27 is the delta indicator, not expiredCertsOnCRL

    freshest = crl.extensions.get_extension_for_class(x509.FreshestCRL)
    assert not freshest.critical
    assert freshest.value[0].full_name == [x509.UniformResourceIdentifier(sandbox.config.base + "/crl/qwac-ca-delta.crl")]

    assert crl.last_update_utc == now.replace(microsecond=0)
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=sandbox.config.crl_validity_hours)
    assert record.entries == len(reasons) == len(REASONS)


def test_qualified_ca_keeps_expired_entries(sandbox: Sandbox) -> None:
    cert = _issue(sandbox, "expires")
    revocation.revoke(sandbox, serial_hex(cert.serial_number), "superseded")
    after_expiry = cert.not_valid_after_utc + dt.timedelta(days=30)
    crl = _load(crl_svc.generate(sandbox, "qwac-ca", after_expiry))
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert _ext(crl, EXPIRED_CERTS_ON_CRL) is not None


def test_root_arl_is_empty_valid_and_long_lived(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    now = utcnow()
    record = crl_svc.generate(sandbox, "root", now)
    arl = _load(record)
    root = _ca_cert(data_dir, "root")
    assert len(arl) == 0 and record.entries == 0
    assert arl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert arl.next_update_utc - arl.last_update_utc == dt.timedelta(days=sandbox.config.arl_validity_days)
    assert _ext(arl, EXPIRED_CERTS_ON_CRL) is None  # the root issues no end-entity certificates
    assert arl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == \
        root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    path = tmp_path / "root.crl"
    path.write_bytes(record.der)
    result = _pkilint(path, "ARL")
    assert result.returncode == 0, result.stdout + result.stderr


def test_core_checks_its_inputs(data_dir: Path, sandbox: Sandbox) -> None:
    from qtsp.core.errors import QTSPError

    with sandbox.transaction() as session:
        from ca_store.models import CertificateAuthority

        ca = session.get(CertificateAuthority, "qseal-ca")
        assert ca is not None
    signer = sandbox.backend(ca.key.ref).signer(ca.key.ref)  # type: ignore[arg-type]
    t = dt.datetime(2030, 6, 1, 14, 0, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    params = core_crl.CrlParams(number=7, this_update=t, next_update=t + dt.timedelta(days=1))
    crl = x509.load_der_x509_crl(core_crl.build_crl(ca.cert_der, signer, params, [core_crl.Entry(5, t, "superseded")]))
    assert crl.last_update_utc == dt.datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    assert crl[0].revocation_date_utc == dt.datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
    assert _ext(crl, EXPIRED_CERTS_ON_CRL) is None and _ext(crl, FRESHEST_CRL) is None
    for bad in ([(5, t, "remove-from-crl")], [(5, t.replace(tzinfo=None), "superseded")], [(0, t, "superseded")]):
        with pytest.raises(QTSPError):
            core_crl.build_crl(ca.cert_der, signer, params, bad)  # type: ignore[arg-type]
    # certificateHold can be written (the simulator's scenarios carry it), but a revocation never asks for it
    # (BR 7.2.2): the service refuses it before anything is stored.
    from qtsp.services import revocation

    with pytest.raises(QTSPError, match="unknown reason"):
        revocation.revoke(sandbox, "01", "certificate-hold")
    with pytest.raises(QTSPError):
        core_crl.build_crl(ca.cert_der, signer, core_crl.CrlParams(3, t, t + dt.timedelta(days=1), delta_base=3), [])
    with pytest.raises(QTSPError):
        core_crl.build_crl(ca.cert_der, signer, core_crl.CrlParams(3, t, t), [])
    assert core_crl.generalized_time(t) == b"\x18\x0f20300601120000Z"


# --- numbers and deltas --------------------------------------------------------------------


def test_numbers_rise_strictly_across_full_and_delta(sandbox: Sandbox) -> None:
    now = utcnow()
    numbers = []
    for i, delta in enumerate([False, True, True, False, True, False, False, True]):
        record = crl_svc.generate(sandbox, "qseal-ca", now + dt.timedelta(seconds=i), delta=delta)
        assert _load(record).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == record.number
        numbers.append(record.number)
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # one shared sequence
    # Another issuer has its own sequence.
    assert crl_svc.generate(sandbox, "qwac-ca", now).number == 1


def test_delta_lists_only_changes_since_its_base(sandbox: Sandbox) -> None:
    t0 = utcnow().replace(microsecond=0)
    old, changed, new, good = (_issue(sandbox, n) for n in ("old", "changed", "new", "good"))
    revocation.revoke(sandbox, serial_hex(old.serial_number), "superseded", now=t0)
    revocation.revoke(sandbox, serial_hex(changed.serial_number), "affiliation-changed", now=t0)
    base = crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=1))
    revocation.revoke(sandbox, serial_hex(new.serial_number), "cessation-of-operation", now=t0 + dt.timedelta(minutes=2))
    revocation.revoke(sandbox, serial_hex(changed.serial_number), "key-compromise", now=t0 + dt.timedelta(minutes=2))
    delta = crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=3), delta=True)

    crl = _load(delta)
    indicator = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical and indicator.value.crl_number == base.number
    assert delta.delta_base == base.number and delta.number > base.number
    assert _reasons(crl) == {new.serial_number: 5, changed.serial_number: 1}  # not "old", nor "good"
    assert _ext(crl, FRESHEST_CRL) is None  # freshestCRL belongs on the base only
    assert _ext(crl, EXPIRED_CERTS_ON_CRL) is not None
    assert _ext(_load(base), FRESHEST_CRL) is not None
    assert _reasons(_load(base)) == {old.serial_number: 4, changed.serial_number: 3}

    # The next full CRL holds all three with their current reasons; a delta right after it is empty.
    full = crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=4))
    assert _reasons(_load(full)) == {old.serial_number: 4, changed.serial_number: 1, new.serial_number: 5}
    assert len(_load(crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=5), delta=True))) == 0


def test_delta_without_a_base_makes_the_base_first(sandbox: Sandbox) -> None:
    delta = crl_svc.generate(sandbox, "qseal-ca", utcnow(), delta=True)
    with sandbox.transaction() as session:
        base_record = crl_svc.latest(session, "qseal-ca")
        assert crl_svc.latest(session, "qseal-ca", delta=True).number == delta.number  # type: ignore[union-attr]
    assert base_record is not None and delta.delta_base == base_record.number < delta.number


# --- regeneration ----------------------------------------------------------------------------


def _state(sandbox: Sandbox, issuer_id: str) -> PublicationState | None:
    with sandbox.transaction() as session:
        return session.get(PublicationState, issuer_id)


def test_burst_of_revocations_makes_one_crl(sandbox: Sandbox) -> None:
    certs = [_issue(sandbox, f"burst{i}") for i in range(20)]
    t0 = utcnow()
    before = len(_records(sandbox, "qwac-ca"))
    for i, cert in enumerate(certs):
        revocation.revoke(sandbox, serial_hex(cert.serial_number), "superseded", now=t0 + dt.timedelta(milliseconds=50 * i))
    state = _state(sandbox, "qwac-ca")
    assert state is not None and state.crl_dirty_since == t0  # set by the first, left by the others

    # Within the debounce window nothing is published yet.
    assert crl_svc.regenerate_dirty(sandbox, t0 + dt.timedelta(seconds=sandbox.config.crl_debounce_seconds / 2)) == 0
    assert len(_records(sandbox, "qwac-ca")) == before

    later = t0 + dt.timedelta(seconds=sandbox.config.crl_debounce_seconds + 1)
    assert crl_svc.regenerate_dirty(sandbox, later) == 2
    new = _records(sandbox, "qwac-ca")[before:]
    assert [r.delta_base is None for r in new] == [True, False]  # exactly one full CRL, then one delta
    full, delta = new
    assert full.entries == 20 and delta.entries == 0 and delta.delta_base == full.number
    assert {e.serial_number for e in _load(full)} == {c.serial_number for c in certs}
    state = _state(sandbox, "qwac-ca")
    assert state is not None and state.crl_dirty_since is None  # cleared with the CRL
    assert crl_svc.regenerate_dirty(sandbox, later + dt.timedelta(seconds=10)) == 0
    assert _records(sandbox, "qseal-ca") == []  # other issuers untouched


def test_regenerate_due_refreshes_missing_and_half_expired(sandbox: Sandbox) -> None:
    t0 = utcnow()
    assert crl_svc.regenerate_due(sandbox, t0) == 6  # root, qwac-ca, qseal-ca: full + delta each
    for ca_id in ("root", "qwac-ca", "qseal-ca"):
        kinds = [r.delta_base is None for r in _records(sandbox, ca_id)]
        assert kinds == [True, False]
    assert crl_svc.regenerate_due(sandbox, t0 + dt.timedelta(minutes=5)) == 0
    half = dt.timedelta(hours=sandbox.config.crl_validity_hours / 2)
    assert crl_svc.regenerate_due(sandbox, t0 + half + dt.timedelta(seconds=1)) == 4  # the two issuing CAs; the ARL lasts a year
    assert len(_records(sandbox, "root")) == 2 and len(_records(sandbox, "qwac-ca")) == 4


def test_concurrent_generators_never_share_a_number(sandbox: Sandbox) -> None:
    _concurrent_numbers(sandbox)


def _concurrent_numbers(sandbox: Sandbox) -> None:
    numbers: list[int] = []
    errors: list[BaseException] = []
    now = utcnow()
    assert crl_svc.generate(sandbox, "qwac-ca", now).number == 1  # a base, so every delta below makes one CRL

    def work(i: int) -> None:
        try:
            numbers.append(crl_svc.generate(sandbox, "qwac-ca", now, delta=i % 2 == 1).number)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert not errors, errors
    assert sorted(numbers) == list(range(2, 10))
    stored = sorted(r.number for r in _records(sandbox, "qwac-ca"))
    assert stored == list(range(1, 10))


@pytest.fixture(scope="module")
def pg_cluster() -> Iterator[PostgresCluster]:
    with PostgresCluster() as cluster:
        yield cluster


@pytest.mark.postgres
def test_concurrent_generators_on_postgres(pg_cluster: PostgresCluster, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from qtsp.services.hierarchy import init_sandbox

    monkeypatch.setenv("QTSP_DATABASE_URL", pg_cluster.new_database())
    sandbox = init_sandbox(tmp_path / "pg-data")
    try:
        _concurrent_numbers(sandbox)
        record = crl_svc.generate(sandbox, "qwac-ca", utcnow(), delta=True)  # row exists now: ON CONFLICT path
        assert record.number == 10 and record.delta_base is not None
    finally:
        sandbox.engine.dispose()


# --- openssl and pkilint ---------------------------------------------------------------------


def _pem(record: CrlRecord, path: Path) -> Path:
    path.write_bytes(_load(record).public_bytes(Encoding.PEM))
    return path


def test_openssl_verifies_the_crl_and_sees_the_revocation(sandbox: Sandbox, data_dir: Path, tmp_path: Path,
                                                         revoked: dict[str, x509.Certificate]) -> None:
    openssl = _openssl()
    record = crl_svc.generate(sandbox, "qwac-ca", utcnow())
    der = tmp_path / "qwac-ca.crl"
    der.write_bytes(record.der)
    bundle = tmp_path / "chain.pem"
    bundle.write_bytes((data_dir / "ca" / "root.pem").read_bytes() + (data_dir / "ca" / "qwac-ca.pem").read_bytes())
    result = _run([openssl, "crl", "-inform", "DER", "-in", str(der), "-CAfile", str(bundle), "-noout"])
    assert result.returncode == 0 and "verify OK" in result.stdout + result.stderr, result.stdout + result.stderr

    crl_pem = _pem(record, tmp_path / "qwac-ca.crl.pem")
    for name, expected in (("good", "OK"), ("key-compromise", "certificate revoked"), ("unspecified", "certificate revoked")):
        leaf = tmp_path / f"{name}.pem"
        leaf.write_bytes(revoked[name].public_bytes(Encoding.PEM))
        result = _run([openssl, "verify", "-crl_check", "-CAfile", str(data_dir / "ca" / "root.pem"),
                       "-untrusted", str(data_dir / "ca" / "qwac-ca.pem"), "-CRLfile", str(crl_pem), str(leaf)])
        out = result.stdout + result.stderr
        if expected == "OK":
            assert result.returncode == 0 and f"{leaf}: OK" in out, out
        else:
            assert result.returncode != 0 and expected in out, out

    # The whole chain: the issuing CA's certificate is checked against the root's ARL too.
    arl_pem = _pem(crl_svc.generate(sandbox, "root", utcnow()), tmp_path / "root.crl.pem")
    both = tmp_path / "crls.pem"
    both.write_bytes(crl_pem.read_bytes() + arl_pem.read_bytes())
    leaf = tmp_path / "good.pem"
    result = _run([openssl, "verify", "-crl_check_all", "-CAfile", str(data_dir / "ca" / "root.pem"),
                   "-untrusted", str(data_dir / "ca" / "qwac-ca.pem"), "-CRLfile", str(both), str(leaf)])
    assert result.returncode == 0 and f"{leaf}: OK" in result.stdout, result.stdout + result.stderr


def test_pkilint_finds_no_errors(sandbox: Sandbox, tmp_path: Path, revoked: dict[str, x509.Certificate]) -> None:
    seal = _issue(sandbox, "seal", kind="qsealc")
    revocation.revoke(sandbox, serial_hex(seal.serial_number), "key-compromise")
    now = utcnow()
    for ca_id in ("qwac-ca", "qseal-ca"):
        for delta in (False, True):
            record = crl_svc.generate(sandbox, ca_id, now, delta=delta)
            path = tmp_path / f"{ca_id}{'-delta' if delta else ''}.crl"
            path.write_bytes(record.der)
            result = _pkilint(path, "CRL")
            assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"
    assert len(_load(crl_svc.generate(sandbox, "qseal-ca", now))) == 1


# --- HTTP -----------------------------------------------------------------------------------


@pytest.fixture
def client(data_dir: Path, sandbox: Sandbox):  # type: ignore[no-untyped-def]
    from qtsp.web import create_app

    app = create_app({"data_dir": data_dir})
    yield app.test_client()
    app.extensions["qtsp"].sandbox.engine.dispose()


def test_http_serves_the_crl_with_caching_headers(client, sandbox: Sandbox, data_dir: Path,  # type: ignore[no-untyped-def]
                                                   revoked: dict[str, x509.Certificate]) -> None:
    assert _records(sandbox, "qwac-ca") == []
    response = client.get("/crl/qwac-ca.crl")  # none yet: made on demand
    assert response.status_code == 200
    assert response.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.data)
    assert crl.is_signature_valid(_ca_cert(data_dir, "qwac-ca").public_key())  # type: ignore[arg-type]
    assert len(crl) == len(REASONS)
    assert [r.number for r in _records(sandbox, "qwac-ca")] == [1]

    cache = response.headers["Cache-Control"]
    assert cache.startswith("public, max-age=") and cache.endswith(", no-transform")
    max_age = int(cache.split("max-age=")[1].split(",")[0])
    assert 3500 <= max_age <= 3600  # nextUpdate is days away: capped at an hour
    assert response.headers["Last-Modified"] == crl.last_update_utc.strftime("%a, %d %b %Y %H:%M:%S GMT")
    assert response.headers["Expires"] == crl.next_update_utc.strftime("%a, %d %b %Y %H:%M:%S GMT")
    etag = response.headers["ETag"]
    assert etag.startswith('"') and etag.endswith('"')

    again = client.get("/crl/qwac-ca.crl")  # served from the store, not regenerated
    assert again.data == response.data and again.headers["ETag"] == etag
    assert len(_records(sandbox, "qwac-ca")) == 1

    cached = client.get("/crl/qwac-ca.crl", headers={"If-None-Match": etag})
    assert cached.status_code == 304 and cached.data == b"" and cached.headers["ETag"] == etag
    assert client.get("/crl/qwac-ca.crl", headers={"If-None-Match": '"other"'}).status_code == 200

    crl_svc.generate(sandbox, "qwac-ca", utcnow())  # a newer CRL: a new ETag
    newer = client.get("/crl/qwac-ca.crl", headers={"If-None-Match": etag})
    assert newer.status_code == 200 and newer.headers["ETag"] != etag


def test_http_serves_delta_and_arl(client, sandbox: Sandbox) -> None:  # type: ignore[no-untyped-def]
    delta = client.get("/crl/qseal-ca-delta.crl")
    assert delta.status_code == 200 and delta.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(delta.data)
    assert crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator).critical
    base = x509.load_der_x509_crl(client.get("/crl/qseal-ca.crl").data)
    assert crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator).value.crl_number == \
        base.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    arl = client.get("/crl/root.crl")
    assert arl.status_code == 200 and len(x509.load_der_x509_crl(arl.data)) == 0
    assert client.head("/crl/root.crl").status_code == 200


@pytest.mark.parametrize("path", ["/crl/nope.crl", "/crl/nope-delta.crl", "/crl/QWAC-CA.crl", "/crl/qwac_ca.crl",
                                  "/crl/" + "a" * 65 + ".crl", "/crl/-delta.crl"])
def test_http_unknown_ca_is_a_404_problem(client, path: str) -> None:  # type: ignore[no-untyped-def]
    response = client.get(path)
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["status"] == 404


# --- CLI ------------------------------------------------------------------------------------


def test_cli_generate_and_show(data_dir: Path, sandbox: Sandbox, revoked: dict[str, x509.Certificate]) -> None:
    from cli.commands_crl import crl

    runner = CliRunner()
    result = runner.invoke(crl, ["generate", "--data-dir", str(data_dir), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["issuer"] for r in rows} == {"root", "qwac-ca", "qseal-ca"} and all(r["kind"] == "full" for r in rows)

    result = runner.invoke(crl, ["generate", "--ca", "qwac-ca", "--delta", "--data-dir", str(data_dir), "--json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)[0]["kind"] == "delta"

    result = runner.invoke(crl, ["show", "--ca", "qwac-ca", "--entries", "--data-dir", str(data_dir), "--json"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["number"] == 1 and shown["entries"] == len(REASONS) and shown["kind"] == "full"
    assert {e["serial"] for e in shown["revoked"]} == {serial_hex(c.serial_number) for r, c in revoked.items() if r != "good"}

    text = runner.invoke(crl, ["show", "--ca", "qwac-ca", "--delta", "--data-dir", str(data_dir)], catch_exceptions=False)
    assert text.exit_code == 0 and "number       2 (delta of 1)" in text.output and "nextUpdate" in text.output

    missing = runner.invoke(crl, ["show", "--ca", "nope", "--data-dir", str(data_dir)])
    assert missing.exit_code == 4 and "no CA" in missing.output


# --- performance ------------------------------------------------------------------------------


def test_100k_entries_build_sign_and_store_quickly(sandbox: Sandbox) -> None:
    """Synthetic: 100,000 revoked certificates inserted with executemany, then one full CRL."""
    count = 100_000
    t0 = utcnow().replace(microsecond=0)
    reasons = list(REASONS)
    with sandbox.transaction() as session:
        first_id = (session.execute(select(func.max(Certificate.id))).scalar_one() or 0) + 1
        certs = [{"id": first_id + i, "issuer_id": "qseal-ca", "serial": serial_hex((1 << 126) | secrets.randbits(120) << 6 | (i & 63)),
                  "profile": "synthetic", "subject": "CN=synthetic", "org_id": None, "nca_id": None, "roles": None,
                  "dns_names": None, "not_before": t0, "not_after": t0 + dt.timedelta(days=365),
                  "fingerprint_sha256": f"{i:064x}", "der": b"\x30\x00", "status": "revoked", "created_at": t0}
                 for i in range(count)]
        session.execute(insert(Certificate), certs)
        session.execute(insert(Revocation), [
            {"certificate_id": first_id + i, "revoked_at": t0 - dt.timedelta(seconds=i), "reason": reasons[i % len(reasons)],
             "requested_by": "synthetic"} for i in range(count)])
    serials = {int(c["serial"], 16) for c in certs}
    assert len(serials) == count
    import qtsp.web.metrics  # noqa: F401  (the first CRL of a process imports it; not part of the figure)

    started = time.perf_counter()
    record = crl_svc.generate(sandbox, "qseal-ca", t0 + dt.timedelta(seconds=1))
    elapsed = time.perf_counter() - started
    print(f"\n100k-entry CRL: generate (read + build + sign + store + commit) {elapsed:.2f} s, {len(record.der)} bytes")
    assert record.entries == count
    crl = _load(record)
    assert len(crl) == count
    assert elapsed < 10, f"100k-entry CRL took {elapsed:.2f} s"
    started = time.perf_counter()
    delta = crl_svc.generate(sandbox, "qseal-ca", t0 + dt.timedelta(seconds=2), delta=True)
    print(f"100k-entry base, delta against it: {time.perf_counter() - started:.2f} s")
    assert delta.entries == 0
