"""CRLs over HTTP in process (Flask's test client): made on demand, served from the store with caching
headers and ETags, the delta and the ARL, unknown CAs a 404 problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from qtsp.clock import utcnow
from qtsp.core.ocsp import REASONS
from qtsp.services import crl as crl_svc
from qtsp.services.context import Sandbox
from support.crl import ca_cert, crl_records


@pytest.fixture
def client(data_dir: Path, sandbox: Sandbox):  # type: ignore[no-untyped-def]
    from qtsp.web import create_app

    app = create_app({"data_dir": data_dir})
    yield app.test_client()
    app.extensions["qtsp"].sandbox.engine.dispose()


def test_http_serves_the_crl_with_caching_headers(client, sandbox: Sandbox, data_dir: Path,  # type: ignore[no-untyped-def]
                                                   revoked: dict[str, x509.Certificate]) -> None:
    assert crl_records(sandbox, "qwac-ca") == []
    response = client.get("/crl/qwac-ca.crl")  # none yet: made on demand
    assert response.status_code == 200
    assert response.mimetype == "application/pkix-crl"
    crl = x509.load_der_x509_crl(response.data)
    assert crl.is_signature_valid(ca_cert(data_dir, "qwac-ca").public_key())  # type: ignore[arg-type]
    assert len(crl) == len(REASONS)
    assert [r.number for r in crl_records(sandbox, "qwac-ca")] == [1]

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
    assert len(crl_records(sandbox, "qwac-ca")) == 1

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
