"""OCSP nonces as RFC 9654 2.1 says (it obsoletes RFC 8954): 1 to 128 octets accepted and echoed exactly,
an empty nonce or one over 128 octets refused with malformedRequest. Requests are built and answers read
by the cryptography package's OCSP code, not ours."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from support.ocsp import SHA1


def _request(files: dict[str, Path], nonce: bytes) -> bytes:
    leaf = x509.load_pem_x509_certificate(files["good"].read_bytes())
    ca = x509.load_pem_x509_certificate(files["issuer"].read_bytes())
    builder = ocsp.OCSPRequestBuilder().add_certificate(leaf, ca, SHA1).add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


@pytest.fixture
def client(data_dir: Path, ocsp_files: dict[str, Path]):  # type: ignore[no-untyped-def]
    from qtsp.web import create_app

    return create_app({"data_dir": data_dir}).test_client()


@pytest.mark.parametrize("size", [1, 16, 32, 33, 128])
def test_nonce_of_1_to_128_octets_is_echoed_exactly(client, ocsp_files: dict[str, Path], size: int) -> None:  # type: ignore[no-untyped-def]
    nonce = os.urandom(size)
    response = client.post("/ocsp", data=_request(ocsp_files, nonce), content_type="application/ocsp-request")
    assert response.status_code == 200
    answer = ocsp.load_der_ocsp_response(response.data)
    assert answer.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    assert answer.certificate_status is ocsp.OCSPCertStatus.GOOD
    assert answer.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == nonce
    assert "no-store" in response.headers["Cache-Control"]  # signed for this request only


@pytest.mark.parametrize("size", [0, 129, 200])
def test_empty_or_over_128_octet_nonce_is_malformed(client, ocsp_files: dict[str, Path], size: int) -> None:  # type: ignore[no-untyped-def]
    response = client.post("/ocsp", data=_request(ocsp_files, os.urandom(size)), content_type="application/ocsp-request")
    assert response.status_code == 200
    assert ocsp.load_der_ocsp_response(response.data).response_status is ocsp.OCSPResponseStatus.MALFORMED_REQUEST
