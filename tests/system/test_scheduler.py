"""The scheduler as processes: one leader per database, takeover when it dies (on SQLite and PostgreSQL),
CRLs within seconds of a revocation, a burst of revocations making one CRL. (The lease and the jobs in
process: tests/unit/test_scheduler.py.)"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509

from qtsp.services import issuance, revocation
from qtsp.services.context import Sandbox, open_sandbox
from qtsp.services.hierarchy import init_sandbox

from support.server import running_server

ORG = "PSDBE-NBB-0123456789"


def _holder(sb: Sandbox) -> str | None:
    from ca_store.models import SchedulerLease

    with sb.transaction() as session:
        lease = session.get(SchedulerLease, "scheduler")
        return None if lease is None or lease.expires_at < dt.datetime.now(dt.timezone.utc) else lease.holder


def _start_scheduler(data_dir: Path, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "cli.main", "scheduler", "--data-dir", str(data_dir)], env=env,
                            stdout=open(log, "wb"), stderr=subprocess.STDOUT, start_new_session=True)


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_two_schedulers_one_leader_and_takeover_after_kill(tmp_path: Path, request: pytest.FixtureRequest,
                                                           monkeypatch: pytest.MonkeyPatch, store: str) -> None:
    env = dict(os.environ, QTSP_SCHEDULER_LEASE_SECONDS="3")
    if store == "postgres":
        url = request.getfixturevalue("pg_cluster").new_database()
        env["QTSP_DATABASE_URL"] = url
        monkeypatch.setenv("QTSP_DATABASE_URL", url)
    data_dir = tmp_path / "d"
    init_sandbox(data_dir).engine.dispose()
    sb = open_sandbox(data_dir)
    procs = [_start_scheduler(data_dir, env, tmp_path / f"s{i}.log") for i in range(2)]
    try:
        deadline = time.monotonic() + 20
        while _holder(sb) is None and time.monotonic() < deadline:
            time.sleep(0.2)
        leader = _holder(sb)
        assert leader is not None, "no scheduler took the lease"
        pids = {p.pid for p in procs}
        leader_pid = int(leader.split(":")[1])
        assert leader_pid in pids
        time.sleep(2)
        assert _holder(sb) == leader  # the other stands by
        os.killpg(leader_pid, signal.SIGKILL)  # no release: the lease must expire
        killed_at = time.monotonic()
        while time.monotonic() - killed_at < 15:
            holder = _holder(sb)
            if holder is not None and holder != leader:
                break
            time.sleep(0.2)
        holder = _holder(sb)
        assert holder is not None and holder != leader, "the standby did not take over"
        takeover = time.monotonic() - killed_at
        assert takeover < 3 + 1 + 2, f"takeover took {takeover:.1f} s"  # lease + one renew period + slack
        assert int(holder.split(":")[1]) in pids - {leader_pid}
    finally:
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        sb.engine.dispose()


def _crl(url: str, ca: str) -> x509.CertificateRevocationList:
    with urllib.request.urlopen(f"{url}/crl/{ca}.crl", timeout=10) as response:
        return x509.load_der_x509_crl(response.read())


def _number(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


def test_revocations_reach_the_crl_within_seconds_and_a_burst_makes_one_crl(sandbox: Sandbox, data_dir: Path) -> None:
    certs = [issuance.issue(sandbox, issuance.IssueRequest("qwac", ORG, domains=(f"h{i}.example.com",),
                                                           generate_key="ecdsa-p256")).certificate for i in range(12)]
    with running_server(data_dir, scheduler=True) as url:
        first = _crl(url, "qwac-ca")
        start = time.monotonic()
        for cert in certs:
            revocation.revoke(sandbox, format(cert.serial_number, "X"), "cessation-of-operation")
        wanted = {c.serial_number for c in certs}
        while time.monotonic() - start < 20:
            crl = _crl(url, "qwac-ca")
            if wanted <= {r.serial_number for r in crl}:
                break
            time.sleep(0.25)
        listed = {r.serial_number for r in crl}
        elapsed = time.monotonic() - start
        assert wanted <= listed, "revocations did not reach the CRL within 20 s"
        assert elapsed < 10, f"CRL took {elapsed:.1f} s"
        # 12 revocations in a burst: a couple of CRL generations at most, not one per revocation.
        assert _number(crl) - _number(first) <= 4
        for entry in crl:
            assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.cessation_of_operation
