"""OCSP against the running service, judged by `openssl ocsp` and pkilint; bad input. (The fuzz test, in
process: tests/unit/web/test_ocsp.py.)"""

from __future__ import annotations

import base64
import shutil
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

from qtsp.services import revocation
from qtsp.services.context import Sandbox

from support.ocsp import request_der, store_counts
from support.server import running_server

BIN = Path(sys.executable).parent


def _openssl_ocsp(url: str, files: dict[str, Path], cert: str, *extra: str, issuer: str = "issuer") -> subprocess.CompletedProcess[str]:
    openssl = shutil.which("openssl")
    assert openssl, "openssl missing: apt-get install openssl"
    return subprocess.run([openssl, "ocsp", "-issuer", str(files[issuer]), "-cert", str(files[cert]), "-url", url + "/ocsp",
                           "-CAfile", str(files["root"]), "-resp_text", *extra],
                          capture_output=True, text=True, timeout=60)


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


def test_openssl_sees_good_revoked_and_unused(sandbox: Sandbox, data_dir: Path, ocsp_files: dict[str, Path]) -> None:
    serial = format(x509.load_pem_x509_certificate(ocsp_files["revoked"].read_bytes()).serial_number, "X")
    with running_server(data_dir, workers=2) as url:
        for nonce in ([], ["-no_nonce"]):
            good = _openssl_ocsp(url, ocsp_files, "good", *nonce)
            assert good.returncode == 0 and f"{ocsp_files['good']}: good" in good.stdout, good.stdout + good.stderr
            assert "Response verify OK" in good.stderr
            if not nonce:
                assert "WARNING: no nonce" not in good.stderr  # the nonce was echoed
        before = _openssl_ocsp(url, ocsp_files, "revoked", "-no_nonce")
        assert ": good" in before.stdout
        revocation.revoke(sandbox, serial, "key-compromise")
        # No wait: the re-signed response is committed and every worker's cache dropped before revoke returned.
        for extra in (["-no_nonce"], []):
            after = _openssl_ocsp(url, ocsp_files, "revoked", *extra)
            assert f"{ocsp_files['revoked']}: revoked" in after.stdout and "Reason: keyCompromise" in after.stdout, after.stdout
        seal = _openssl_ocsp(url, ocsp_files, "seal", issuer="seal_issuer")
        assert ": good" in seal.stdout and "Response verify OK" in seal.stderr
        # a serial this known CA never issued: the static unauthorized (BR 4.9.10: never good; issue 15)
        unused = subprocess.run(["openssl", "ocsp", "-issuer", str(ocsp_files["issuer"]), "-serial", "0x1234567890ABCDEF1234",
                                 "-url", url + "/ocsp", "-CAfile", str(ocsp_files["root"])], capture_output=True, text=True, timeout=60)
        assert "Responder Error: unauthorized (6)" in unused.stdout + unused.stderr, unused.stdout + unused.stderr
        assert ": good" not in unused.stdout


def test_get_sha256_multi_and_caching_headers(data_dir: Path, ocsp_files: dict[str, Path]) -> None:
    with running_server(data_dir) as url:
        for algorithm in (hashes.SHA1(), hashes.SHA256()):
            der = request_der(ocsp_files, "good", algorithm)
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
        leaf_good = x509.load_pem_x509_certificate(ocsp_files["good"].read_bytes())
        leaf_rev = x509.load_pem_x509_certificate(ocsp_files["revoked"].read_bytes())
        ca = x509.load_pem_x509_certificate(ocsp_files["issuer"].read_bytes())
        req = aocsp.OCSPRequest.load(request_der(ocsp_files, "good"))
        other = aocsp.OCSPRequest.load(request_der(ocsp_files, "revoked"))
        req["tbs_request"]["request_list"].append(other["tbs_request"]["request_list"][0])
        status, headers, body = _post(url, aocsp.OCSPRequest({"tbs_request": req["tbs_request"]}).dump())
        parsed = ocsp.load_der_ocsp_response(body)
        assert status == 200 and parsed.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL
        assert sorted(r.serial_number for r in parsed.responses) == sorted([leaf_good.serial_number, leaf_rev.serial_number])
        assert "no-store" in headers["Cache-Control"]
        del ca


def _status(body: bytes) -> ocsp.OCSPResponseStatus:
    return ocsp.load_der_ocsp_response(body).response_status


def test_bad_requests_get_the_right_error(data_dir: Path, ocsp_files: dict[str, Path]) -> None:
    good = request_der(ocsp_files, "good")
    foreign_ca = x509.load_pem_x509_certificate(ocsp_files["root"].read_bytes())  # root: we run no responder for it
    leaf = x509.load_pem_x509_certificate(ocsp_files["good"].read_bytes())
    foreign = ocsp.OCSPRequestBuilder().add_certificate(leaf, foreign_ca, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    md5ish = aocsp.OCSPRequest.load(good)
    md5ish["tbs_request"]["request_list"][0]["req_cert"]["hash_algorithm"] = {"algorithm": "md5"}
    md5_der = aocsp.OCSPRequest({"tbs_request": md5ish["tbs_request"]}).dump()
    many = aocsp.OCSPRequest.load(good)
    single = many["tbs_request"]["request_list"][0]
    huge_list = aocsp.OCSPRequest({"tbs_request": {"request_list": [single] * 100}}).dump()
    with running_server(data_dir) as url:
        before = store_counts(data_dir)
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
        assert store_counts(data_dir) == before


def test_pkilint_accepts_published_ocsp_responses(data_dir: Path, ocsp_files: dict[str, Path], tmp_path: Path) -> None:
    tool = BIN / "lint_ocsp_response"
    assert tool.exists(), "lint_ocsp_response missing: pip install pkilint"
    with running_server(data_dir) as url:
        for cert, algorithm in (("good", hashes.SHA1()), ("good", hashes.SHA256())):
            body = _post(url, request_der(ocsp_files, cert, algorithm))[2]
            path = tmp_path / "resp.der"
            path.write_bytes(body)
            result = subprocess.run([str(tool), "lint", "-s", "ERROR", str(path)], capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stdout + result.stderr
