"""Responder misbehaviours on demand (issue 7, part 2), against the running service: each OCSP and CRL
behaviour as relying parties see it.

Each behaviour is judged by parties we did not write: ``openssl ocsp`` / ``openssl crl`` /
``openssl verify`` and pyhanko-certvalidator in hard-fail mode. Also: an unaffected certificate or
CA still gets its pre-signed answer, clearing restores correct answers, behaviours survive a
restart, bad input (service, CLI, API) changes nothing, the API's roles, and /healthz.
"""

from __future__ import annotations

import base64
import datetime as dt
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import ocsp as aocsp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509 import ocsp

from qtsp.services import simulator
from qtsp.services.behaviours import STATUS_ONLY


from support.external import find_openssl, output, run_tool
from support.simulator import (Dep, assert_good, assert_presigned, http, openssl_ocsp, post_ocsp, pyhanko_validate, request_der,
                               stored_ocsp, stored_ocsp_responder)


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
    assert text in output(result) and result.returncode == code, output(result)
    if behaviour == "slow":
        assert elapsed >= 1.0 and "Response verify OK" in output(result), (elapsed, output(result))
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
    assert "No Status found" in output(openssl_ocsp(dep, "a"))
    assert "Responder Error: unauthorized (6)" in output(openssl_ocsp(dep, "b"))
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
    openssl = find_openssl()
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
        return run_tool([openssl, "crl", "-inform", "DER", "-in", str(path), "-CAfile", str(chain), "-noout"])

    def openssl_verify(path: Path) -> subprocess.CompletedProcess[str]:
        return run_tool([openssl, "verify", "-crl_check", "-CAfile", str(dep.files["root"]), "-untrusted",
                     str(dep.files["qwac-ca"]), "-CRLfile", str(path), str(dep.files["a"])])

    headers, path, real = fetch("real")
    assert headers.get("ETag") and "public" in headers["Cache-Control"]
    assert "verify OK" in output(openssl_crl(path)) and openssl_verify(path).returncode == 0
    ca_subject = x509.load_pem_x509_certificate(dep.files["qwac-ca"].read_bytes()).subject

    simulator.set_behaviour(dep.sandbox, "expired-crl", "qwac-ca", actor="test")
    headers, path, expired = fetch("expired")
    assert headers["Cache-Control"] == "no-store" and headers.get("ETag") is None
    assert expired.next_update_utc is not None and expired.next_update_utc < dt.datetime.now(dt.timezone.utc)
    signed = openssl_crl(path)
    assert signed.returncode == 0 and "verify OK" in output(signed), output(signed)  # the CA's own key signed it
    verdict = openssl_verify(path)
    assert verdict.returncode != 0 and "CRL has expired" in output(verdict), output(verdict)
    print("expired-crl: openssl verify says", next(line for line in output(verdict).splitlines() if "CRL has expired" in line))

    simulator.set_behaviour(dep.sandbox, "crl-wrong-key", "qwac-ca", actor="test")  # replaces expired-crl
    assert [b.behaviour for b in simulator.list_behaviours(dep.sandbox)] == ["crl-wrong-key"]
    headers, path, forged = fetch("forged")
    assert headers["Cache-Control"] == "no-store" and forged.issuer == ca_subject
    assert forged.next_update_utc is not None and forged.next_update_utc > dt.datetime.now(dt.timezone.utc)
    signed = openssl_crl(path)
    assert "verify failure" in output(signed) and "verify OK" not in output(signed), output(signed)  # (openssl 3.0 exits 0)
    verdict = openssl_verify(path)
    assert verdict.returncode != 0 and "CRL signature failure" in output(verdict), output(verdict)
    print("crl-wrong-key: openssl verify says", next(line for line in output(verdict).splitlines() if "signature" in line))

    # OCSP for the same CA is untouched, and so is the delta CRL.
    assert_presigned(dep, "a")
    status, headers, _ = http(dep.url + "/crl/qwac-ca-delta.crl")
    assert status == 200 and headers.get("ETag")

    simulator.clear(dep.sandbox, ca_id="qwac-ca", actor="test")
    headers, path, again = fetch("again")
    assert headers.get("ETag") and again.public_bytes(serialization.Encoding.DER) == real.public_bytes(serialization.Encoding.DER)
    assert "verify OK" in output(openssl_crl(path)) and openssl_verify(path).returncode == 0
