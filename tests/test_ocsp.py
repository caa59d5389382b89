"""OCSP against the running service, judged by `openssl ocsp` and pkilint; bad input; a fuzz test."""

from __future__ import annotations

import base64
import shutil
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import ocsp as aocsp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings, strategies as st

from qtsp.services import issuance, revocation
from qtsp.services.context import Sandbox

from support.server import running_server

ORG = "PSDBE-NBB-0123456789"
BIN = Path(sys.executable).parent


@pytest.fixture
def issued(sandbox: Sandbox, data_dir: Path) -> dict[str, Path]:
    """Two QWACs (one to revoke), the issuer and root as files openssl can read."""
    files = {"issuer": data_dir / "ca" / "qwac-ca.pem", "root": data_dir / "ca" / "root.pem",
             "seal_issuer": data_dir / "ca" / "qseal-ca.pem"}
    for name in ("good", "revoked"):
        cert = issuance.issue(sandbox, issuance.IssueRequest("qwac", ORG, domains=(f"{name}.example.com",),
                                                             generate_key="ecdsa-p256")).certificate
        files[name] = data_dir / f"{name}.pem"
        files[name].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    seal = issuance.issue(sandbox, issuance.IssueRequest("qsealc", ORG, generate_key="ecdsa-p256")).certificate
    files["seal"] = data_dir / "seal.pem"
    files["seal"].write_bytes(seal.public_bytes(serialization.Encoding.PEM))
    return files


def _openssl_ocsp(url: str, files: dict[str, Path], cert: str, *extra: str, issuer: str = "issuer") -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing: apt-get install openssl"
    return subprocess.run([openssl, "ocsp", "-issuer", str(files[issuer]), "-cert", str(files[cert]), "-url", url + "/ocsp",
                           "-CAfile", str(files["root"]), "-resp_text", *extra],
                          capture_output=True, text=True, timeout=60)


def _request_der(files: dict[str, Path], cert: str, algorithm: hashes.HashAlgorithm = hashes.SHA1(), issuer: str = "issuer") -> bytes:
    leaf = x509.load_pem_x509_certificate(files[cert].read_bytes())
    ca = x509.load_pem_x509_certificate(files[issuer].read_bytes())
    return ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, algorithm).build().public_bytes(serialization.Encoding.DER)


def _post(url: str, body: bytes, ctype: str = "application/ocsp-request") -> tuple[int, Any, bytes]:
    req = urllib.request.Request(url + "/ocsp", data=body, headers={"Content-Type": ctype}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def _get(url: str, path: str, headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url + path, headers=headers or {}), timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def test_openssl_sees_good_revoked_and_unknown(sandbox: Sandbox, data_dir: Path, issued: dict[str, Path]) -> None:
    serial = format(x509.load_pem_x509_certificate(issued["revoked"].read_bytes()).serial_number, "X")
    with running_server(data_dir, workers=2) as url:
        for nonce in ([], ["-no_nonce"]):
            good = _openssl_ocsp(url, issued, "good", *nonce)
            assert good.returncode == 0 and f"{issued['good']}: good" in good.stdout, good.stdout + good.stderr
            assert "Response verify OK" in good.stderr
            if not nonce:
                assert "WARNING: no nonce" not in good.stderr  # the nonce was echoed
        before = _openssl_ocsp(url, issued, "revoked", "-no_nonce")
        assert ": good" in before.stdout
        revocation.revoke(sandbox, serial, "key-compromise")
        # No wait: the re-signed response is committed and every worker's cache dropped before revoke returned.
        for extra in (["-no_nonce"], []):
            after = _openssl_ocsp(url, issued, "revoked", *extra)
            assert f"{issued['revoked']}: revoked" in after.stdout and "Reason: keyCompromise" in after.stdout, after.stdout
        seal = _openssl_ocsp(url, issued, "seal", issuer="seal_issuer")
        assert ": good" in seal.stdout and "Response verify OK" in seal.stderr
        # a serial never issued by a known CA: unknown, never good
        unknown = subprocess.run(["openssl", "ocsp", "-issuer", str(issued["issuer"]), "-serial", "0x1234567890ABCDEF1234",
                                  "-url", url + "/ocsp", "-CAfile", str(issued["root"])], capture_output=True, text=True, timeout=60)
        assert "0x1234567890ABCDEF1234: unknown" in unknown.stdout, unknown.stdout + unknown.stderr


def test_get_sha256_multi_and_caching_headers(data_dir: Path, issued: dict[str, Path]) -> None:
    with running_server(data_dir) as url:
        for algorithm in (hashes.SHA1(), hashes.SHA256()):
            der = _request_der(issued, "good", algorithm)
            status, headers, body = _get(url, "/ocsp/" + urllib.request.quote(base64.b64encode(der).decode(), safe=""))
            assert status == 200 and headers["Content-Type"] == "application/ocsp-response"
            response = ocsp.load_der_ocsp_response(body)
            assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
            assert response.hash_algorithm.name == algorithm.name
            assert "max-age=" in headers["Cache-Control"] and "public" in headers["Cache-Control"]
            assert all(headers.get(h) for h in ("ETag", "Last-Modified", "Expires"))
            window = response.next_update_utc - response.this_update_utc
            assert 8 * 3600 <= window.total_seconds() <= 10 * 86400  # BR 4.9.10
            # archiveCutoff on a qualified CA's response
            single = aocsp.OCSPResponse.load(body)["response_bytes"]["response"].parsed["tbs_response_data"]["responses"][0]
            assert [e["extn_id"].native for e in single["single_extensions"]] == ["archive_cutoff"]
            status, _, _ = _get(url, "/ocsp/" + base64.b64encode(der).decode(), {"If-None-Match": headers["ETag"]})
            assert status == 304
        # several CertIDs in one request: signed on demand, one SingleResponse each
        leaf_good = x509.load_pem_x509_certificate(issued["good"].read_bytes())
        leaf_rev = x509.load_pem_x509_certificate(issued["revoked"].read_bytes())
        ca = x509.load_pem_x509_certificate(issued["issuer"].read_bytes())
        req = aocsp.OCSPRequest.load(_request_der(issued, "good"))
        other = aocsp.OCSPRequest.load(_request_der(issued, "revoked"))
        req["tbs_request"]["request_list"].append(other["tbs_request"]["request_list"][0])
        status, headers, body = _post(url, aocsp.OCSPRequest({"tbs_request": req["tbs_request"]}).dump())
        parsed = ocsp.load_der_ocsp_response(body)
        assert status == 200 and parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        assert sorted(r.serial_number for r in parsed.responses) == sorted([leaf_good.serial_number, leaf_rev.serial_number])
        assert "no-store" in headers["Cache-Control"]
        del ca


def _status(body: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(body).response_status


def test_bad_requests_get_the_right_error(data_dir: Path, issued: dict[str, Path]) -> None:
    good = _request_der(issued, "good")
    foreign_ca = x509.load_pem_x509_certificate(issued["root"].read_bytes())  # root: we run no responder for it
    leaf = x509.load_pem_x509_certificate(issued["good"].read_bytes())
    foreign = ocsp.OCSPRequestBuilder().add_certificate(leaf, foreign_ca, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    md5ish = aocsp.OCSPRequest.load(good)
    md5ish["tbs_request"]["request_list"][0]["req_cert"]["hash_algorithm"] = {"algorithm": "md5"}
    md5_der = aocsp.OCSPRequest({"tbs_request": md5ish["tbs_request"]}).dump()
    many = aocsp.OCSPRequest.load(good)
    single = many["tbs_request"]["request_list"][0]
    huge_list = aocsp.OCSPRequest({"tbs_request": {"request_list": [single] * 100}}).dump()
    with running_server(data_dir) as url:
        before = _counts(data_dir)
        assert _status(_post(url, b"garbage")[2]) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert _status(_post(url, good[:-5])[2]) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert _status(_post(url, md5_der)[2]) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert _status(_post(url, huge_list)[2]) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST  # over the CertID bound
        assert _status(_post(url, foreign)[2]) == ocsp.OCSPResponseStatus.UNAUTHORIZED
        assert _post(url, good, "text/plain")[0] == 415
        assert _post(url, b"\x30" * 20_000)[0] == 413  # a million-entry list is refused by size first
        status, _, body = _get(url, "/ocsp/%%%not-base64!!")
        assert status == 200 and _status(body) == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        assert _get(url, "/ocsp/" + "A" * 30_000)[0] in (414, 400)  # gunicorn itself may refuse the request line
        req = urllib.request.Request(url + "/ocsp", method="PUT", data=b"x")
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(req, timeout=10)
        assert err.value.code == 405
        assert _counts(data_dir) == before


def _counts(data_dir: Path) -> tuple[int, ...]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return tuple(con.execute(f"select count(*) from {t}").fetchone()[0]
                     for t in ("certificates", "revocations", "ocsp_responses", "audit_events"))
    finally:
        con.close()


def test_pkilint_accepts_published_ocsp_responses(data_dir: Path, issued: dict[str, Path], tmp_path: Path) -> None:
    tool = BIN / "lint_ocsp_response"
    assert tool.exists(), "lint_ocsp_response missing: pip install pkilint"
    with running_server(data_dir) as url:
        for cert, algorithm in (("good", hashes.SHA1()), ("good", hashes.SHA256())):
            body = _post(url, _request_der(issued, cert, algorithm))[2]
            path = tmp_path / "resp.der"
            path.write_bytes(body)
            result = subprocess.run([str(tool), "lint", "-s", "ERROR", str(path)], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=600), st.builds(lambda b: b"\x30\x82" + b, st.binary(max_size=300))),
       mutate=st.integers(0, 400))
def test_fuzz_ocsp_endpoint_never_fails(data_dir: Path, issued: dict[str, Path], body: bytes, mutate: int) -> None:
    """Random and mutated requests: always an OCSP answer (or 4xx), never a 500, store unchanged."""
    from qtsp.web import create_app

    client = _client_cache.setdefault(str(data_dir), create_app({"data_dir": data_dir}).test_client())
    real = bytearray(_request_der(issued, "good"))
    real[mutate % len(real)] ^= 0xFF
    before = _counts(data_dir)
    for payload in (body, bytes(real)):
        response = client.post("/ocsp", data=payload, content_type="application/ocsp-request")
        assert response.status_code in (200, 413), response.status_code
        if response.status_code == 200:
            ocsp.load_der_ocsp_response(response.data)
        get = client.get("/ocsp/" + base64.urlsafe_b64encode(payload).decode())
        assert get.status_code in (200, 414)
    assert _counts(data_dir) == before


_client_cache: dict[str, object] = {}
