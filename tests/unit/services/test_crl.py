"""CRLs (qtsp.services.crl, qtsp.core.crl): content (reasons, AKI, number, ExpiredCertsOnCRL,
delta/freshest), the number sequence, debounced regeneration, concurrent generators, 100k entries.
(Over HTTP: tests/unit/web/test_crl.py; the CLI: tests/unit/cli/test_crl.py; judged by openssl and
pkilint, and on PostgreSQL: tests/system/services/test_crl.py.)"""

from __future__ import annotations

import datetime as dt
import secrets
import time
from pathlib import Path

import pytest
from asn1crypto import crl as acrl
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import func, insert, select

from ca_store.models import Certificate, PublicationState, Revocation
from qtsp.clock import utcnow
from qtsp.core import crl as core_crl
from qtsp.core.ocsp import REASONS
from qtsp.core.types import serial_hex
from qtsp.services import crl as crl_svc
from qtsp.services import revocation
from qtsp.services.context import Sandbox
from support.crl import (DELTA_CRL_INDICATOR, EXPIRED_CERTS_ON_CRL, FRESHEST_CRL, REASON_CODES, ca_cert, concurrent_numbers,
                         crl_ext, crl_records, crl_reasons, issue_cert, load_crl)

UTC = dt.timezone.utc


# --- content -----------------------------------------------------------------------------


def test_full_crl_content(sandbox: Sandbox, data_dir: Path, revoked: dict[str, x509.Certificate]) -> None:
    now = utcnow()
    record = crl_svc.generate(sandbox, "qwac-ca", now)
    crl = load_crl(record)
    ca = ca_cert(data_dir, "qwac-ca")

    raw = acrl.CertificateList.load(record.der)
    assert raw["tbs_cert_list"]["version"].native == "v2"
    assert raw["tbs_cert_list"]["issuer"].dump() == ax509.Certificate.load(ca.public_bytes(Encoding.DER))["tbs_certificate"]["subject"].dump()
    assert crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]
    assert crl.signature_hash_algorithm is not None and crl.signature_hash_algorithm.name == "sha384"  # P-384 CA

    reasons = crl_reasons(crl)
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

    expired = crl_ext(crl, EXPIRED_CERTS_ON_CRL)
    assert expired is not None and not expired.critical
    value = expired.value.value  # type: ignore[attr-defined]
    assert value[0] == 0x18  # GeneralizedTime, even before 2050
    assert value[2:].decode() == ca.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ")
    assert crl_ext(crl, DELTA_CRL_INDICATOR) is None  # 2.5.29.27 is the delta indicator, not expiredCertsOnCRL

    freshest = crl.extensions.get_extension_for_class(x509.FreshestCRL)
    assert not freshest.critical
    assert freshest.value[0].full_name == [x509.UniformResourceIdentifier(sandbox.config.base + "/crl/qwac-ca-delta.crl")]

    assert crl.last_update_utc == now.replace(microsecond=0)
    assert crl.next_update_utc - crl.last_update_utc == dt.timedelta(hours=sandbox.config.crl_validity_hours)
    assert record.entries == len(reasons) == len(REASONS)


def test_qualified_ca_keeps_expired_entries(sandbox: Sandbox) -> None:
    cert = issue_cert(sandbox, "expires")
    revocation.revoke(sandbox, serial_hex(cert.serial_number), "superseded")
    after_expiry = cert.not_valid_after_utc + dt.timedelta(days=30)
    crl = load_crl(crl_svc.generate(sandbox, "qwac-ca", after_expiry))
    assert crl.get_revoked_certificate_by_serial_number(cert.serial_number) is not None
    assert crl_ext(crl, EXPIRED_CERTS_ON_CRL) is not None

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
    assert crl_ext(crl, EXPIRED_CERTS_ON_CRL) is None and crl_ext(crl, FRESHEST_CRL) is None
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
        assert load_crl(record).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == record.number
        numbers.append(record.number)
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    assert numbers == list(range(numbers[0], numbers[0] + len(numbers)))  # one shared sequence
    # Another issuer has its own sequence.
    assert crl_svc.generate(sandbox, "qwac-ca", now).number == 1


def test_delta_lists_only_changes_since_its_base(sandbox: Sandbox) -> None:
    t0 = utcnow().replace(microsecond=0)
    old, changed, new, good = (issue_cert(sandbox, n) for n in ("old", "changed", "new", "good"))
    revocation.revoke(sandbox, serial_hex(old.serial_number), "superseded", now=t0)
    revocation.revoke(sandbox, serial_hex(changed.serial_number), "affiliation-changed", now=t0)
    base = crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=1))
    revocation.revoke(sandbox, serial_hex(new.serial_number), "cessation-of-operation", now=t0 + dt.timedelta(minutes=2))
    revocation.revoke(sandbox, serial_hex(changed.serial_number), "key-compromise", now=t0 + dt.timedelta(minutes=2))
    delta = crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=3), delta=True)

    crl = load_crl(delta)
    indicator = crl.extensions.get_extension_for_class(x509.DeltaCRLIndicator)
    assert indicator.critical and indicator.value.crl_number == base.number
    assert delta.delta_base == base.number and delta.number > base.number
    assert crl_reasons(crl) == {new.serial_number: 5, changed.serial_number: 1}  # not "old", nor "good"
    assert crl_ext(crl, FRESHEST_CRL) is None  # freshestCRL belongs on the base only
    assert crl_ext(crl, EXPIRED_CERTS_ON_CRL) is not None
    assert crl_ext(load_crl(base), FRESHEST_CRL) is not None
    assert crl_reasons(load_crl(base)) == {old.serial_number: 4, changed.serial_number: 3}

    # The next full CRL holds all three with their current reasons; a delta right after it is empty.
    full = crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=4))
    assert crl_reasons(load_crl(full)) == {old.serial_number: 4, changed.serial_number: 1, new.serial_number: 5}
    assert len(load_crl(crl_svc.generate(sandbox, "qwac-ca", t0 + dt.timedelta(minutes=5), delta=True))) == 0


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
    certs = [issue_cert(sandbox, f"burst{i}") for i in range(20)]
    t0 = utcnow()
    before = len(crl_records(sandbox, "qwac-ca"))
    for i, cert in enumerate(certs):
        revocation.revoke(sandbox, serial_hex(cert.serial_number), "superseded", now=t0 + dt.timedelta(milliseconds=50 * i))
    state = _state(sandbox, "qwac-ca")
    assert state is not None and state.crl_dirty_since == t0  # set by the first, left by the others

    # Within the debounce window nothing is published yet.
    assert crl_svc.regenerate_dirty(sandbox, t0 + dt.timedelta(seconds=sandbox.config.crl_debounce_seconds / 2)) == 0
    assert len(crl_records(sandbox, "qwac-ca")) == before

    later = t0 + dt.timedelta(seconds=sandbox.config.crl_debounce_seconds + 1)
    assert crl_svc.regenerate_dirty(sandbox, later) == 2
    new = crl_records(sandbox, "qwac-ca")[before:]
    assert [r.delta_base is None for r in new] == [True, False]  # exactly one full CRL, then one delta
    full, delta = new
    assert full.entries == 20 and delta.entries == 0 and delta.delta_base == full.number
    assert {e.serial_number for e in load_crl(full)} == {c.serial_number for c in certs}
    state = _state(sandbox, "qwac-ca")
    assert state is not None and state.crl_dirty_since is None  # cleared with the CRL
    assert crl_svc.regenerate_dirty(sandbox, later + dt.timedelta(seconds=10)) == 0
    assert crl_records(sandbox, "qseal-ca") == []  # other issuers untouched


def test_regenerate_due_refreshes_missing_and_half_expired(sandbox: Sandbox) -> None:
    t0 = utcnow()
    assert crl_svc.regenerate_due(sandbox, t0) == 10  # root, qwac-ca, qseal-ca, browser-root, qwac-browser-ca: full + delta each
    for ca_id in ("root", "qwac-ca", "qseal-ca", "browser-root", "qwac-browser-ca"):
        kinds = [r.delta_base is None for r in crl_records(sandbox, ca_id)]
        assert kinds == [True, False]
    assert crl_svc.regenerate_due(sandbox, t0 + dt.timedelta(minutes=5)) == 0
    half = dt.timedelta(hours=sandbox.config.crl_validity_hours / 2)
    assert crl_svc.regenerate_due(sandbox, t0 + half + dt.timedelta(seconds=1)) == 6  # the three issuing CAs; the ARLs last a year
    assert len(crl_records(sandbox, "root")) == len(crl_records(sandbox, "browser-root")) == 2
    assert len(crl_records(sandbox, "qwac-ca")) == len(crl_records(sandbox, "qwac-browser-ca")) == 4


def test_concurrent_generators_never_share_a_number(sandbox: Sandbox) -> None:
    concurrent_numbers(sandbox)


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
    crl = load_crl(record)
    assert len(crl) == count
    assert elapsed < 10, f"100k-entry CRL took {elapsed:.2f} s"
    started = time.perf_counter()
    delta = crl_svc.generate(sandbox, "qseal-ca", t0 + dt.timedelta(seconds=2), delta=True)
    print(f"100k-entry base, delta against it: {time.perf_counter() - started:.2f} s")
    assert delta.entries == 0
