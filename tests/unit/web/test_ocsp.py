"""The OCSP endpoint in process (Flask's test client), fuzzed: random and mutated requests always get an
OCSP answer (or a 4xx), never a 500, and the store never changes. (Against the running service, judged
by openssl and pkilint: tests/system/web/test_ocsp.py; stress/fuzz.py runs this one long.)"""

from __future__ import annotations

import base64
from pathlib import Path

from cryptography.x509 import ocsp
from hypothesis import HealthCheck, given, settings, strategies as st

from support.ocsp import request_der, store_counts


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=600), st.builds(lambda b: b"\x30\x82" + b, st.binary(max_size=300))),
       mutate=st.integers(0, 400))
def test_fuzz_ocsp_endpoint_never_fails(data_dir: Path, ocsp_files: dict[str, Path], body: bytes, mutate: int) -> None:
    """Random and mutated requests: always an OCSP answer (or 4xx), never a 500, store unchanged."""
    from qtsp.web import create_app

    client = _client_cache.setdefault(str(data_dir), create_app({"data_dir": data_dir}).test_client())
    real = bytearray(request_der(ocsp_files, "good"))
    real[mutate % len(real)] ^= 0xFF
    before = store_counts(data_dir)
    for payload in (body, bytes(real)):
        response = client.post("/ocsp", data=payload, content_type="application/ocsp-request")
        assert response.status_code in (200, 413), response.status_code
        if response.status_code == 200:
            ocsp.load_der_ocsp_response(response.data)
        get = client.get("/ocsp/" + base64.urlsafe_b64encode(payload).decode())
        assert get.status_code in (200, 414)
    assert store_counts(data_dir) == before


_client_cache: dict[str, object] = {}
