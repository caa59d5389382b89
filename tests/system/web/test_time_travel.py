"""Time travel in the service (issue 7, part 3): ``X-QTSP-Time`` against the running service.

A sandbox made ten days ago (its CAs and responders valid since then), with time_travel on; QWACs
recorded five days ago, one revoked three days ago and one revoked just now. Judged by
``openssl ocsp`` (``-header X-QTSP-Time=...``, verified with ``-attime``), ``openssl crl`` and
``openssl verify -crl_check -attime``. With time_travel off (the default) the header is refused.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import sqlite3
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from qtsp.clock import as_of
from qtsp.services import issuance, register, revocation, tokens
from qtsp.services.hierarchy import init_sandbox

from support.external import find_openssl, output, run_tool
from support.server import running_server

ORG = "PSDBE-NBB-0123456789"
HEADER = "X-QTSP-Time"
QTSP_ENV = ("QTSP_DATA_DIR", "QTSP_DATABASE_URL", "QTSP_KEY_PASSPHRASE")
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
UTC = dt.timezone.utc


def _whole(moment: dt.datetime) -> dt.datetime:
    return moment.replace(microsecond=0)


def _text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class World:
    data_dir: Path
    url: str
    now: dt.datetime  # when the fixture revoked "recent"
    files: dict[str, Path]
    certs: dict[str, x509.Certificate]

    def ago(self, **delta: float) -> dt.datetime:
        return _whole(self.now - dt.timedelta(**delta))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("time-travel")
    config_file = work / "qtsp-config.toml"
    config_file.write_text("time_travel = true\n")
    data_dir = work / "qtsp-data"
    now = dt.datetime.now(UTC)
    with pytest.MonkeyPatch.context() as mp:
        for name in QTSP_ENV:
            mp.delenv(name, raising=False)
        with as_of(now - dt.timedelta(days=10)):
            sandbox = init_sandbox(data_dir, config_file=config_file)
            register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                             country="BE", locality="Brussels", registration_number="0123.456.789")
        try:
            files = {"root": data_dir / "ca" / "root.pem", "qwac-ca": data_dir / "ca" / "qwac-ca.pem"}
            certs = {}
            with as_of(now - dt.timedelta(days=5)):
                for name in ("recent", "earlier", "kept"):
                    certs[name] = issuance.issue(sandbox, issuance.IssueRequest(
                        "qwac", ORG, domains=(f"{name}.example.com",), generate_key="ecdsa-p256")).certificate
                    files[name] = work / f"{name}.pem"
                    files[name].write_bytes(certs[name].public_bytes(serialization.Encoding.PEM))
            revocation.revoke(sandbox, format(certs["earlier"].serial_number, "X"), "key-compromise",
                              now=now - dt.timedelta(days=3))
            revocation.revoke(sandbox, format(certs["recent"].serial_number, "X"), "superseded")
            env = {k: v for k, v in os.environ.items() if k not in QTSP_ENV}
            with running_server(data_dir, env=env) as url:
                yield World(data_dir, url, now, files, certs)
        finally:
            sandbox.engine.dispose()


# --- helpers --------------------------------------------------------------------------------------


def http(url: str, *, data: bytes | None = None, method: str | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=20) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def openssl_ocsp_args(world: World, name: str, at: dt.datetime | None = None) -> list[str]:
    """``openssl ocsp`` asking as of ``at`` and verifying the answer (signature, responder chain) at ``at``."""
    extra = [] if at is None else ["-header", f"{HEADER}={_text(at)}", "-attime", str(int(at.timestamp()))]
    return [find_openssl(), "ocsp", "-issuer", str(world.files["qwac-ca"]), "-cert", str(world.files[name]),
            "-url", world.url + "/ocsp", "-CAfile", str(world.files["root"]), "-resp_text", *extra]


def openssl_ocsp(world: World, name: str, at: dt.datetime | None = None) -> subprocess.CompletedProcess[str]:
    return run_tool(openssl_ocsp_args(world, name, at))


def request_der(world: World, name: str, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        world.certs[name], x509.load_pem_x509_certificate(world.files["qwac-ca"].read_bytes()), hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def post_ocsp(world: World, der: bytes, at: str | None = None) -> tuple[int, Any, bytes]:
    headers = {"Content-Type": "application/ocsp-request"}
    if at is not None:
        headers[HEADER] = at
    return http(world.url + "/ocsp", data=der, headers=headers)


def crl_rows(data_dir: Path) -> int:
    with contextlib.closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        return int(db.execute("SELECT COUNT(*) FROM crls").fetchone()[0])


# --- OCSP as of another time -----------------------------------------------------------------------


def test_revoked_now_is_good_as_of_yesterday(world: World) -> None:
    now_says = openssl_ocsp(world, "recent")
    assert f"{world.files['recent']}: revoked" in output(now_says) and "Response verify OK" in output(now_says), output(now_says)

    yesterday = world.ago(days=1)
    result = openssl_ocsp(world, "recent", yesterday)
    out = output(result)
    assert result.returncode == 0 and f"{world.files['recent']}: good" in out and "Response verify OK" in out, out
    assert "WARNING" not in out, out
    assert f"This Update: {yesterday:%b %e %H:%M:%S %Y} GMT" in out, out
    print(f"openssl ocsp -header {HEADER}={_text(yesterday)} -attime ...: good, Response verify OK")
    # -attime is really applied: as of before the CAs existed, the responder cannot be verified.
    too_early = run_tool([*openssl_ocsp_args(world, "recent", yesterday)[:-2], "-attime",
                      str(int(world.ago(days=11).timestamp()))])
    assert "Response Verify Failure" in output(too_early) and "not yet valid" in output(too_early), output(too_early)

    # The raw answer: produced and valid from that time, echoed, never cacheable.
    status, headers, body = post_ocsp(world, request_der(world, "recent"), _text(yesterday))
    assert status == 200 and headers[HEADER] == _text(yesterday) and "no-store" in headers["Cache-Control"]
    assert headers.get("ETag") is None and headers.get("Expires") is None
    answer = ocsp.load_der_ocsp_response(body)
    assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert answer.produced_at_utc == yesterday and answer.this_update_utc == yesterday
    assert answer.next_update_utc == yesterday + dt.timedelta(hours=96)
    # A nonce is echoed as usual; GET works the same way.
    _, _, with_nonce = post_ocsp(world, request_der(world, "recent", b"t" * 16), _text(yesterday))
    assert ocsp.load_der_ocsp_response(with_nonce).extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"t" * 16
    encoded = urllib.request.quote(base64.b64encode(request_der(world, "recent")).decode(), safe="")
    status, headers, body = http(world.url + "/ocsp/" + encoded, headers={HEADER: _text(yesterday)})
    assert status == 200 and headers[HEADER] == _text(yesterday)
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.GOOD

    # And the present is untouched by the visit: revoked, from the pre-signed answer.
    status, headers, body = post_ocsp(world, request_der(world, "recent"))
    assert ocsp.load_der_ocsp_response(body).certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert "public" in headers["Cache-Control"] and HEADER not in headers


def test_ocsp_as_of_follows_the_record(world: World) -> None:
    def status_at(name: str, at: dt.datetime) -> ocsp.OCSPResponse:
        code, _, body = post_ocsp(world, request_der(world, name), _text(at))
        assert code == 200
        return ocsp.load_der_ocsp_response(body)

    # Before its row was recorded, a certificate is unknown (never good).
    assert status_at("kept", world.ago(days=6)).certificate_status == ocsp.OCSPCertStatus.UNKNOWN
    assert status_at("kept", world.ago(days=4)).certificate_status == ocsp.OCSPCertStatus.GOOD
    # Revoked three days ago: good the day before, revoked the day after, with its time and reason.
    assert status_at("earlier", world.ago(days=4)).certificate_status == ocsp.OCSPCertStatus.GOOD
    after = status_at("earlier", world.ago(days=2))
    assert after.certificate_status == ocsp.OCSPCertStatus.REVOKED
    assert after.revocation_reason == x509.ReasonFlags.key_compromise
    assert after.revocation_time_utc == world.ago(days=3)
    # In the future, what is revoked stays revoked.
    assert status_at("recent", world.ago(days=-30)).certificate_status == ocsp.OCSPCertStatus.REVOKED
    result = openssl_ocsp(world, "earlier", world.ago(days=4))
    assert f"{world.files['earlier']}: good" in output(result) and "Response verify OK" in output(result), output(result)


# --- CRLs as of another time -------------------------------------------------------------------------


def test_crl_as_of_a_past_time_lacks_later_revocations(world: World, tmp_path: Path) -> None:
    openssl = find_openssl()
    chain = tmp_path / "chain.pem"
    chain.write_bytes(world.files["root"].read_bytes() + world.files["qwac-ca"].read_bytes())
    stored = crl_rows(world.data_dir)

    def crl_at(at: dt.datetime | None) -> tuple[Any, x509.CertificateRevocationList, Path]:
        status, headers, body = http(world.url + "/crl/qwac-ca.crl", headers={} if at is None else {HEADER: _text(at)})
        assert status == 200, body
        path = tmp_path / f"crl-{'now' if at is None else int(at.timestamp())}.crl"
        path.write_bytes(body)
        return headers, x509.load_der_x509_crl(body), path

    serial = {name: cert.serial_number for name, cert in world.certs.items()}
    _, present, _ = crl_at(None)  # the real one (made and stored on demand now)
    assert {serial["recent"], serial["earlier"]} <= {r.serial_number for r in present}
    stored = crl_rows(world.data_dir)
    newest = present.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number

    two_days_ago = world.ago(days=2)
    headers, past, path = crl_at(two_days_ago)
    assert headers[HEADER] == _text(two_days_ago) and headers["Cache-Control"] == "no-store" and not headers.get("ETag")
    assert {r.serial_number for r in past} == {serial["earlier"]}  # "recent" was revoked after that
    assert past.last_update_utc == two_days_ago and past.next_update_utc == two_days_ago + dt.timedelta(days=7)
    assert past.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == newest
    with pytest.raises(x509.ExtensionNotFound):
        past.extensions.get_extension_for_class(x509.FreshestCRL)  # no delta to announce as of then
    assert crl_rows(world.data_dir) == stored  # built on the fly, never stored
    signed = run_tool([openssl, "crl", "-inform", "DER", "-in", str(path), "-CAfile", str(chain), "-noout"])
    assert "verify OK" in output(signed), output(signed)

    attime = ["-attime", str(int(two_days_ago.timestamp()))]
    for name, verdict in (("recent", "OK"), ("kept", "OK"), ("earlier", "certificate revoked")):
        result = run_tool([openssl, "verify", "-crl_check", *attime, "-CAfile", str(world.files["root"]), "-untrusted",
                       str(world.files["qwac-ca"]), "-CRLfile", str(path), str(world.files[name])])
        assert verdict in output(result) and (result.returncode == 0) == (verdict == "OK"), (name, output(result))
    print(f"openssl verify -crl_check -attime (as of {_text(two_days_ago)}): 'recent' OK, 'earlier' certificate revoked")

    _, older, _ = crl_at(world.ago(days=4))
    assert list(older) == []
    status, _, body = http(world.url + "/crl/qwac-ca-delta.crl", headers={HEADER: _text(two_days_ago)})
    assert status == 404 and json.loads(body)["status"] == 404


# --- the REST API as of another time --------------------------------------------------------------------


def _csr() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ignored")])
    return x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256()) \
        .public_bytes(serialization.Encoding.PEM).decode()


def test_api_issuance_as_of(world: World) -> None:
    from qtsp.services.context import open_sandbox

    sandbox = open_sandbox(world.data_dir)
    try:
        _, operator = tokens.create(sandbox, "time-traveller", "operator")
    finally:
        sandbox.engine.dispose()
    at = world.ago(days=2)
    body = json.dumps({"kind": "qwac", "org_id": ORG, "csr": _csr(), "domains": ["past.example.com"]}).encode()
    status, headers, raw = http(world.url + "/api/v1/certificates", data=body, method="POST", headers={
        "Authorization": f"Bearer {operator}", "Content-Type": "application/json", HEADER: _text(at)})
    assert status == 201, raw
    assert headers[HEADER] == _text(at) and headers["Cache-Control"] == "no-store"
    issued = json.loads(raw)
    not_before = dt.datetime.fromisoformat(issued["not_before"])
    assert abs((not_before - at).total_seconds()) < 120, (not_before, at)
    cert = x509.load_pem_x509_certificate(issued["certificate"].encode())
    assert abs((cert.not_valid_before_utc - at).total_seconds()) < 120
    # The same request without the header acts now.
    status, headers, raw = http(world.url + "/api/v1/certificates", data=body.replace(b"past.", b"present."), method="POST",
                                headers={"Authorization": f"Bearer {operator}", "Content-Type": "application/json"})
    assert status == 201 and HEADER not in headers
    assert abs((dt.datetime.fromisoformat(json.loads(raw)["not_before"]) - dt.datetime.now(UTC)).total_seconds()) < 120


# --- refused: when off, and when malformed ------------------------------------------------------------------


def test_header_refused_when_time_travel_is_off(data_dir: Path) -> None:
    """The default sandbox: time_travel = false. Never a silent "now"."""
    leaf_request = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        b"\0" * 20, b"\0" * 20, 1, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    with running_server(data_dir) as url:
        assert http(url + "/healthz")[0] == 200
        for path in ("/healthz", "/crl/qwac-ca.crl", "/ca/root.der", "/api/v1/certificates", "/api/v1/openapi.json"):
            status, headers, body = http(url + path, headers={HEADER: "2027-06-01T00:00Z"})
            assert status == 400 and headers["Content-Type"] == "application/problem+json", (path, status, body)
            assert "time_travel" in json.loads(body)["detail"] and HEADER not in headers
        for status, headers, body in (
                http(url + "/ocsp", data=leaf_request, headers={"Content-Type": "application/ocsp-request",
                                                                 HEADER: "2027-06-01T00:00Z"}),
                http(url + "/ocsp/" + base64.b64encode(leaf_request).decode(), headers={HEADER: "2027-06-01T00:00Z"})):
            assert status == 400 and headers["Content-Type"] == "text/plain" and b"time travel is off" in body, body
        assert http(url + "/ocsp", data=leaf_request, headers={"Content-Type": "application/ocsp-request"})[0] == 200


@pytest.mark.parametrize("value", ["yesterday", "2027-06-01T00:00", "2027-13-01T00:00Z", "", "9999-01-01T00:00Z"])
def test_malformed_header_is_refused(world: World, value: str) -> None:
    status, headers, body = http(world.url + "/healthz", headers={HEADER: value})
    assert status == 400 and headers["Content-Type"] == "application/problem+json", body
    assert HEADER in json.loads(body)["detail"]
    status, headers, body = post_ocsp(world, request_der(world, "kept"), value)
    assert status == 400 and headers["Content-Type"] == "text/plain" and body.startswith(HEADER.encode()), body


# --- a responder rotated since then --------------------------------------------------------------------


def test_answer_as_of_before_a_responder_rotation_is_signed_by_the_responder_of_then(tmp_path: Path) -> None:
    """The scheduler rotates responder keys (ocsp_key_rotation_days). An answer as of a time before the
    rotation must be signed by the responder certificate valid then: signed by the new one, whose
    notBefore is the rotation, ``openssl ocsp -attime <then>`` says "certificate is not yet valid"."""
    from qtsp.services import keys
    from qtsp.web import create_app

    config_file = tmp_path / "qtsp-config.toml"
    config_file.write_text("time_travel = true\n")
    data_dir = tmp_path / "qtsp-data"
    now = dt.datetime.now(UTC)
    with as_of(now - dt.timedelta(days=10)):
        sandbox = init_sandbox(data_dir, config_file=config_file)
        register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                         country="BE", locality="Brussels", registration_number="0123.456.789")
    try:
        with as_of(now - dt.timedelta(days=5)):
            leaf = issuance.issue(sandbox, issuance.IssueRequest(
                "qwac", ORG, domains=("rotated.example.com",), generate_key="ecdsa-p256")).certificate
        old = x509.load_der_x509_certificate(stored_responder(data_dir))
        keys.rotate_ocsp(sandbox, "qwac-ca", now - dt.timedelta(days=1), actor="test")
        new = x509.load_der_x509_certificate(stored_responder(data_dir))
        assert new.not_valid_before_utc > old.not_valid_before_utc and new.public_key() != old.public_key()

        files = {"root": data_dir / "ca" / "root.pem", "qwac-ca": data_dir / "ca" / "qwac-ca.pem",
                 "leaf": tmp_path / "leaf.pem"}
        files["leaf"].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        der = ocsp.OCSPRequestBuilder().add_certificate(
            leaf, x509.load_pem_x509_certificate(files["qwac-ca"].read_bytes()), hashes.SHA1()
        ).build().public_bytes(serialization.Encoding.DER)
        client = create_app({"data_dir": data_dir}).test_client()

        # Within the answers' 96 hours, so that openssl's own check of thisUpdate/nextUpdate (on the real
        # clock, whatever -attime says) passes too.
        for at, signer in ((world_ago(now, days=3), old), (world_ago(now, hours=12), new)):
            response = client.post("/ocsp", data=der, content_type="application/ocsp-request", headers={HEADER: _text(at)})
            assert response.status_code == 200 and response.headers[HEADER] == _text(at)
            answer = ocsp.load_der_ocsp_response(response.data)
            assert answer.certificate_status == ocsp.OCSPCertStatus.GOOD and answer.produced_at_utc == at
            assert answer.certificates == [signer], (at, answer.certificates[0].not_valid_before_utc)
            path = tmp_path / f"resp-{int(at.timestamp())}.der"
            path.write_bytes(response.data)
            result = run_tool([find_openssl(), "ocsp", "-respin", str(path), "-issuer", str(files["qwac-ca"]), "-cert",
                           str(files["leaf"]), "-CAfile", str(files["root"]), "-attime", str(int(at.timestamp()))])
            out = output(result)
            assert "Response verify OK" in out and f"{files['leaf']}: good" in out, (at, out)
            assert "not yet valid" not in out, out
        # Ahead, the current responder; before any responder of the CA existed, the current one too (a
        # fallback, never a refusal).
        for at in (world_ago(now, days=-2), world_ago(now, days=11)):
            response = client.post("/ocsp", data=der, content_type="application/ocsp-request", headers={HEADER: _text(at)})
            assert ocsp.load_der_ocsp_response(response.data).certificates == [new], at
    finally:
        sandbox.engine.dispose()


def world_ago(now: dt.datetime, **delta: float) -> dt.datetime:
    return _whole(now - dt.timedelta(**delta))


def stored_responder(data_dir: Path) -> bytes:
    with contextlib.closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        return bytes(db.execute("SELECT ocsp_responder_der FROM certificate_authorities WHERE id = 'qwac-ca'").fetchone()[0])
