"""Responder misbehaviours on demand (issue 7, part 2), against the running service.

Each behaviour is judged by parties we did not write: ``openssl ocsp`` / ``openssl crl`` /
``openssl verify`` and pyhanko-certvalidator in hard-fail mode. Also: an unaffected certificate or
CA still gets its pre-signed answer, clearing restores correct answers, behaviours survive a
restart, bad input (service, CLI, API) changes nothing, the API's roles, and /healthz.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import json
import shutil
import sqlite3
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
from asn1crypto import ocsp as aocsp
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtensionOID

from cli.main import cli
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.types import serial_hex
from qtsp.services import audit, issuance, register, simulator, tokens
from qtsp.services.behaviours import STATUS_ONLY
from qtsp.services.context import Sandbox
from qtsp.services.generation import Generation

from support.loopback import served_sandbox, server_env
from support.server import running_server

ORG = "PSDBE-NBB-0123456789"
TIMEOUT = 60
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


# --- the deployment: one sandbox whose URLs name the test server's port, served by two workers -----


@dataclass
class Dep:
    sandbox: Sandbox
    data_dir: Path
    url: str
    base: str
    files: dict[str, Path]
    certs: dict[str, x509.Certificate]

    def serial(self, name: str) -> str:
        return serial_hex(self.certs[name].serial_number)  # canonical: even length, as the store keeps it

    def local(self, public_url: str) -> str:
        assert public_url.startswith(self.base + "/"), public_url
        return self.url + public_url[len(self.base):]


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dep]:
    work = tmp_path_factory.mktemp("simulator")
    files: dict[str, Path] = {}
    certs: dict[str, x509.Certificate] = {}

    def issue(sandbox: Sandbox, data_dir: Path) -> None:
        register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                         country="BE", locality="Brussels", registration_number="0123.456.789")
        files.update({"root": data_dir / "ca" / "root.pem", "qwac-ca": data_dir / "ca" / "qwac-ca.pem",
                      "qseal-ca": data_dir / "ca" / "qseal-ca.pem"})
        for name, kind in (("a", "qwac"), ("b", "qwac"), ("seal", "qsealc")):
            domains = (f"{name}.example.com",) if kind == "qwac" else ()
            certs[name] = issuance.issue(sandbox, issuance.IssueRequest(kind, ORG, domains=domains,
                                                                        generate_key="ecdsa-p256")).certificate
            files[name] = work / f"{name}.pem"
            files[name].write_bytes(certs[name].public_bytes(serialization.Encoding.PEM))

    with served_sandbox(work, "simulator_max_delay_seconds = 3\n", workers=2, prepare=issue) as served:
        yield Dep(served.sandbox, served.data_dir, served.url, served.base, files, certs)


@pytest.fixture(autouse=True)
def _nothing_left_on(dep: Dep) -> Iterator[None]:
    yield
    simulator.clear(dep.sandbox, everything=True, actor="test")


# --- helpers ------------------------------------------------------------------------------------


def _openssl() -> str:
    path = shutil.which("openssl")
    assert path, "openssl missing: apt-get install openssl"
    return path


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=TIMEOUT)


def _issuer_of(name: str) -> str:
    return "qseal-ca" if name == "seal" else "qwac-ca"


def openssl_ocsp(dep: Dep, name: str, *extra: str, url: str | None = None) -> subprocess.CompletedProcess[str]:
    """``openssl ocsp`` as a relying party runs it (with a nonce unless -no_nonce)."""
    return _run([_openssl(), "ocsp", "-issuer", str(dep.files[_issuer_of(name)]), "-cert", str(dep.files[name]),
                 "-url", (url or dep.url) + "/ocsp", "-CAfile", str(dep.files["root"]), *extra])


def _out(result: subprocess.CompletedProcess[str]) -> str:
    return result.stdout + result.stderr


def assert_good(dep: Dep, name: str, url: str | None = None) -> None:
    result = openssl_ocsp(dep, name, url=url)
    out = _out(result)
    assert result.returncode == 0 and f"{dep.files[name]}: good" in out and "Response verify OK" in out, out
    assert "WARNING" not in out, out


def request_der(dep: Dep, name: str, *, nonce: bytes | None = None) -> bytes:
    builder = ocsp.OCSPRequestBuilder().add_certificate(
        dep.certs[name], x509.load_pem_x509_certificate(dep.files[_issuer_of(name)].read_bytes()), hashes.SHA1())
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def http(url: str, *, data: bytes | None = None, method: str | None = None, headers: dict[str, str] | None = None,
         timeout: float = 20) -> tuple[int, Any, bytes]:
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _NO_PROXY.open(request, timeout=timeout) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers, err.read()


def post_ocsp(dep: Dep, der: bytes) -> tuple[int, Any, bytes]:
    return http(dep.url + "/ocsp", data=der, headers={"Content-Type": "application/ocsp-request"})


def stored_ocsp(dep: Dep, name: str) -> bytes:
    """The pre-signed response (SHA-1 CertID) the store holds for a certificate."""
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        row = db.execute("SELECT der FROM ocsp_responses WHERE serial = ? AND hash_algorithm = 'sha1'",
                         (dep.serial(name),)).fetchone()
    return bytes(row[0])


def assert_presigned(dep: Dep, name: str) -> None:
    status, headers, body = post_ocsp(dep, request_der(dep, name))
    assert status == 200 and body == stored_ocsp(dep, name), "not the pre-signed answer"
    assert "public" in headers["Cache-Control"] and "max-age=" in headers["Cache-Control"], headers["Cache-Control"]


def store_state(dep: Dep) -> tuple[Any, ...]:
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        rows = db.execute("SELECT id, issuer_id, target, scope, behaviour, delay_ms FROM responder_behaviours "
                          "ORDER BY id").fetchall()
        head = db.execute("SELECT seq, hash FROM audit_head").fetchall()
    return tuple(rows), tuple(head), Generation(dep.data_dir).value()


# --- OCSP behaviours, one certificate at a time ----------------------------------------------------

# behaviour -> (what `openssl ocsp` says, its exit code)
OPENSSL_VERDICTS = {
    "try-later": ("Responder Error: trylater (3)", 1),
    "internal-error": ("Responder Error: internalerror (2)", 1),
    "unauthorized": ("Responder Error: unauthorized (6)", 1),
    "wrong-key": ("Response Verify Failure", 1),
    "stale": ("WARNING: Status times invalid", 0),  # openssl only warns; the status must not be trusted
    "wrong-serial": ("ERROR: No Status found", 1),
    "no-nonce": ("WARNING: no nonce in response", 0),
    "slow": (": good", 0),
}


def _check_body(dep: Dep, behaviour: str, body: bytes, nonce_body: bytes) -> None:
    """What the raw answers say, read with cryptography."""
    if behaviour in STATUS_ONLY:
        expected = {"try-later": ocsp.OCSPResponseStatus.TRY_LATER, "internal-error": ocsp.OCSPResponseStatus.INTERNAL_ERROR,
                    "unauthorized": ocsp.OCSPResponseStatus.UNAUTHORIZED}[behaviour]
        assert ocsp.load_der_ocsp_response(body).response_status == expected
        return
    response = ocsp.load_der_ocsp_response(body)
    now = dt.datetime.now(dt.timezone.utc)
    if behaviour == "stale":
        assert response.next_update_utc is not None and response.next_update_utc < now
        assert response.this_update_utc < response.next_update_utc
    elif behaviour == "wrong-serial":
        assert response.serial_number == dep.certs["a"].serial_number + 1
        assert response.certificate_status == ocsp.OCSPCertStatus.GOOD
    elif behaviour == "wrong-key":
        real = x509.load_der_x509_certificate(
            stored_ocsp_responder(dep))  # what the CA authorised
        fake = response.certificates[0]
        assert fake.subject == real.subject and fake.issuer == fake.subject and fake != real
        assert fake.public_key() != real.public_key()
    elif behaviour == "no-nonce":
        with pytest.raises(x509.ExtensionNotFound):
            ocsp.load_der_ocsp_response(nonce_body).extensions.get_extension_for_class(x509.OCSPNonce)
    if behaviour != "no-nonce":  # everything else still echoes a nonce it was sent
        nonce = ocsp.load_der_ocsp_response(nonce_body).extensions.get_extension_for_class(x509.OCSPNonce)
        assert nonce.value.nonce == b"n" * 16


def stored_ocsp_responder(dep: Dep) -> bytes:
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        return bytes(db.execute("SELECT ocsp_responder_der FROM certificate_authorities WHERE id = 'qwac-ca'").fetchone()[0])


@pytest.mark.parametrize("behaviour", list(OPENSSL_VERDICTS))
def test_ocsp_behaviour_on_one_certificate(dep: Dep, behaviour: str) -> None:
    assert_good(dep, "a")
    before = stored_ocsp(dep, "a")
    delay = 1.0 if behaviour == "slow" else None
    simulator.set_behaviour(dep.sandbox, behaviour, "qwac-ca", serial=dep.serial("a"), delay_seconds=delay, actor="test")

    started = time.monotonic()
    result = openssl_ocsp(dep, "a")
    elapsed = time.monotonic() - started
    text, code = OPENSSL_VERDICTS[behaviour]
    assert text in _out(result) and result.returncode == code, _out(result)
    if behaviour == "slow":
        assert elapsed >= 1.0 and "Response verify OK" in _out(result), (elapsed, _out(result))
    print(f"{behaviour}: openssl ocsp says {text!r}")

    # Never cached, never the pre-signed answer: POST and GET, with and without a nonce.
    status, headers, body = post_ocsp(dep, request_der(dep, "a"))
    assert status == 200 and "no-store" in headers["Cache-Control"] and body != before
    assert headers.get("ETag") is None
    _, _, nonce_body = post_ocsp(dep, request_der(dep, "a", nonce=b"n" * 16))
    _check_body(dep, behaviour, body, nonce_body)
    status, headers, got = http(dep.url + "/ocsp/" + urllib.request.quote(base64.b64encode(request_der(dep, "a")).decode(), safe=""))
    assert status == 200 and "no-store" in headers["Cache-Control"] and got != before

    # The certificate next to it, same CA: correct, and still the pre-signed answer.
    assert_good(dep, "b")
    assert_presigned(dep, "b")

    simulator.clear(dep.sandbox, ca_id="qwac-ca", serial=dep.serial("a"), actor="test")
    assert_good(dep, "a")
    assert_presigned(dep, "a")


def test_a_certificates_own_behaviour_beats_its_cas(dep: Dep) -> None:
    simulator.set_behaviour(dep.sandbox, "unauthorized", "qwac-ca", actor="test")
    simulator.set_behaviour(dep.sandbox, "wrong-serial", "qwac-ca", serial=dep.serial("a"), actor="test")
    assert "No Status found" in _out(openssl_ocsp(dep, "a"))
    assert "Responder Error: unauthorized (6)" in _out(openssl_ocsp(dep, "b"))
    assert_good(dep, "seal")  # another CA is untouched, and served from its pre-signed answers
    assert_presigned(dep, "seal")
    # Several certificates in one request: the per-certificate behaviour decides.
    both = aocsp.OCSPRequest.load(request_der(dep, "b"))
    both["tbs_request"]["request_list"].append(aocsp.OCSPRequest.load(request_der(dep, "a"))["tbs_request"]["request_list"][0])
    both = aocsp.OCSPRequest({"tbs_request": both["tbs_request"]}).dump()
    parsed = ocsp.load_der_ocsp_response(post_ocsp(dep, both)[2])
    assert {r.serial_number for r in parsed.responses} == {dep.certs["b"].serial_number + 1, dep.certs["a"].serial_number + 1}

    simulator.clear(dep.sandbox, ca_id="qwac-ca", actor="test")
    assert simulator.list_behaviours(dep.sandbox) == []
    assert_good(dep, "a")
    assert_good(dep, "b")


# --- pyhanko-certvalidator, hard-fail ---------------------------------------------------------------


def _deltas(dep: Dep, *certs: x509.Certificate) -> list[bytes]:
    """The delta CRLs the complete CRLs announce (pyhanko looks for them only in the certificate)."""
    out = []
    for cert in certs:
        points = cert.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
        complete = x509.load_der_x509_crl(http(dep.local(points[0].full_name[0].value))[2])
        with contextlib.suppress(x509.ExtensionNotFound):
            for point in complete.extensions.get_extension_for_class(x509.FreshestCRL).value:
                out.append(http(dep.local(point.full_name[0].value))[2])
    return out


def pyhanko_validate(dep: Dep, name: str, leaf_rule: str) -> Any:
    """Validate with revocation required for the leaf by ``leaf_rule`` (ocsp or crl) and by CRL for
    the issuing CA; raises pyhanko's error when the revocation information is not acceptable."""
    from asn1crypto import x509 as ax
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend
    from pyhanko_certvalidator.policy_decl import CertRevTrustPolicy, RevocationCheckingPolicy, RevocationCheckingRule

    def load(cert: x509.Certificate) -> ax.Certificate:
        return ax.Certificate.load(cert.public_bytes(serialization.Encoding.DER))

    issuing = x509.load_pem_x509_certificate(dep.files["qwac-ca"].read_bytes())
    root = x509.load_pem_x509_certificate(dep.files["root"].read_bytes())
    rule = {"ocsp": RevocationCheckingRule.OCSP_REQUIRED, "crl": RevocationCheckingRule.CRL_REQUIRED}[leaf_rule]
    context = ValidationContext(
        trust_roots=[load(root)], other_certs=[load(issuing)], allow_fetching=True, crls=_deltas(dep, dep.certs[name], issuing),
        revinfo_policy=CertRevTrustPolicy(RevocationCheckingPolicy(rule, RevocationCheckingRule.CRL_REQUIRED)),
        fetcher_backend=RequestsFetcherBackend(per_request_timeout=10))
    validator = CertificateValidator(load(dep.certs[name]), validation_context=context)
    return asyncio.run(validator.async_validate_usage({"digital_signature"}))


PYHANKO_VERDICTS = [  # behaviour, revocation source the leaf must have, what pyhanko-certvalidator says
    ("try-later", "ocsp", "Status was 'try_later'"),
    ("wrong-key", "ocsp", "response signing certificate could not be validated"),
    ("stale", "ocsp", "OCSP response is not recent enough"),
    ("wrong-serial", "ocsp", "serial number does not match"),
    ("expired-crl", "crl", "CRL is not recent enough"),
    ("crl-wrong-key", "crl", "CRL signature could not be verified"),
]


@pytest.mark.parametrize("behaviour, leaf_rule, reason", PYHANKO_VERDICTS, ids=[v[0] for v in PYHANKO_VERDICTS])
def test_pyhanko_certvalidator_hard_fails(dep: Dep, loopback_dns: list[str], behaviour: str, leaf_rule: str, reason: str) -> None:
    from pyhanko_certvalidator.errors import PathValidationError

    pyhanko_validate(dep, "a", leaf_rule)  # passes before
    serial = dep.serial("a") if leaf_rule == "ocsp" else None
    simulator.set_behaviour(dep.sandbox, behaviour, "qwac-ca", serial=serial, actor="test")
    with pytest.raises(PathValidationError) as err:
        pyhanko_validate(dep, "a", leaf_rule)
    assert reason in str(err.value), str(err.value)
    print(f"{behaviour}: pyhanko-certvalidator: {str(err.value)[:200]}")
    simulator.clear(dep.sandbox, everything=True, actor="test")
    pyhanko_validate(dep, "a", leaf_rule)  # and passes again


# --- CRL behaviours -----------------------------------------------------------------------------------


def test_crl_behaviours_judged_by_openssl(dep: Dep, tmp_path: Path) -> None:
    openssl = _openssl()
    chain = tmp_path / "chain.pem"
    chain.write_bytes(dep.files["root"].read_bytes() + dep.files["qwac-ca"].read_bytes())
    crl_url = dep.url + "/crl/qwac-ca.crl"

    def fetch(label: str) -> tuple[Any, Path, x509.CertificateRevocationList]:
        status, headers, body = http(crl_url)
        assert status == 200 and headers["Content-Type"] == "application/pkix-crl"
        path = tmp_path / f"{label}.crl"
        path.write_bytes(body)
        return headers, path, x509.load_der_x509_crl(body)

    def openssl_crl(path: Path) -> subprocess.CompletedProcess[str]:
        return _run([openssl, "crl", "-inform", "DER", "-in", str(path), "-CAfile", str(chain), "-noout"])

    def openssl_verify(path: Path) -> subprocess.CompletedProcess[str]:
        return _run([openssl, "verify", "-crl_check", "-CAfile", str(dep.files["root"]), "-untrusted",
                     str(dep.files["qwac-ca"]), "-CRLfile", str(path), str(dep.files["a"])])

    headers, path, real = fetch("real")
    assert headers.get("ETag") and "public" in headers["Cache-Control"]
    assert "verify OK" in _out(openssl_crl(path)) and openssl_verify(path).returncode == 0
    ca_subject = x509.load_pem_x509_certificate(dep.files["qwac-ca"].read_bytes()).subject

    simulator.set_behaviour(dep.sandbox, "expired-crl", "qwac-ca", actor="test")
    headers, path, expired = fetch("expired")
    assert headers["Cache-Control"] == "no-store" and headers.get("ETag") is None
    assert expired.next_update_utc is not None and expired.next_update_utc < dt.datetime.now(dt.timezone.utc)
    signed = openssl_crl(path)
    assert signed.returncode == 0 and "verify OK" in _out(signed), _out(signed)  # the CA's own key signed it
    verdict = openssl_verify(path)
    assert verdict.returncode != 0 and "CRL has expired" in _out(verdict), _out(verdict)
    print("expired-crl: openssl verify says", next(line for line in _out(verdict).splitlines() if "CRL has expired" in line))

    simulator.set_behaviour(dep.sandbox, "crl-wrong-key", "qwac-ca", actor="test")  # replaces expired-crl
    assert [b.behaviour for b in simulator.list_behaviours(dep.sandbox)] == ["crl-wrong-key"]
    headers, path, forged = fetch("forged")
    assert headers["Cache-Control"] == "no-store" and forged.issuer == ca_subject
    assert forged.next_update_utc is not None and forged.next_update_utc > dt.datetime.now(dt.timezone.utc)
    signed = openssl_crl(path)
    assert "verify failure" in _out(signed) and "verify OK" not in _out(signed), _out(signed)  # (openssl 3.0 exits 0)
    verdict = openssl_verify(path)
    assert verdict.returncode != 0 and "CRL signature failure" in _out(verdict), _out(verdict)
    print("crl-wrong-key: openssl verify says", next(line for line in _out(verdict).splitlines() if "signature" in line))

    # OCSP for the same CA is untouched, and so is the delta CRL.
    assert_presigned(dep, "a")
    status, headers, _ = http(dep.url + "/crl/qwac-ca-delta.crl")
    assert status == 200 and headers.get("ETag")

    simulator.clear(dep.sandbox, ca_id="qwac-ca", actor="test")
    headers, path, again = fetch("again")
    assert headers.get("ETag") and again.public_bytes(serialization.Encoding.DER) == real.public_bytes(serialization.Encoding.DER)
    assert "verify OK" in _out(openssl_crl(path)) and openssl_verify(path).returncode == 0


# --- stored: a restart keeps them; the audit log and every worker see each change ---------------------


def test_behaviours_survive_a_restart(dep: Dep) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["scenarios", "responder", "set", "try-later", "--ca", "qwac-ca", "--serial",
                                 dep.serial("a"), "--data-dir", str(dep.data_dir), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["behaviour"] == "try-later"
    env = server_env()
    for _ in range(2):  # a process that never saw the change, twice
        with running_server(dep.data_dir, env=env) as other:
            assert "Responder Error: trylater (3)" in _out(openssl_ocsp(dep, "a", url=other))
            assert_good(dep, "b", url=other)
    result = runner.invoke(cli, ["scenarios", "responder", "clear", "--ca", "qwac-ca", "--serial", dep.serial("a"),
                                 "--data-dir", str(dep.data_dir)])
    assert result.exit_code == 0 and "cleared try-later" in result.output, result.output
    assert_good(dep, "a")


def test_changes_are_audited_and_told_to_every_worker(dep: Dep) -> None:
    generation = Generation(dep.data_dir)
    start = generation.value()
    first = simulator.set_behaviour(dep.sandbox, "stale", "qwac-ca", actor="test-actor")
    assert generation.value() == start + 1
    second = simulator.set_behaviour(dep.sandbox, "slow", "qwac-ca", delay_seconds=0.25, actor="test-actor")
    assert second.id == first.id and second.delay_ms == 250  # replaced, not added
    simulator.set_behaviour(dep.sandbox, "expired-crl", "qwac-ca", actor="test-actor")
    assert len(simulator.list_behaviours(dep.sandbox)) == 2
    assert simulator.clear(dep.sandbox, ca_id="qseal-ca", actor="test-actor") == []  # nothing there: no event, no bump
    assert generation.value() == start + 3
    removed = simulator.clear(dep.sandbox, everything=True, actor="test-actor")
    assert sorted(b.behaviour for b in removed) == ["expired-crl", "slow"] and generation.value() == start + 4
    with contextlib.closing(sqlite3.connect(dep.data_dir / "qtsp.db")) as db:
        events = db.execute("SELECT action, subject, details FROM audit_events WHERE actor = 'test-actor' ORDER BY seq").fetchall()
    assert [e[0] for e in events] == ["simulator.behaviour.set"] * 3 + ["simulator.behaviour.clear"] * 2
    assert json.loads(events[1][2])["replaced"] == "stale" and json.loads(events[1][2])["delay_ms"] == 250
    count, problem = audit.verify(dep.sandbox)
    assert problem is None and count > 0
    # Two workers: with two workers every request below lands on one or the other; all see the change.
    simulator.set_behaviour(dep.sandbox, "try-later", "qwac-ca", serial=dep.serial("a"), actor="test")
    for _ in range(6):
        assert "trylater" in _out(openssl_ocsp(dep, "a"))
    simulator.clear(dep.sandbox, everything=True, actor="test")
    for _ in range(6):
        assert_good(dep, "a")


# --- bad input changes nothing: service, CLI -------------------------------------------------------------

BAD = [  # why, set_behaviour kwargs, error kind, CLI args (None: not reachable from the CLI)
    ("unknown behaviour", {"behaviour": "flaky", "ca_id": "qwac-ca"}, Kind.MALFORMED, ["flaky", "--ca", "qwac-ca"]),
    ("unknown CA", {"behaviour": "stale", "ca_id": "no-such-ca"}, Kind.NOT_FOUND, ["stale", "--ca", "no-such-ca"]),
    ("malformed CA", {"behaviour": "stale", "ca_id": "QWAC CA"}, Kind.MALFORMED, ["stale", "--ca", "QWAC CA"]),
    ("serial of another CA", {"behaviour": "stale", "ca_id": "qwac-ca", "serial": "seal"}, Kind.NOT_FOUND,
     ["stale", "--ca", "qwac-ca", "--serial", "seal"]),
    ("never issued", {"behaviour": "stale", "ca_id": "qwac-ca", "serial": "0x1234"}, Kind.NOT_FOUND,
     ["stale", "--ca", "qwac-ca", "--serial", "0x1234"]),
    ("not a serial", {"behaviour": "stale", "ca_id": "qwac-ca", "serial": "xyz"}, Kind.MALFORMED,
     ["stale", "--ca", "qwac-ca", "--serial", "xyz"]),
    ("CRL per serial", {"behaviour": "expired-crl", "ca_id": "qwac-ca", "serial": "a"}, Kind.MALFORMED,
     ["expired-crl", "--ca", "qwac-ca", "--serial", "a"]),
    ("delay over the limit", {"behaviour": "slow", "ca_id": "qwac-ca", "delay_seconds": 3.5}, Kind.POLICY,
     ["slow", "--ca", "qwac-ca", "--delay", "3.5"]),
    ("negative delay", {"behaviour": "slow", "ca_id": "qwac-ca", "delay_seconds": -1}, Kind.POLICY,
     ["slow", "--ca", "qwac-ca", "--delay", "-1"]),
    ("infinite delay", {"behaviour": "slow", "ca_id": "qwac-ca", "delay_seconds": float("inf")}, Kind.MALFORMED,
     ["slow", "--ca", "qwac-ca", "--delay", "inf"]),
    ("slow without delay", {"behaviour": "slow", "ca_id": "qwac-ca"}, Kind.MALFORMED, ["slow", "--ca", "qwac-ca"]),
    ("delay on another", {"behaviour": "stale", "ca_id": "qwac-ca", "delay_seconds": 1}, Kind.MALFORMED,
     ["stale", "--ca", "qwac-ca", "--delay", "1"]),
    ("OCSP for the root", {"behaviour": "stale", "ca_id": "root"}, Kind.POLICY, ["stale", "--ca", "root"]),
    ("target disagrees", {"behaviour": "stale", "ca_id": "qwac-ca", "target": "crl"}, Kind.MALFORMED, None),
]


@pytest.mark.parametrize("why, kwargs, kind, args", BAD, ids=[b[0] for b in BAD])
def test_bad_input_changes_nothing(dep: Dep, why: str, kwargs: dict[str, Any], kind: Kind, args: list[str] | None) -> None:
    names = {"a": dep.serial("a"), "seal": dep.serial("seal")}
    kwargs = {k: names.get(v, v) if k == "serial" else v for k, v in kwargs.items()}
    simulator.set_behaviour(dep.sandbox, "no-nonce", "qwac-ca", serial=dep.serial("b"), actor="test")  # something there
    before = store_state(dep)
    with pytest.raises(QTSPError) as err:
        simulator.set_behaviour(dep.sandbox, kwargs.pop("behaviour"), kwargs.pop("ca_id"), actor="test", **kwargs)
    assert err.value.kind is kind, err.value
    if args is not None:
        args = [names.get(a, a) for a in args]
        result = CliRunner().invoke(cli, ["scenarios", "responder", "set", *args, "--data-dir", str(dep.data_dir)])
        assert result.exit_code == err.value.exit_code, result.output
        assert result.output.startswith("error: "), result.output
    assert store_state(dep) == before


@pytest.mark.parametrize("args, code", [
    ([], 2), (["--all", "--ca", "qwac-ca"], 2), (["--serial", "AB"], 2), (["--ca", "no-such-ca"], 4),
    (["--ca", "qwac-ca", "--serial", "0x1234"], 4), (["--ca", "qwac-ca", "--serial", "zz"], 2),
])
def test_bad_clear_changes_nothing(dep: Dep, args: list[str], code: int) -> None:
    simulator.set_behaviour(dep.sandbox, "no-nonce", "qwac-ca", serial=dep.serial("b"), actor="test")
    before = store_state(dep)
    result = CliRunner().invoke(cli, ["scenarios", "responder", "clear", *args, "--data-dir", str(dep.data_dir), "--json"])
    assert result.exit_code == code, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["error"]
    assert store_state(dep) == before


def test_cli_set_list_clear(dep: Dep) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(dep.data_dir)]
    result = runner.invoke(cli, ["scenarios", "responder", "list", *base])
    assert result.exit_code == 0 and "(none)" in result.output
    result = runner.invoke(cli, ["scenarios", "responder", "set", "slow", "--ca", "qwac-ca", "--delay", "0.5", *base])
    assert result.exit_code == 0 and "set slow (0.5 s) on qwac-ca (OCSP)" in result.output, result.output
    runner.invoke(cli, ["scenarios", "responder", "set", "crl-wrong-key", "--ca", "qseal-ca", *base])
    listed = json.loads(runner.invoke(cli, ["scenarios", "responder", "list", "--json", *base]).output)
    assert [(b["ca"], b["target"], b["serial"], b["behaviour"], b["delay_seconds"], b["created_by"]) for b in listed] == [
        ("qwac-ca", "ocsp", None, "slow", 0.5, "cli"), ("qseal-ca", "crl", None, "crl-wrong-key", None, "cli")]
    text = runner.invoke(cli, ["scenarios", "responder", "list", *base]).output
    assert "slow" in text and "0.5 s" in text and "crl-wrong-key" in text
    result = runner.invoke(cli, ["scenarios", "responder", "clear", "--all", *base])
    assert result.exit_code == 0 and result.output.count("cleared") == 2
    assert runner.invoke(cli, ["scenarios", "responder", "clear", "--all", *base]).output.strip() == "nothing to clear"


# --- the API and /healthz -------------------------------------------------------------------------------


def test_api_roles_and_refusals(dep: Dep) -> None:
    _, operator = tokens.create(dep.sandbox, "sim-ops", "operator", actor="test")
    _, auditor = tokens.create(dep.sandbox, "sim-audit", "auditor", actor="test")
    api = dep.url + "/api/v1/simulator/behaviours"

    def call(method: str, url: str, who: str | None, body: Any = None, ctype: str = "application/json") -> tuple[int, Any]:
        headers = {} if who is None else {"Authorization": f"Bearer {who}"}
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers["Content-Type"] = ctype
        status, response_headers, raw = http(url, data=data, method=method, headers=headers)
        if status >= 400:
            assert response_headers["Content-Type"] == "application/problem+json", raw
        return status, json.loads(raw)

    assert call("GET", api, None)[0] == 401
    assert call("GET", api, auditor) == (200, {"behaviours": [], "time_travel": False, "total": 0, "limit": 100,
                                               "offset": 0, "next_offset": None, "next": None})
    wanted = {"ca": "qwac-ca", "serial": dep.serial("a").lower(), "behaviour": "try-later"}
    before = store_state(dep)
    assert call("PUT", api, auditor, wanted)[0] == 403
    assert call("PUT", api, None, wanted)[0] == 401
    refusals = [  # body, status
        ({**wanted, "colour": "red"}, 400), ({"ca": "qwac-ca"}, 400), ({**wanted, "behaviour": "flaky"}, 400),
        ({**wanted, "ca": "nope"}, 404), ({**wanted, "serial": "0x1234"}, 404), ({**wanted, "target": "crl"}, 400),
        ({"ca": "qwac-ca", "behaviour": "slow", "delay_seconds": 1000}, 422),
        ({"ca": "qwac-ca", "behaviour": "slow", "delay_seconds": True}, 400),
        ({"ca": "root", "behaviour": "stale"}, 422), ({"ca": "qwac-ca", "behaviour": "expired-crl", "serial": "AB"}, 400),
        (b'{"ca": "qwac-ca", "ca": "qseal-ca", "behaviour": "stale"}', 400), (b"[1, 2", 400), (b'"stale"', 400),
    ]
    for body, expected in refusals:
        status, problem = call("PUT", api, operator, body)
        assert status == expected, (body, status, problem)
    assert call("PUT", api, operator, wanted, ctype="text/plain")[0] == 415
    assert store_state(dep) == before

    status, made = call("PUT", api, operator, wanted)
    assert status == 200 and made["serial"] == dep.serial("a") and made["target"] == "ocsp"
    assert made["created_by"].startswith("api-token:") and made["created_by"].endswith(":sim-ops")
    assert "trylater" in _out(openssl_ocsp(dep, "a"))
    status, listed = call("GET", api, auditor)
    assert status == 200 and listed["behaviours"] == [made]

    assert call("DELETE", f"{api}/{made['id']}", auditor)[0] == 403
    assert call("DELETE", f"{api}/abc", operator)[0] == 400
    assert call("DELETE", f"{api}/99999999999", operator)[0] == 400
    assert call("DELETE", f"{api}/{made['id']}", operator) == (200, made)
    assert call("DELETE", f"{api}/{made['id']}", operator)[0] == 404
    assert_good(dep, "a")


def test_healthz_shows_the_simulator(dep: Dep) -> None:
    def health() -> dict[str, Any]:
        status, _, body = http(dep.url + "/healthz")
        assert status == 200
        return json.loads(body)  # type: ignore[no-any-return]

    assert health()["simulator"] == {"time_travel": False, "behaviours": []}
    made = simulator.set_behaviour(dep.sandbox, "slow", "qwac-ca", serial=dep.serial("b"), delay_seconds=0.5, actor="test")
    assert health()["simulator"]["behaviours"] == [{"id": made.id, "ca": "qwac-ca", "target": "ocsp",
                                                    "serial": dep.serial("b"), "behaviour": "slow", "delay_seconds": 0.5}]
    simulator.clear(dep.sandbox, everything=True, actor="test")
    assert health()["simulator"]["behaviours"] == []
