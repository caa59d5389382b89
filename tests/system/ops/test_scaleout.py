"""Scale-out: two `qtsp serve` processes on one PostgreSQL, behind nginx with an HTTP cache."""

from __future__ import annotations

import base64
import shutil
import time
import urllib.request
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from support.nginx import Nginx
from support.server import running_server
from qtsp.services import issuance, register, revocation
from qtsp.services.context import Sandbox, open_sandbox
from qtsp.services.hierarchy import init_sandbox

ORG = "PSDBE-NBB-0123456789"
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str) -> tuple[bytes, dict[str, str]]:
    with OPENER.open(url, timeout=10) as response:
        return response.read(), {k.lower(): v for k, v in response.headers.items()}


def _status(body: bytes) -> ocsp.OCSPCertStatus:
    return ocsp.load_der_ocsp_response(body).certificate_status


def _two_nodes(tmp_path: Path) -> tuple[Sandbox, Path, Path, list[issuance.Issued]]:
    """Node A: a sandbox on the test's database with three QWACs; node B: its own data dir (run dir,
    counters) with the same keys, as a second host would have."""
    config = tmp_path / "qtsp.toml"
    config.write_text("ocsp_max_age_seconds = 3\ncrl_debounce_seconds = 0.5\n")
    node_a = tmp_path / "node-a"
    sb = init_sandbox(node_a, config_file=config)
    register.add_psp(sb, org_id=ORG, name="Example Fintech SA", roles="PSP_AI", locality="Brussels", registration_number="1")
    certs = [issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=(f"n{i}.example.com",), generate_key="ecdsa-p256"))
             for i in range(3)]
    # The second node: its own data dir (run dir, counters) with the same keys, as a second host would have.
    node_b = tmp_path / "node-b"
    shutil.copytree(node_a, node_b)
    shutil.rmtree(node_b / "run", ignore_errors=True)
    return sb, node_a, node_b, certs


@pytest.mark.postgres
def test_two_instances_one_store_behind_nginx(pg_cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = pg_cluster.new_database()
    monkeypatch.setenv("QTSP_DATABASE_URL", url)
    sb, node_a, node_b, certs = _two_nodes(tmp_path)
    issuer = certs[0].chain[0]

    def get_path(cert: x509.Certificate) -> str:
        der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
        return "/ocsp/" + urllib.request.quote(base64.b64encode(der).decode(), safe="")

    with running_server(node_a, workers=1, scheduler=True) as a, running_server(node_b, workers=1, scheduler=True) as b, \
            Nginx([a, b], tmp_path / "nginx") as lb:
        # exactly one scheduler leads, the other stands by
        time.sleep(2)
        from ca_store.models import SchedulerLease

        with sb.transaction() as session:
            leases = session.query(SchedulerLease).all()
        assert len(leases) == 1
        for c in certs:
            assert _status(_get(b + get_path(c.certificate))[0]) == ocsp.OCSPCertStatus.GOOD
        # warm the cache in front (a few tries: on a loaded 2-core CI machine nginx once missed the second)
        seen = []
        for _ in range(5):
            body, headers = _get(lb.url + get_path(certs[0].certificate))
            seen.append((headers.get("x-cache"), headers.get("cache-control")))
            if headers.get("x-cache") == "HIT":
                break
        assert headers.get("x-cache") == "HIT" and _status(body) == ocsp.OCSPCertStatus.GOOD, seen
        assert "max-age=3" in headers["cache-control"] or "max-age=2" in headers["cache-control"]
        # revoke through A; read through B: at once (B watches the store's change counter every 200 ms)
        target = certs[0].certificate
        revocation.revoke(open_sandbox(node_a), format(target.serial_number, "X"), "key-compromise")
        revoked_at = time.monotonic()
        deadline = revoked_at + 1.0
        while _status(_get(b + get_path(target))[0]) != ocsp.OCSPCertStatus.REVOKED:
            assert time.monotonic() < deadline, "node B did not see the revocation within 1 s"
            time.sleep(0.05)
        seen_b = time.monotonic() - revoked_at
        # through the cache: bounded by the max-age qtsp sent (3 s)
        while _status(_get(lb.url + get_path(target))[0]) != ocsp.OCSPCertStatus.REVOKED:
            assert time.monotonic() - revoked_at < 3 + 2, "the cache kept serving good past max-age"
            time.sleep(0.1)
        seen_cache = time.monotonic() - revoked_at
        # the CRL, published by whichever scheduler leads, read through B
        crl_deadline = time.monotonic() + 15
        while True:
            crl = x509.load_der_x509_crl(_get(b + "/crl/qwac-ca.crl")[0])
            if target.serial_number in {r.serial_number for r in crl}:
                break
            assert time.monotonic() < crl_deadline, "the CRL did not list the revocation within 15 s"
            time.sleep(0.3)
        print(f"\nrevocation via node A seen by node B after {seen_b * 1000:.0f} ms, "
              f"through the nginx cache (max-age 3 s) after {seen_cache:.1f} s")
        for c in certs[1:]:
            assert _status(_get(lb.url + get_path(c.certificate))[0]) == ocsp.OCSPCertStatus.GOOD
