"""NCA requests against the running service: the ``qtsp nca`` client commands, and 500 concurrent
revocation requests from three NCAs while OCSP is queried. (The NCA API in process: tests/unit/web/test_nca.py.)"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from qtsp.clock import utcnow
from qtsp.relying_party import nca_client
from qtsp.services import crl as crl_svc
from qtsp.services import nca_identity, register
from qtsp.services.context import Sandbox

from support.server import running_server

from support.nca import BE_PSP, NL_PSP, issue_cert, serve_here, sign


def test_nca_client_commands_against_the_running_service(sandbox: Sandbox, data_dir: Path, ncas, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    cert = issue_cert(sandbox, BE_PSP)
    with running_server(data_dir, workers=2, port=serve_here(data_dir)) as url:
        base = [sys.executable, "-m", "cli.main", "nca"]
        common = ["--url", url, "--as", "BE-NBB", "--key", str(tmp_path / "BE-NBB" / "key.pem"),
                  "--qtsp-root", str(data_dir / "ca" / "root.pem"), "--data-dir", str(data_dir)]
        grant = subprocess.run(base + ["publish-authorisation", *common, "--action", "grant", "--org-id", "PSDBE-NBB-42",
                                       "--name", "Forty Two SA", "--roles", "PSP_PI", "--locality", "Gent",
                                       "--registration-number", "42"], capture_output=True, text=True, timeout=60)
        assert grant.returncode == 0 and "receipt verified" in grant.stdout, grant.stdout + grant.stderr
        revoke = subprocess.run(base + ["request-revocation", *common, "--authorisation", "0123456789",
                                        "--reason", "privilege-withdrawn"], capture_output=True, text=True, timeout=60)
        assert revoke.returncode == 0 and format(cert.serial_number, "X") in revoke.stdout, revoke.stdout + revoke.stderr
        listed = subprocess.run(base + ["requests", "--json", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=60)
        rows = json.loads(listed.stdout)
        assert len(rows) == 2 and all(r["within_24h"] for r in rows)


def _five_hundred_signed_requests(sandbox: Sandbox, data_dir: Path, ncas, tmp_path: Path, base: str):  # type: ignore[no-untyped-def]
    """A third NCA, 500 QWACs issued in bulk across the three NCAs' PSPs, and for each a revocation
    request signed by its NCA: (requests, the certificates, serial -> NCA id, the QWAC CA)."""
    from qtsp.services import bulk

    nca_identity.add_nca(sandbox, "DE-BAFIN", "Federal Financial Supervisory Authority", generate=True, out=tmp_path / "DE-BAFIN")
    ncas["DE-BAFIN"] = {"key": (tmp_path / "DE-BAFIN" / "key.pem").read_bytes(),
                        "cert": (tmp_path / "DE-BAFIN" / "cert.pem").read_bytes()}
    register.add_psp(sandbox, org_id="PSDDE-BAFIN-149871", name="Beispiel GmbH", roles="PSP_AI", locality="Frankfurt",
                     registration_number="HRB 1")
    psps = {"BE-NBB": BE_PSP, "NL-DNB": NL_PSP, "DE-BAFIN": "PSDDE-BAFIN-149871"}
    lines = [json.dumps({"kind": "qwac", "org_id": org, "domains": [f"n{i}-{nca.lower()}.example.com"]})
             for nca, org in psps.items() for i in range(167)]
    (tmp_path / "bulk.jsonl").write_text("\n".join(lines[:500]) + "\n")
    bulk.issue_file(sandbox, tmp_path / "bulk.jsonl", tmp_path / "bulk-out", workers=2)
    certs = [x509.load_pem_x509_certificate(p.read_bytes()) for p in (tmp_path / "bulk-out").glob("*/cert.pem")]
    assert len(certs) == 500
    by_serial = {}
    con = sqlite3.connect(data_dir / "qtsp.db")
    for serial, nca_id in con.execute("select serial, nca_id from certificates"):
        by_serial[int(serial, 16)] = nca_id
    con.close()
    issuer = x509.load_pem_x509_certificate((data_dir / "ca" / "qwac-ca.pem").read_bytes())
    requests_ = []
    for cert in certs:
        nca_id = by_serial[cert.serial_number]
        org = psps[nca_id]
        requests_.append((nca_id, cert, sign(ncas, nca_id, {"org_id": org, "serials": [format(cert.serial_number, "X")],
                                                            "reason": "privilege-withdrawn"}, base=base)))
    return requests_, certs, by_serial, issuer


def _send_all_while_polling_ocsp(url: str, requests_, first: x509.Certificate,  # type: ignore[no-untyped-def]
                                 issuer: x509.Certificate) -> tuple[list, float, int]:  # type: ignore[type-arg]
    """Every request from 16 threads while a 17th polls OCSP: (results, seconds taken, OCSP answers)."""
    stop = time.monotonic() + 120
    ocsp_answers = {"n": 0}

    def poll_ocsp() -> None:
        der = ocsp.OCSPRequestBuilder().add_certificate(first, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
        while ocsp_answers["n"] < 300 and time.monotonic() < stop:
            status, _ = _http_post(url + "/ocsp", der, "application/ocsp-request")
            assert status == 200
            ocsp_answers["n"] += 1

    def send(item):  # type: ignore[no-untyped-def]
        nca_id, cert, compact = item
        status, answer = nca_client.send(url, "/nca/v1/revocation-requests", compact)
        return nca_id, cert, status, answer

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=17) as pool:
        poller = pool.submit(poll_ocsp)
        results = list(pool.map(send, requests_))
        poller.result(timeout=120)
    return results, time.monotonic() - started, ocsp_answers["n"]


def _check_the_store(data_dir: Path, elapsed: float, ocsp_answers: int) -> None:
    """Every request once in the store, its latency printed, and no NCA's request touched another's PSPs."""
    con = sqlite3.connect(data_dir / "qtsp.db")
    assert con.execute("select count(*) from revocations").fetchone()[0] == 500  # none lost, none twice
    assert con.execute("select count(*) from nca_requests").fetchone()[0] == 500
    latencies = sorted(r[0] for r in con.execute(
        "select (julianday(published_at) - julianday(received_at)) * 86400 from nca_requests"))
    print(f"\n500 NCA revocation requests from 3 NCAs, 16 client threads + OCSP polling, 2 workers: {elapsed:.1f} s "
          f"({500 / elapsed:.0f}/s); receipt-to-publication median {1000 * latencies[250]:.0f} ms, "
          f"max {1000 * latencies[-1]:.0f} ms; {ocsp_answers} OCSP answers meanwhile")
    # no request of one NCA touched another's PSPs
    rows = con.execute("select r.requested_by, c.nca_id from revocations r join certificates c on c.id = r.certificate_id").fetchall()
    assert all(actor == f"nca:{nca_id}" for actor, nca_id in rows)
    con.close()


def test_500_concurrent_revocation_requests_from_three_ncas_while_ocsp_is_queried(sandbox: Sandbox, data_dir: Path,
                                                                                   ncas, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    port = serve_here(data_dir)
    requests_, certs, by_serial, issuer = _five_hundred_signed_requests(sandbox, data_dir, ncas, tmp_path,
                                                                        f"http://127.0.0.1:{port}")
    with running_server(data_dir, workers=2, port=port) as url:
        results, elapsed, ocsp_answers = _send_all_while_polling_ocsp(url, requests_, certs[0], issuer)
        acknowledged = [(n, c, a) for n, c, s, a in results if s == 200]
        assert len(acknowledged) == 500, {s for _, _, s, _ in results}
        for nca_id, cert, answer in acknowledged:
            assert [int(r["serial"], 16) for r in answer["result"]["revoked"]] == [cert.serial_number]
            assert answer["result"]["nca_id"] == nca_id == by_serial[cert.serial_number]
        # every acknowledged revocation is visible in OCSP now, and in the next CRL
        for _, cert, _ in acknowledged[::10]:
            der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
            assert ocsp.load_der_ocsp_response(_http_post(url + "/ocsp", der, "application/ocsp-request")[1]).certificate_status \
                == ocsp.OCSPCertStatus.REVOKED
        crl_svc.regenerate_dirty(sandbox, utcnow() + dt.timedelta(seconds=5))
        crl = x509.load_der_x509_crl(_http_get(url + "/crl/qwac-ca.crl"))
        assert {c.serial_number for _, c, _ in acknowledged} <= {r.serial_number for r in crl}
        assert ocsp_answers > 0
    _check_the_store(data_dir, elapsed, ocsp_answers)


def _http_post(url: str, data: bytes, ctype: str) -> tuple[int, bytes]:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(urllib.request.Request(url, data=data, headers={"Content-Type": ctype}), timeout=30) as response:
        return response.status, response.read()


def _http_get(url: str) -> bytes:
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(url, timeout=30) as response:
        return response.read()
