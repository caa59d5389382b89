"""Crash consistency: kill -9 `qtsp serve` (granian workers and the scheduler, the whole process
group) at random moments while clients issue certificates through the REST API, revoke them
(and change reasons to key-compromise), a `qtsp issue bulk` run writes certificates, and an
OCSP probe reads statuses; restart it and check the store and the restarted service against
what every client was told. On SQLite and on PostgreSQL, a bounded number of kills each.

After every restart:
- every certificate a client received (201 from the API, or a cert.pem the bulk run wrote) is
  in the store with the same DER, its issuance is in the audit log, and OCSP knows it (never
  ``unknown``, never the ``unauthorized`` of a serial never issued); serials are unique per issuer, in the store and among what clients received;
- every acknowledged revocation (a 200 from .../revoke) is in the store with the acknowledged
  time and reason, OCSP answers ``revoked`` with that time and reason (pre-signed SHA-1 and
  SHA-256 answers and a nonce answer signed on demand), and the scheduler's next CRL lists it;
- nothing is revoked without a revocation record: certificate status, pre-signed OCSP rows,
  OCSP answers over HTTP and CRL entries all agree with the revocation rows (a revocation whose
  answer was lost in the kill may be there or not, but then entirely or not at all);
- CRL numbers never go backwards: the store's highest number per issuer is at least every
  number ever served, and the served full and delta CRLs only move forward;
- the audit hash chain verifies (``qtsp.services.audit.verify``).
During the load an OCSP probe checks that no acknowledged revocation is ever answered ``good``.

The seed is printed; set QTSP_CRASH_SEED to replay a run, QTSP_CRASH_KILLS to change the
number of kills per backend (default 5).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509 import ocsp
from sqlalchemy import func, select

from ca_store.models import AuditEvent, Certificate, CertificateAuthority, CrlRecord, OcspResponse, PublicationState, Revocation
from qtsp.core.types import serial_hex
from qtsp.services import audit, register, tokens
from qtsp.services.context import Sandbox, open_sandbox
from support.chaos import ORG, Http, Service, ocsp_request, ocsp_request_for_serial, parse_ocsp, reason_name
from support.crash import CRL_WAIT, ISSUERS, KILLS, Ledger, Run, load_and_kill, start_bulk, as_utc


# --- checks after a restart ----------------------------------------------------------------------


def _store_snapshot(sb: Sandbox) -> dict[str, Any]:
    with sb.transaction() as session:
        certs = {(r.issuer_id, int(r.serial, 16)): r for r in session.execute(
            select(Certificate.id, Certificate.issuer_id, Certificate.serial, Certificate.der, Certificate.status))}
        revocations = {r.certificate_id: (as_utc(r.revoked_at), r.reason) for r in session.execute(
            select(Revocation.certificate_id, Revocation.revoked_at, Revocation.reason))}
        duplicates = session.execute(
            select(Certificate.issuer_id, Certificate.serial, func.count()).group_by(Certificate.issuer_id, Certificate.serial)
            .having(func.count() > 1)).all()
        presigned = session.execute(select(OcspResponse.certificate_id, OcspResponse.hash_algorithm,
                                           OcspResponse.status)).all()
        crl_max = dict(session.execute(select(CrlRecord.issuer_id, func.max(CrlRecord.number))
                                       .group_by(CrlRecord.issuer_id)).all())
        dirty = dict(session.execute(select(PublicationState.issuer_id, PublicationState.crl_dirty_since)).all())
        events = Counter((r.action, r.subject) for r in session.execute(
            select(AuditEvent.action, AuditEvent.subject).where(AuditEvent.action.like("certificate.%"))))
    return {"certs": certs, "revocations": revocations, "duplicates": duplicates, "presigned": presigned,
            "crl_max": crl_max, "dirty": dirty, "events": events}


def _check_store(run: Run, snap: dict[str, Any]) -> None:
    ledger, certs, revocations, events = run.ledger, snap["certs"], snap["revocations"], snap["events"]
    assert not snap["duplicates"], f"serials stored twice under one issuer: {snap['duplicates']}"
    received = Counter(ledger.received_serials)
    assert not [k for k, n in received.items() if n > 1], "a serial was handed out twice under one issuer"
    for key, der in ledger.issued.items():
        row = certs.get(key)
        assert row is not None, f"certificate {serial_hex(key[1])} of {key[0]} was delivered but is not in the store"
        assert bytes(row.der) == der, f"certificate {serial_hex(key[1])}: the store holds other DER than was delivered"
        assert events[("certificate.issue", serial_hex(key[1]))] >= 1, f"no audit event for issuing {serial_hex(key[1])}"
    run.checks["delivered certificates in store"] += len(ledger.issued)

    by_id = {row.id: key for key, row in certs.items()}
    for key, row in certs.items():  # nothing revoked without a record, and every record marks the certificate
        assert (row.status == "revoked") == (row.id in revocations), \
            f"certificate {serial_hex(key[1])}: status {row.status!r} but revocation record {revocations.get(row.id)}"
    for cert_id in revocations:
        serial = serial_hex(by_id[cert_id][1])
        assert events[("certificate.revoke", serial)] == 1, f"revocation of {serial} has no (or several) audit events"
    for cert_id, algorithm, status in snap["presigned"]:
        expected = "revoked" if cert_id in revocations else "good"
        assert status == expected, \
            f"pre-signed {algorithm} OCSP answer for {serial_hex(by_id[cert_id][1])} says {status}, the store says {expected}"
    run.checks["pre-signed OCSP rows agree"] += len(snap["presigned"])

    for key, (revoked_at, reason) in ledger.revoked.items():
        row = certs[key]
        record = revocations.get(row.id)
        assert record is not None, f"acknowledged revocation of {serial_hex(key[1])} is not in the store"
        allowed = {reason} | ({"key-compromise"} if key in ledger.kc_unanswered else set())
        assert record[0] == revoked_at and record[1] in allowed, \
            f"revocation of {serial_hex(key[1])}: store {record}, acknowledged ({revoked_at}, {reason})"
        if reason == "key-compromise":
            assert events[("certificate.revoke.reason_change", serial_hex(key[1]))] == 1
    run.checks["acknowledged revocations in store"] += len(ledger.revoked)
    # Revocations whose answer was lost: all or nothing (checked above), either outcome allowed.
    unanswered = [k for k in ledger.revoke_unanswered if k in certs]
    run.checks["unanswered revocations (either outcome)"] += len(unanswered)


def _check_ocsp(run: Run, snap: dict[str, Any]) -> None:
    """Every delivered certificate over HTTP: the restarted service agrees with the store."""
    certs, revocations, ledger = snap["certs"], snap["revocations"], run.ledger
    http = Http(run.service.url, timeout=30)
    ctype = {"Content-Type": "application/ocsp-request"}
    for key, der in ledger.issued.items():
        cert = x509.load_der_x509_certificate(der)
        record = revocations.get(certs[key].id)
        variants = [{}] if record is None else [{}, {"sha256": True}, {"nonce": True}]
        for variant in variants:
            status, _, body = http.request("POST", "/ocsp", ocsp_request(cert, run.ca_certs[key[0]], **variant), ctype)
            assert status == 200, f"OCSP HTTP {status}"
            answer = parse_ocsp(body, key[1])
            assert answer.status != "unknown", f"OCSP does not know delivered certificate {serial_hex(key[1])}"
            if record is None:
                assert answer.status == "good", f"OCSP says {answer.status} for {serial_hex(key[1])}, which has no revocation record"
            else:
                assert answer.status == "revoked" and answer.revoked_at == record[0] and answer.reason == record[1], \
                    f"OCSP ({variant or 'sha1'}) says {answer} for {serial_hex(key[1])}, the store says {record}"
            run.checks["OCSP answers checked"] += 1
    # Certificates in the store that nobody was told about (answer lost in a kill, bulk file never
    # written): OCSP agrees with the store for them too (a sample, to keep the run bounded).
    undelivered = sorted(k for k in certs if k not in ledger.issued and k[0] in ISSUERS)
    for key in run.rng.sample(undelivered, min(30, len(undelivered))):
        cert = x509.load_der_x509_certificate(bytes(certs[key].der))
        status, _, body = http.request("POST", "/ocsp", ocsp_request(cert, run.ca_certs[key[0]]), ctype)
        answer, record = parse_ocsp(body, key[1]), revocations.get(certs[key].id)
        expected = "good" if record is None else "revoked"
        assert status == 200 and answer.status == expected, \
            f"OCSP says {answer} for stored, undelivered {serial_hex(key[1])}; the store says {record}"
        run.checks["OCSP answers checked (stored, never delivered)"] += 1
    for _ in range(4):  # serials never issued: the static unauthorized, never good (BR 4.9.10, issue 15)
        issuer = run.rng.choice(ISSUERS)
        serial = run.rng.getrandbits(120) | (1 << 120)
        status, _, body = http.request("POST", "/ocsp", ocsp_request_for_serial(serial, run.ca_certs[issuer]), ctype)
        assert status == 200 and ocsp.load_der_ocsp_response(body).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED
        run.checks["OCSP unused serials"] += 1
    http.close()


def _check_crls(run: Run, snap: dict[str, Any]) -> None:
    """The served CRLs move forward only, list exactly the revocation records, and the scheduler
    publishes the ones still missing (the dirty mark survived the kill)."""
    certs, revocations = snap["certs"], snap["revocations"]
    for issuer, served in run.crl_served.items():
        assert snap["crl_max"].get(issuer[0], 0) >= served, \
            f"CRL numbers went backwards: {issuer[0]} served number {served} before the kill, the store's highest is now {snap['crl_max'].get(issuer[0])}"
    wanted = {issuer: {} for issuer in ISSUERS}
    for key, row in certs.items():
        if row.id in revocations and key[0] in wanted:
            wanted[key[0]][key[1]] = revocations[row.id]
    http = Http(run.service.url, timeout=30)
    started = time.monotonic()
    for issuer in ISSUERS:
        public_key = run.ca_certs[issuer].public_key()
        while True:
            crls = {}
            for delta in (False, True):
                status, _, body = http.request("GET", f"/crl/{issuer}{'-delta' if delta else ''}.crl")
                assert status == 200, f"GET CRL {issuer} delta={delta}: HTTP {status}"
                crl = x509.load_der_x509_crl(body)
                assert crl.is_signature_valid(public_key), f"CRL of {issuer} does not verify"  # type: ignore[arg-type]
                number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
                previous = run.crl_served.get((issuer, delta), 0)
                assert number >= previous, f"{issuer} {'delta ' if delta else ''}CRL number went back from {previous} to {number}"
                run.crl_served[(issuer, delta)] = number
                run.crl_served_max = max(run.crl_served_max, number)
                crls[delta] = crl
            listed = {}
            for entry in crls[False]:
                reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason \
                    if any(isinstance(e.value, x509.CRLReason) for e in entry.extensions) else None
                listed[entry.serial_number] = (entry.revocation_date_utc, reason_name(reason))
            stray = {s: v for s, v in listed.items() if s not in wanted[issuer]}
            assert not stray, f"{issuer} CRL lists serials without a revocation record: {[serial_hex(s) for s in stray]}"
            for serial, (revoked_at, reason) in listed.items():
                stored = wanted[issuer][serial]
                assert revoked_at == stored[0], f"{issuer} CRL entry {serial_hex(serial)} has date {revoked_at}, the store {stored[0]}"
                # the only change a CRL may lag behind: a reason changed to key-compromise since it was made
                assert reason == stored[1] or stored[1] == "key-compromise", \
                    f"{issuer} CRL entry {serial_hex(serial)} has reason {reason}, the store {stored[1]}"
            missing = {s for s, value in wanted[issuer].items() if listed.get(s) != value}
            if not missing:
                break
            if time.monotonic() - started > CRL_WAIT:
                raise AssertionError(
                    f"{issuer}: {len(missing)} revocations (acknowledged: "
                    f"{sum((issuer, s) in run.ledger.revoked for s in missing)}) not on the CRL {CRL_WAIT:.0f} s after the restart "
                    f"(dirty since {snap['dirty'].get(issuer)}); scheduler log: {run.service.log_tail(1500)}")
            time.sleep(0.2)
        run.checks["CRL entries checked"] += len(wanted[issuer])
    run.crl_waits.append(time.monotonic() - started)
    http.close()


def _check_after_restart(run: Run) -> None:
    snap = _store_snapshot(run.sandbox)
    _check_store(run, snap)
    _check_ocsp(run, snap)
    _check_crls(run, snap)
    events, problem = audit.verify(run.sandbox)
    assert problem is None, f"audit chain broken after a kill: event {problem.seq}: {problem.problem}"
    run.checks["audit events verified"] = events
    assert not run.ledger.unexpected, "clients got answers they should never get:\n" + "\n".join(run.ledger.unexpected[:20])


# --- the test ---------------------------------------------------------------------------------------


def _ca_certs(sb: Sandbox) -> tuple[dict[str, x509.Certificate], dict[bytes, str]]:
    with sb.transaction() as session:
        rows = session.execute(select(CertificateAuthority.id, CertificateAuthority.cert_der)).all()
    certs = {row.id: x509.load_der_x509_certificate(row.cert_der) for row in rows}
    return certs, {c.subject.public_bytes(): ca_id for ca_id, c in certs.items()}


def _data_dir_for(store: str, tmp_path: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch,
                  env: dict[str, str]) -> Path:
    """The sandbox copy of the session (SQLite), or a new one on a database of the session's PostgreSQL cluster."""
    if store != "postgres":
        return request.getfixturevalue("data_dir")  # type: ignore[no-any-return]
    from qtsp.services.hierarchy import init_sandbox

    url = request.getfixturevalue("pg_cluster").new_database("crash")
    monkeypatch.setenv("QTSP_DATABASE_URL", url)
    env["QTSP_DATABASE_URL"] = url
    data_dir = tmp_path / "qtsp-data"
    sb = init_sandbox(data_dir)
    register.add_psp(sb, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")
    sb.engine.dispose()
    return data_dir


def _report(store: str, run: Run, kills: list[dict[str, Any]], test_started: float) -> None:
    ledger = run.ledger
    print(f"[crash/{store}] kills survived: {len(kills)}; requests: {dict(sorted(ledger.requests.items()))}; "
          f"delivered certificates: {len(ledger.issued)} ({len(ledger.bulk)} from bulk), acknowledged revocations: "
          f"{len(ledger.revoked)} ({sum(r == 'key-compromise' for _, r in ledger.revoked.values())} changed to "
          f"key-compromise), answers lost in a kill: {ledger.in_flight_at_kill}, live OCSP probes: {ledger.probes}")
    print(f"[crash/{store}] checks: {dict(run.checks)}; highest CRL number served: {run.crl_served_max}; "
          f"{time.monotonic() - test_started:.0f} s")


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_kill9_loses_nothing_acknowledged(store: str, tmp_path: Path, request: pytest.FixtureRequest,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    test_started = time.monotonic()
    env = dict(os.environ, QTSP_SCHEDULER_LEASE_SECONDS="3")  # a killed scheduler's lease expires quickly
    data_dir = _data_dir_for(store, tmp_path, request, monkeypatch, env)
    sb = open_sandbox(data_dir)
    assert sb.engine.dialect.name == ("postgresql" if store == "postgres" else "sqlite")
    _, token = tokens.create(sb, "crash-test", "operator")
    seed = int(os.environ.get("QTSP_CRASH_SEED", str(random.randrange(2**32))))
    ca_certs, by_name = _ca_certs(sb)
    service = Service(data_dir, workers=2, scheduler=True, env=env)
    run = Run(store, data_dir, sb, service, token, Ledger(), random.Random(seed), ca_certs, by_name)
    print(f"\n[crash/{store}] seed {seed} (QTSP_CRASH_SEED to replay), {KILLS} kills")
    kills = []
    bulk: tuple[subprocess.Popen[bytes], Path] | None = None
    try:
        service.start()
        bulk = start_bulk(run, 0)
        for cycle in range(KILLS):
            info = load_and_kill(run, cycle, *bulk)
            kills.append(info)
            service.start()  # same data dir, same port
            if cycle + 1 < KILLS:
                bulk = start_bulk(run, cycle + 1)  # it starts up while the checks run, and is killed mid-way
            _check_after_restart(run)
            print(f"[crash/{store}] kill {cycle + 1}: after {info['after_s']} s, {info['processes_killed']} processes, "
                  f"{info['in_flight']} API requests in flight, bulk delivered {info['bulk_told']}; restart checked "
                  f"(CRL caught up in {run.crl_waits[-1]:.1f} s)")
    finally:
        if bulk is not None and bulk[0].poll() is None:  # a check failed while a bulk run was going
            os.killpg(bulk[0].pid, signal.SIGKILL)
            bulk[0].wait(timeout=15)
        service.stop()
        sb.engine.dispose()
    ledger = run.ledger
    survived = len(kills)
    _report(store, run, kills, test_started)
    assert survived == KILLS
    assert all(k["processes_killed"] >= 4 for k in kills), f"kill -9 did not hit service, workers and scheduler: {kills}"
    assert len(ledger.issued) >= 10 and len(ledger.bulk) >= 1, "too little was issued to prove anything"
    assert len(ledger.revoked) >= 5, "too few acknowledged revocations to prove anything"
    assert ledger.in_flight_at_kill >= 1, "no kill landed while a request was in flight"
    assert ledger.probes >= 10, "the OCSP probe hardly ran"
    assert run.checks["OCSP answers checked"] >= len(ledger.issued)
