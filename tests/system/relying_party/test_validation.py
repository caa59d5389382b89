"""The simulator's catalogue, the reference validator and validators no one here wrote, against each other.

One sandbox serves the scenario certificates (OCSP, CRLs, Trusted List) on 127.0.0.1. For every
scenario in manifest.json:

* ``qtsp validate`` (the reference validator) reaches the manifest's verdict, with exactly its reasons;
* OpenSSL (``openssl verify`` with CRLs at every level and the purpose), pyhanko-certvalidator (hard-fail
  revocation over OCSP/CRL, key usage of the purpose) and Java PKIX (OCSP then CRLs, failing hard)
  reach the manifest's RFC 5280 verdict ("pkix") wherever they have an opinion.

The certificates name ``http://qtsp.localtest.me:<port>``: the reference validator goes to 127.0.0.1
with --connect-to, pyhanko through a patched getaddrinfo, Java through jdk.net.hosts.file, OpenSSL
gets the CRLs fetched from loopback. No traffic leaves 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
from cryptography.hazmat.primitives import serialization

from qtsp import relying_party
from qtsp.core.errors import Kind, QTSPError
from qtsp.clock import as_of, utcnow
from qtsp.services import scenarios, trusted_list
from qtsp.services.context import Sandbox

from support import ROOT
from support.loopback import HOST, served_sandbox
from support.validation import Deployment, openssl_verify, pyhanko_verdict, reference


@pytest.fixture(scope="module")
def dep(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("validation")
    made: dict[str, Any] = {}

    def issue_catalogue(sandbox: Sandbox, _data_dir: Path) -> None:
        made["manifest"] = scenarios.issue(sandbox, None, work / "catalogue")

    with served_sandbox(work, "crl_debounce_seconds = 0\ntime_travel = true\n", prepare=issue_catalogue) as served:
        yield Deployment(served.sandbox, served.data_dir, served.url, served.base, work / "catalogue", made["manifest"])


# --- the catalogue itself ------------------------------------------------------------------------


def test_catalogue_is_complete_and_labelled(dep: Deployment) -> None:
    names = [e["name"] for e in dep.manifest["scenarios"]]
    assert names == list(scenarios.CATALOGUE)
    # Every case the issue names is there.
    for needed in ("expired", "not-yet-valid", "revoked-after-expiry", "issuer-not-in-tl", "missing-psd2-statement",
                   "role-oid-mismatch", "ncaid-malformed", "ncaid-mismatch", "qctype-eseal-on-tls",
                   "qwac-no-clientauth-mtls", "wrong-key-usage", "unknown-critical-extension", "wrong-signature",
                   "missing-intermediate"):
        assert needed in names
    assert {n for n in names if n.startswith("revoked-") and n != "revoked-after-expiry"} == {
        f"revoked-{r}" for r in ("unspecified", "key-compromise", "affiliation-changed", "superseded",
                                 "cessation-of-operation", "privilege-withdrawn",
                                 # RFC 5280's other revocation reasons, which BR keeps off subscriber certificates
                                 "ca-compromise", "certificate-hold", "aa-compromise")}
    for entry in dep.manifest["scenarios"]:
        cert = dep.cert(entry["name"])
        assert int(entry["serial"], 16) == cert.serial_number
        assert entry["expected"]["verdict"] in ("accept", "reject") and entry["pkix"] in ("accept", "reject")
        assert len(entry["description"]) > 30
        key = dep.out / entry["key"]
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        private = serialization.load_pem_private_key(key.read_bytes(), None)
        assert private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == \
            cert.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        # Only the simulator's CAs issue scenarios, never the normal ones.
        assert entry["issuer"] in scenarios.CA_ROLES
    # What the lint gate would have refused is recorded, by the linters that found it.
    codes = {e["name"]: {f["code"] for f in e["lint_findings"]} for e in dep.manifest["scenarios"]}
    assert codes["valid-qwac"] == codes["valid-qsealc"] == set()
    assert "etsi.ts_119_495.gen-5.2.2-5.psp_role_mismatch" in codes["role-oid-mismatch"]
    assert "etsi.en_319_412_5.gen-4.2.3.qc_type_mismatch" in codes["qctype-eseal-on-tls"]
    assert "qtsp.psd2.nca_id_mismatch" in codes["ncaid-mismatch"]
    assert "cabf.serverauth.subscriber_required_ku_missing" in codes["wrong-key-usage"]


def test_scenario_cas_stay_apart_and_only_the_listed_one_is_in_the_trusted_list(dep: Deployment) -> None:
    tl = relying_party.parse_and_verify_trusted_list(dep.get("/tl.xml"), [trusted_list.signer_certificate(dep.sandbox)], utcnow())
    listed = {s.certificate.subject.rfc4514_string() for s in relying_party.anchors(tl)}
    cas = scenarios.ensure_cas(dep.sandbox)
    assert cas[scenarios.SCENARIOS_CA].cert.subject.rfc4514_string() in listed
    assert cas[scenarios.UNLISTED_CA].cert.subject.rfc4514_string() not in listed
    assert cas[scenarios.SUB_CA].cert.subject.rfc4514_string() not in listed
    # Normal issuance never lands on a scenarios CA.
    from qtsp.core import profiles
    from qtsp.services.issuance import issuer_for
    assert issuer_for(dep.sandbox, profiles.QWAC) == "qwac-ca" and issuer_for(dep.sandbox, profiles.QSEALC) == "qseal-ca"


def test_issue_refuses_bad_input_and_changes_nothing(dep: Deployment, tmp_path: Path) -> None:
    qtsp = [sys.executable, "-m", "cli.main"]
    cwd = ROOT
    before = len(list(dep.sandbox.engine.connect().exec_driver_sql("SELECT id FROM certificates")))
    for args, code in ((["scenarios", "issue", "no-such", "--out", str(tmp_path / "a")], 4),
                       (["scenarios", "issue", "--out", str(tmp_path / "b")], 2),
                       (["scenarios", "issue", "expired", "expired", "--out", str(tmp_path / "c")], 2),
                       (["scenarios", "issue", "--all", "--out", str(dep.out)], 5)):
        result = subprocess.run(qtsp + args + ["--data-dir", str(dep.data_dir)], capture_output=True, text=True,
                                cwd=cwd, timeout=60)
        assert result.returncode == code, (args, result.stderr)
        assert result.stderr.startswith("error: ")
    after = len(list(dep.sandbox.engine.connect().exec_driver_sql("SELECT id FROM certificates")))
    assert after == before
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists()


# --- the reference validator against the manifest ---------------------------------------------------


def test_reference_validator_agrees_with_every_manifest_verdict(dep: Deployment) -> None:
    disagreements = []
    for entry in dep.manifest["scenarios"]:
        verdict = reference(dep, entry["name"])
        got = ("accept" if verdict.accepted else "reject", sorted(verdict.codes))
        want = (entry["expected"]["verdict"], sorted(entry["expected"]["reasons"]))
        if got != want:
            disagreements.append((entry["name"], want, got, [r.message for r in verdict.reasons]))
    assert not disagreements, disagreements


def test_validate_cli_and_library_agree(dep: Deployment) -> None:
    cwd = ROOT
    signer = dep.out / dep.manifest["trusted_list_signer"]  # the pin the catalogue ships with
    assert signer.read_bytes() == dep.get("/tl-signer.pem")
    for name in ("valid-qwac", "revoked-key-compromise", "qwac-no-clientauth-mtls", "valid-qsealc"):
        entry = dep.entry(name)
        args = [sys.executable, "-m", "cli.main", "validate", str(dep.out / entry["certificate"]), "--purpose",
                entry["purpose"], "--tl", f"{dep.base}/tl.xml", "--tl-signer", str(signer), "--connect-to",
                dep.connect_to, "--json"]
        for chain in entry["chain"]:
            args += ["--chain", str(dep.out / chain)]
        result = subprocess.run(args, capture_output=True, text=True, cwd=cwd, timeout=60)
        data = json.loads(result.stdout)
        assert data["verdict"] == entry["expected"]["verdict"], result.stdout
        assert result.returncode == (0 if entry["expected"]["verdict"] == "accept" else 1)
        assert sorted(r["code"] for r in data["reasons"]) == sorted(entry["expected"]["reasons"])
    # --require-role: the catalogue's PSP holds PSP_AI and PSP_PI, not PSP_IC.
    assert reference(dep, "valid-qwac", require_roles=("PSP_AI",)).accepted
    verdict = reference(dep, "valid-qwac", require_roles=("PSP_IC",))
    assert verdict.codes == ["role-not-authorised"]
    # A Trusted List signed by anyone but the pinned signer is refused outright.
    other = dep.cert("valid-qwac")
    with pytest.raises(QTSPError) as forged:
        relying_party.parse_and_verify_trusted_list(dep.get("/tl.xml"), [other], utcnow())
    assert forged.value.kind is Kind.INTEGRITY
    # --tl without a pin is refused before anything is fetched.
    result = subprocess.run([sys.executable, "-m", "cli.main", "validate", str(dep.out / "valid-qwac.pem"), "--tl",
                             f"{dep.base}/tl.xml"], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert result.returncode == 2 and "--tl-signer" in result.stderr
    # No sandbox here and no --tl: a clear way out, and nothing made.
    nowhere = dep.out / "no-sandbox"
    result = subprocess.run([sys.executable, "-m", "cli.main", "validate", str(dep.out / "valid-qwac.pem"), "--data-dir",
                             str(nowhere)], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert result.returncode == 4 and "--tl URL|FILE --tl-signer PEM" in result.stderr and not nowhere.exists()
    # Not a certificate, or unreadable: exit 2 / 4 with the reason.
    result = subprocess.run([sys.executable, "-m", "cli.main", "validate", str(dep.out / "manifest.json"), "--data-dir",
                             str(dep.data_dir)], capture_output=True, text=True, cwd=cwd, timeout=60)
    assert result.returncode == 2 and "not a PEM or DER certificate" in result.stderr


def test_time_travel_finds_the_revocation_kept_after_expiry(dep: Deployment) -> None:
    """Revoked while valid, now expired: validated as of a time inside its validity after the revocation,
    the status comes back revoked from OCSP as of that time (archiveCutoff keeps it)."""
    entry = dep.entry("revoked-after-expiry")
    moment = dt.datetime.fromisoformat(entry["revocation"]["revoked_at"]) + dt.timedelta(days=3)
    with as_of(moment):
        verdict = reference(dep, "revoked-after-expiry", at=moment, travel=moment)
    assert verdict.codes == ["revoked"], verdict.reasons
    assert verdict.revocation[0]["source"] == "ocsp", verdict.revocation[0].get("fallback_after")
    assert verdict.revocation[0]["reason"] == "key_compromise"
    # The same certificate a day before it was revoked: good then.
    before = dt.datetime.fromisoformat(entry["revocation"]["revoked_at"]) - dt.timedelta(days=1)
    with as_of(before):
        assert reference(dep, "revoked-after-expiry", at=before, travel=before).accepted
    # not-yet-valid becomes valid when its time comes.
    later = dt.datetime.fromisoformat(dep.entry("not-yet-valid")["not_before"]) + dt.timedelta(days=1)
    with as_of(later):
        verdict = reference(dep, "not-yet-valid", at=later, travel=later)
    assert verdict.accepted, verdict.reasons


# --- OpenSSL ------------------------------------------------------------------------------------


OPENSSL_SAYS = {  # what OpenSSL names as the error, where the scenario is one it has an opinion on
    "expired": "certificate has expired",
    "not-yet-valid": "certificate is not yet valid",
    "revoked-key-compromise": "certificate revoked",
    "unknown-critical-extension": "unhandled critical extension",
    "wrong-signature": "signature failure",
    "missing-intermediate": "unable to get local issuer certificate",
    "qwac-no-clientauth-mtls": "unsuitable certificate purpose",
    "wrong-key-usage": "unsuitable certificate purpose",
}


def test_openssl_agrees_with_the_manifest(dep: Deployment, tmp_path: Path) -> None:
    disagreements = []
    for entry in dep.manifest["scenarios"]:
        result = openssl_verify(dep, entry["name"], tmp_path)
        got = "accept" if result.returncode == 0 else "reject"
        if got != entry["pkix"]:
            disagreements.append((entry["name"], entry["pkix"], result.stdout + result.stderr))
        hint = OPENSSL_SAYS.get(entry["name"])
        if hint and hint not in result.stdout + result.stderr:
            disagreements.append((entry["name"], hint, result.stdout + result.stderr))
    assert not disagreements, disagreements


# --- pyhanko-certvalidator --------------------------------------------------------------------------


def test_pyhanko_certvalidator_agrees_with_the_manifest(dep: Deployment, loopback_dns: list[str]) -> None:
    disagreements = []
    for entry in dep.manifest["scenarios"]:
        got, why = pyhanko_verdict(dep, entry["name"])
        if got != entry["pkix"]:
            disagreements.append((entry["name"], entry["pkix"], got, why))
    assert not disagreements, disagreements


def test_responder_behaviours_against_the_reference_validator_and_pyhanko(dep: Deployment, loopback_dns: list[str]) -> None:
    """Each OCSP misbehaviour is caught by the reference validator, which falls back to the CRL and
    says why; with the CRL broken too, there is no status and the verdict is reject. pyhanko-certvalidator
    in hard-fail mode agrees where both fail."""
    from qtsp.services import simulator

    serial = dep.entry("valid-qwac")["serial"]
    ca = scenarios.SCENARIOS_CA
    why = {"try-later": "TRY_LATER", "internal-error": "INTERNAL_ERROR", "unauthorized": "UNAUTHORIZED",
           "wrong-key": "not authorised by the issuer", "stale": "stale", "wrong-serial": "another certificate",
           "no-nonce": "nonce"}
    try:
        for behaviour, said in why.items():
            simulator.set_behaviour(dep.sandbox, behaviour, ca, serial=serial)
            verdict = reference(dep, "valid-qwac")
            assert verdict.accepted, (behaviour, verdict.reasons)
            (status,) = verdict.revocation
            assert status["source"] == "crl", (behaviour, status)
            assert any(said in problem for problem in status["fallback_after"]), (behaviour, status["fallback_after"])
        # A slow responder is only slow: the answer, once there, is used.
        simulator.set_behaviour(dep.sandbox, "slow", ca, serial=serial, delay_seconds=1.0)
        started = time.monotonic()
        verdict = reference(dep, "valid-qwac")
        assert verdict.accepted and verdict.revocation[0]["source"] == "ocsp" and time.monotonic() - started >= 1.0
        # OCSP unusable and the CRL expired, or signed by the wrong key: no status, reject.
        simulator.set_behaviour(dep.sandbox, "try-later", ca, serial=serial)
        for crl_behaviour, said in (("expired-crl", "expired"), ("crl-wrong-key", "not signed by")):
            simulator.set_behaviour(dep.sandbox, crl_behaviour, ca)
            verdict = reference(dep, "valid-qwac")
            assert verdict.codes == ["revocation-unknown"], (crl_behaviour, verdict.reasons)
            assert said in verdict.reasons[0].message
            got, reason = pyhanko_verdict(dep, "valid-qwac")
            assert got == "reject", (crl_behaviour, reason)
        # Every behaviour cleared: the certificate is accepted over OCSP again, by both.
        simulator.clear(dep.sandbox, ca_id=ca)
        verdict = reference(dep, "valid-qwac")
        assert verdict.accepted and verdict.revocation[0]["source"] == "ocsp"
        assert pyhanko_verdict(dep, "valid-qwac")[0] == "accept"
    finally:
        simulator.clear(dep.sandbox, everything=True) if simulator.list_behaviours(dep.sandbox) else None


# --- Java PKIX ------------------------------------------------------------------------------------


# Java's PKIX validator checks paths, signatures, validity, critical extensions and revocation, not the
# EKU or key usage of a purpose, nor anything qualified: those scenarios are outside its opinion.
JAVA_HAS_NO_OPINION = {"qwac-no-clientauth-mtls", "wrong-key-usage"}


def test_java_pkix_agrees_with_the_manifest(dep: Deployment, bank_validator: Path, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(f"127.0.0.1 {HOST}\n")
    disagreements = []
    checked = 0
    for entry in dep.manifest["scenarios"]:
        if entry["name"] in JAVA_HAS_NO_OPINION:
            continue
        issuing = dep.out / (entry["chain"][0] if entry["chain"] else f"ca/{scenarios.SCENARIOS_CA}.pem")
        result = subprocess.run(
            [shutil.which("java") or "java", f"-Djdk.net.hosts.file={hosts}", "-Dcom.sun.security.enableCRLDP=true",
             "-Djava.net.useSystemProxies=false", "-cp", str(bank_validator), "BankValidator",
             str(dep.out / entry["certificate"]), str(issuing), str(dep.out / "ca" / "root.pem")],
            capture_output=True, text=True, timeout=120)
        checked += 1
        got = "accept" if result.returncode == 0 else "reject"
        if got != entry["pkix"]:
            disagreements.append((entry["name"], entry["pkix"], result.stdout + result.stderr))
        if entry["name"].startswith("revoked-") and entry["name"] != "revoked-after-expiry":
            assert result.stdout.startswith("REVOKED"), (entry["name"], result.stdout)
    assert checked >= 20
    assert not disagreements, disagreements
