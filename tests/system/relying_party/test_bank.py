"""The demo bank over mutual TLS: the TPP client, the verifier middleware and the negative catalogue.

One sandbox serves OCSP, CRLs and the Trusted List on 127.0.0.1 (the certificates say
qtsp.localtest.me: the bank goes to 127.0.0.1 with --connect-to); ``qtsp bank serve`` trusts that
Trusted List (XAdES-verified against its signer). Then:

* every request scenario of manifest.json, in each of its schemes, gets the Berlin Group answer the
  manifest says (status and tppMessages code), the TPP side sending as ``qtsp tpp request`` does;
* ``qtsp tpp request`` itself, with certificates from ``qtsp issue qwac --purpose client`` and
  ``qtsp issue qsealc``, in all three schemes;
* requests signed by independent libraries (http-message-signatures, httpsig, jwcrypto) are accepted.

The unit counterparts: tests/unit/relying_party/test_http_signatures*.py, test_bank_verifier.py.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from qtsp.relying_party import tpp_client
from qtsp.relying_party.http_signatures import Request
from qtsp.relying_party.http_signatures.tamper import signed
from qtsp.services import register, scenario_requests, scenarios
from qtsp.services.context import Sandbox

from support import ROOT, SAMPLE_ORG
from support.bank import Bank, running_bank, seal_key, tls_context
from support.loopback import served_sandbox, server_env

NEEDED = ["valid-qwac", "valid-qsealc", "qsealc-expired", "qsealc-not-yet-valid", "qsealc-revoked", "qsealc-other-org"]


@dataclass
class World:
    sandbox: Sandbox
    data_dir: Path
    url: str
    out: Path
    manifest: dict[str, Any]
    bank: Bank
    work: Path

    def files(self, name: str) -> tuple[Path, Path]:
        return self.out / f"{name}.pem", self.out / f"{name}.key"

    def chain(self, name: str) -> list[Path]:
        entry = next(e for e in self.manifest["scenarios"] if e["name"] == name)
        return [self.out / p for p in entry["chain"]]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    work = tmp_path_factory.mktemp("bank")
    made: dict[str, Any] = {}

    def prepare(sandbox: Sandbox, _data_dir: Path) -> None:
        register.add_psp(sandbox, org_id=SAMPLE_ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                         country="BE", locality="Brussels", registration_number="0123.456.789")
        made["manifest"] = scenarios.issue(sandbox, NEEDED, work / "catalogue")

    with served_sandbox(work, "crl_debounce_seconds = 0\n", prepare=prepare) as served:
        out = work / "catalogue"
        args = ["--tl", served.url + "/tl.xml", "--tl-signer", str(out / "tl-signer.pem"),
                "--connect-to", served.url.removeprefix("http://")]
        with running_bank(work, args, env=server_env()) as bank:
            yield World(served.sandbox, served.data_dir, served.url, out, made["manifest"], bank, work)


def _send(world: World, entry: dict[str, Any], scheme: str) -> list[tpp_client.Response]:
    req = entry["request"]
    body = (req["body"] or "").encode()
    headers = [("Content-Type", "application/json")] if body else []
    request = Request(req["method"], req["path"], world.bank.authority, headers, body)
    key = seal_key(*world.files(req["seal"]))
    context = tls_context(world.work, *world.files(req["tls"]), world.chain(req["tls"]), world.bank)
    to_send = signed(request, key, scheme, now=dt.datetime.now(dt.timezone.utc), tamper=req["tamper"])
    return [tpp_client.send(r, context, timeout=30) for r in to_send]


def _code(answer: tpp_client.Response) -> str | None:
    data = json.loads(answer.body)
    return data["tppMessages"][0]["code"] if "tppMessages" in data else None


def test_manifest_carries_the_request_catalogue(world: World) -> None:
    entries = world.manifest["requests"]
    assert [e["name"] for e in entries] == [r.name for r in scenario_requests.REQUESTS]
    for needed in ("digest-mismatch", "header-not-signed", "signed-by-other-key", "qsealc-expired", "qsealc-revoked",
                   "qsealc-not-yet-valid", "qwac-as-seal", "qsealc-other-organisation", "role-missing", "clock-skew",
                   "replayed-x-request-id", "unsupported-algorithm"):
        entry = next(e for e in entries if e["name"] == needed)
        assert entry["expected"]["status"] >= 400 and entry["expected"]["code"]
    names = {e["name"] for e in world.manifest["scenarios"]}
    assert all(e["request"]["seal"] in names and e["request"]["tls"] in names for e in entries)


@pytest.mark.parametrize("scheme", ["berlin-group", "rfc9421", "jades"])
def test_every_request_scenario_gets_its_berlin_group_answer(world: World, scheme: str) -> None:
    wrong = []
    for entry in world.manifest["requests"]:
        if scheme not in entry["schemes"]:
            continue
        answers = _send(world, entry, scheme)
        answer = answers[-1]
        got = (answer.status, _code(answer))
        want = (entry["expected"]["status"], entry["expected"]["code"])
        if got != want:
            wrong.append(f"{entry['name']}: {got} != {want}: {answer.body[:300]!r}")
        if entry["request"]["tamper"] == "replay" and answers[0].status != 200:
            wrong.append(f"{entry['name']}: the first of a replayed pair must pass: {answers[0].body[:300]!r}")
        if answer.status >= 400:
            assert dict((k.lower(), v) for k, v in answer.headers)["content-type"] == "application/json"
    assert wrong == [], "\n".join(wrong)


def test_no_client_certificate_is_certificate_missing(world: World) -> None:
    context = ssl.create_default_context(cafile=str(world.bank.cert))
    request = Request("GET", "/v1/accounts", world.bank.authority)
    answer = tpp_client.send(request, context, timeout=30)
    assert (answer.status, _code(answer)) == (401, "CERTIFICATE_MISSING")


def test_blocked_certificate(world: World) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    seal = x509.load_pem_x509_certificate(world.files("valid-qsealc")[0].read_bytes())
    fingerprint = seal.fingerprint(hashes.SHA256()).hex()
    args = ["--tl", world.url + "/tl.xml", "--tl-signer", str(world.out / "tl-signer.pem"),
            "--connect-to", world.url.removeprefix("http://"), "--block", fingerprint]
    with running_bank(world.work, args, env=server_env()) as bank:
        entry = next(e for e in world.manifest["requests"] if e["name"] == "request-accepted")
        answer = _send(World(world.sandbox, world.data_dir, world.url, world.out, world.manifest, bank, world.work),
                       entry, "berlin-group")[-1]
    assert (answer.status, _code(answer)) == (401, "CERTIFICATE_BLOCKED")


# --- qtsp tpp request, with certificates issued by qtsp issue ------------------------------------


def _qtsp(world: World, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in server_env().items()}
    return subprocess.run([sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=90,
                          cwd=ROOT, env=env)


@pytest.fixture(scope="module")
def issued(world: World) -> dict[str, Path]:
    dirs = {}
    for kind, extra in (("qwac", ["--purpose", "client", "--domain", "tpp.example.be"]), ("qsealc", [])):
        out = world.work / f"issued-{kind}"
        done = _qtsp(world, "issue", kind, "--data-dir", str(world.data_dir), "--org-id", SAMPLE_ORG,
                     "--generate-key", "--out", str(out), *extra)
        assert done.returncode == 0, done.stderr
        dirs[kind] = out
    return dirs


@pytest.mark.parametrize("scheme", ["berlin-group", "rfc9421", "jades"])
def test_tpp_client_over_mutual_tls(world: World, issued: dict[str, Path], scheme: str, tmp_path: Path) -> None:
    body = tmp_path / "payment.json"
    body.write_bytes(b'{"instructedAmount": {"currency": "EUR", "amount": "3.00"}}')
    common = ["--data-dir", str(world.data_dir), "--qsealc", str(issued["qsealc"]), "--qwac", str(issued["qwac"]),
              "--scheme", scheme, "--cacert", str(world.bank.cert), "--json"]
    done = _qtsp(world, "tpp", "request", *common, "GET", world.bank.url + "/v1/accounts")
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["status"] == 200, answer
    assert answer["body"]["tppAuthentication"]["scheme"] == scheme
    assert answer["body"]["tppAuthentication"]["organization_identifier"] == SAMPLE_ORG
    assert answer["body"]["accounts"]
    done = _qtsp(world, "tpp", "request", *common, "--data", str(body), "POST",
                 world.bank.url + "/v1/payments/sepa-credit-transfers")
    assert json.loads(done.stdout)["status"] == 201, done.stdout
    # A spoiled request through the same client: the bank says why, and --fail makes it an exit status.
    done = _qtsp(world, "tpp", "request", *common, "--tamper", "digest-mismatch", "--fail", "--data", str(body), "POST",
                 world.bank.url + "/v1/payments/sepa-credit-transfers")
    assert done.returncode == 22
    assert json.loads(done.stdout)["body"]["tppMessages"][0]["code"] == "SIGNATURE_INVALID"


def test_tpp_client_refuses_a_key_that_is_not_the_certificates(world: World, issued: dict[str, Path], tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    shutil.copy(issued["qsealc"] / "cert.pem", mixed / "cert.pem")
    shutil.copy(issued["qwac"] / "key.pem", mixed / "key.pem")
    os.chmod(mixed / "key.pem", 0o600)
    done = _qtsp(world, "tpp", "request", "--data-dir", str(world.data_dir), "--qsealc", str(mixed), "--qwac",
                 str(issued["qwac"]), "--cacert", str(world.bank.cert), "GET", world.bank.url + "/v1/accounts")
    assert done.returncode != 0 and "does not belong" in done.stderr


# --- requests signed by libraries no one here wrote ------------------------------------------------


def test_requests_signed_by_independent_libraries_are_accepted(world: World) -> None:
    import base64

    import http_message_signatures as hms
    import requests
    from cryptography.hazmat.primitives.serialization import Encoding, load_pem_private_key
    from jwcrypto import jwk, jws
    from jwcrypto.common import JWSEHeaderParameter

    from qtsp.relying_party.http_signatures.common import certificate_header, digest_header, http_date, key_id

    cert_file, key_file = world.files("valid-qsealc")
    seal = seal_key(cert_file, key_file).certificate
    private: Any = load_pem_private_key(key_file.read_bytes(), None)
    context = tls_context(world.work, *world.files("valid-qwac"), world.chain("valid-qwac"), world.bank)
    now = dt.datetime.now(dt.timezone.utc)

    # RFC 9421 by http-message-signatures
    prepared = requests.Request("GET", world.bank.url + "/v1/accounts", headers={
        "X-Request-ID": "6d0b5e8a-0d5b-4c55-9c2e-000000000001", "Date": http_date(now),
        "TPP-Signature-Certificate": certificate_header(seal)}).prepare()
    signer = hms.HTTPMessageSigner(signature_algorithm=hms.algorithms.ECDSA_P256_SHA256,
                                   key_resolver=hms.resolvers.MappingKeyResolver(public_keys={}, private_keys={key_id(seal): private}))
    signer.sign(prepared, key_id=key_id(seal), label="tpp", body=b"",
                covered_component_ids=("@method", "@target-uri", "content-digest", "x-request-id", "date"))
    answer = tpp_client.send(Request("GET", "/v1/accounts", world.bank.authority, list(prepared.headers.items())), context)
    assert answer.status == 200, answer.body

    # JAdES by jwcrypto
    request = Request("GET", "/v1/accounts", world.bank.authority, [
        ("X-Request-ID", "6d0b5e8a-0d5b-4c55-9c2e-000000000002"), ("Date", http_date(now)), ("Digest", digest_header(b""))])
    pars = ["(request-target)", "digest", "x-request-id", "date"]
    payload = "\n".join(["(request-target): get /v1/accounts"] + [f"{p}: {request.get(p)}" for p in pars[1:]]).encode()
    registry = {"sigT": JWSEHeaderParameter("sigT", True, True, None), "sigD": JWSEHeaderParameter("sigD", True, True, None)}
    token = jws.JWS(payload, header_registry=registry)
    token.add_signature(jwk.JWK.from_pyca(private), "ES256", protected=json.dumps({
        "alg": "ES256", "x5c": [base64.b64encode(seal.public_bytes(Encoding.DER)).decode()], "b64": False,
        "sigT": now.strftime("%Y-%m-%dT%H:%M:%SZ"), "crit": ["sigT", "sigD", "b64"],
        "sigD": {"mId": "http://uri.etsi.org/19182/HttpHeaders", "pars": pars}}))
    head, _, signature = token.serialize(compact=True).split(".")
    request.set("x-jws-signature", f"{head}..{signature}")
    answer = tpp_client.send(request, context)
    assert answer.status == 200, answer.body


# --- sealing through the key custodians: an HSM (SoftHSM2) and OpenBao Transit ----------------------


def _seal_with_custodian(world: World, issued: dict[str, Path], backend: Any, tmp_path: Path,
                         env: dict[str, str]) -> None:
    """A QSealC whose key the custodian generated and keeps; ``qtsp tpp request --seal-key-ref`` seals with it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.serialization import Encoding
    from cryptography.x509.oid import NameOID

    from qtsp.core.keys import KeyType
    from qtsp.services.issuance import IssueRequest, issue

    info = backend.generate(f"tpp-seal-{os.urandom(3).hex()}", KeyType.ECDSA_P256)
    signer = backend.signer(info.ref)
    csr = (x509.CertificateSigningRequestBuilder()
           .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "seal")])).sign(signer, hashes.SHA256()))
    seal = issue(world.sandbox, IssueRequest("qsealc", SAMPLE_ORG, csr=csr.public_bytes(Encoding.PEM)))
    seal_dir = tmp_path / "seal"
    seal_dir.mkdir()
    (seal_dir / "cert.pem").write_bytes(seal.certificate.public_bytes(Encoding.PEM))  # no key.pem: the custodian has it
    for scheme in ("berlin-group", "rfc9421", "jades"):
        done = subprocess.run([sys.executable, "-m", "cli.main", "tpp", "request", "--data-dir", str(world.data_dir),
                               "--qsealc", str(seal_dir), "--seal-key-ref", info.ref, "--qwac", str(issued["qwac"]),
                               "--scheme", scheme, "--cacert", str(world.bank.cert), "--json", "GET",
                               world.bank.url + "/v1/accounts"], capture_output=True, text=True, timeout=90, cwd=ROOT,
                              env={**server_env(), **env})
        assert done.returncode == 0, done.stderr
        answer = json.loads(done.stdout)
        assert answer["status"] == 200, answer
        assert answer["body"]["tppAuthentication"]["qsealc_serial"] == f"{seal.certificate.serial_number:X}"


def test_sealing_with_a_key_in_an_hsm(world: World, issued: dict[str, Path], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from qtsp.signers.pkcs11 import Pkcs11Backend

    from support.softhsm import SoftHSM

    hsm = SoftHSM(tmp_path / "hsm")
    pin = hsm.init_token("tpp")
    env = {**hsm.env, "QTSP_PKCS11_PIN": pin, "QTSP_PKCS11_TOKEN": "tpp"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    _seal_with_custodian(world, issued, Pkcs11Backend(token="tpp"), tmp_path, env)


def test_sealing_with_a_key_in_openbao_transit(world: World, issued: dict[str, Path], tmp_path: Path,
                                               vault_env: Any) -> None:
    from qtsp.signers.vault import VaultTransit

    env = {"QTSP_VAULT_ADDR": vault_env.addr, "QTSP_VAULT_TOKEN": vault_env.token}
    _seal_with_custodian(world, issued, VaultTransit(world.data_dir), tmp_path, env)
