"""The ``qtsp`` CLI end to end: the happy path, and bad input that is refused and changes nothing."""

from __future__ import annotations

import json
import os
import stat
from contextlib import closing
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from support.cli import (DOMAIN, NEW_ORG, SAMPLE_ORG, assert_issue_refused, assert_refused, bad_signature_csr, csr_der,
                         file_hashes, issue_args, ok, ok_json, run, snapshot)


# --- happy path ----------------------------------------------------------------------------


@pytest.mark.parametrize("p12_password", [None, "s3cret-pw"])
def test_register_add_then_issue_qwac_with_generated_key(data_dir: Path, tmp_path: Path, p12_password: str | None) -> None:
    psp = ok_json(run("register", "add", "--data-dir", data_dir, "--json", "--org-id", NEW_ORG,
                      "--name", "Dutch Fintech BV", "--roles", "PSP_AI", "--locality", "Amsterdam",
                      "--registration-number", "12345678"))
    assert (psp["org_id"], psp["nca_id"], psp["roles"], psp["country"]) == (NEW_ORG, "NL-DNB", ["PSP_AI"], "NL")

    out = tmp_path / "qwac"
    args = issue_args(data_dir, out, org=NEW_ORG) + ["--json"]
    if p12_password:
        args += ["--p12-password", p12_password]
    issued = ok_json(run(*args))

    expected = {"cert.pem", "chain.pem", "key.pem"} | ({"bundle.p12"} if p12_password else set())
    assert {p.name for p in out.iterdir()} == expected
    assert sorted(issued["files"]) == sorted(str(out / name) for name in expected)
    assert stat.S_IMODE((out / "key.pem").stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    chain = x509.load_pem_x509_certificates((out / "chain.pem").read_bytes())
    assert format(cert.serial_number, "X").zfill(len(issued["serial"])) == issued["serial"]
    assert cert.issuer == chain[0].subject and chain[0].issuer == chain[1].subject
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_IDENTIFIER)[0].value == NEW_ORG
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == [DOMAIN]
    key = serialization.load_pem_private_key((out / "key.pem").read_bytes(), None)
    assert key.public_key() == cert.public_key()
    if p12_password:
        assert stat.S_IMODE((out / "bundle.p12").stat().st_mode) == 0o600
        p12_key, p12_cert, p12_chain = pkcs12.load_key_and_certificates(
            (out / "bundle.p12").read_bytes(), p12_password.encode())
        assert p12_cert == cert and p12_key.public_key() == cert.public_key() and len(p12_chain) == 2


def test_issue_qsealc_from_csr_then_inspect(data_dir: Path, tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr_file = tmp_path / "seal.csr"
    csr_file.write_bytes(csr_der(key))
    out = tmp_path / "seal"
    issued = ok_json(run("issue", "qsealc", "--data-dir", data_dir, "--json", "--org-id", SAMPLE_ORG,
                         "--csr", csr_file, "--out", out, "--roles", "PSP_PI"))
    assert {p.name for p in out.iterdir()} == {"cert.pem", "chain.pem"}  # no key: the CSR kept it
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert cert.public_key() == key.public_key()
    assert issued["issuer"] == "qseal-ca"

    listed = ok_json(run("certs", "list", "--data-dir", data_dir, "--json"))
    assert [(c["serial"], c["org_id"], c["roles"], c["status"]) for c in listed] == \
        [(issued["serial"], SAMPLE_ORG, "PSP_PI", "good")]
    shown = ok_json(run("certs", "show", issued["serial"], "--data-dir", data_dir, "--json"))
    assert (shown["serial"], shown["profile"], shown["nca_id"]) == (issued["serial"], "qsealc", "BE-NBB")
    assert x509.load_pem_x509_certificate(shown["pem"].encode()) == cert

    cas = ok_json(run("ca", "list", "--data-dir", data_dir, "--json"))
    assert {c["id"] for c in cas} == {"root", "qwac-ca", "qseal-ca", "browser-root", "qwac-browser-ca"}
    assert "verifies" in ok(run("audit", "verify", "--data-dir", data_dir))
    assert ok_json(run("audit", "verify", "--data-dir", data_dir, "--json"))["ok"] is True


def test_data_dir_from_environment(data_dir: Path, tmp_path: Path) -> None:
    env = {"QTSP_DATA_DIR": str(data_dir)}
    psps = ok_json(run("register", "list", "--json", env=env))
    assert [p["org_id"] for p in psps] == [SAMPLE_ORG]
    out = tmp_path / "env-qwac"
    ok(run("issue", "qwac", "--org-id", SAMPLE_ORG, "--generate-key", "--domain", DOMAIN, "--out", out, env=env))
    assert len(ok_json(run("certs", "list", "--json", env=env))) == 1
    assert snapshot(data_dir)[0]["certificates"] == 4  # with the three issuing CAs' certificates, their roots'


def test_json_errors_are_json(data_dir: Path) -> None:
    result = run("register", "show", "PSDBE-NBB-404", "--data-dir", data_dir, "--json")
    assert result.exit_code != 0
    assert json.loads(result.stderr)["error"] == "not_found"


# --- bad input: refused, one-line error, nothing changes -------------------------------------

CSR_FACTORIES: dict[str, Callable[[], bytes]] = {
    "bad-signature": bad_signature_csr,
    "rsa-1024": lambda: csr_der(rsa.generate_private_key(public_exponent=65537, key_size=1024)),
    "ec-secp521r1": lambda: csr_der(ec.generate_private_key(ec.SECP521R1())),
    "ec-secp256k1": lambda: csr_der(ec.generate_private_key(ec.SECP256K1())),
}
CSR_ERRORS = {"bad-signature": "does not verify", "rsa-1024": "too short",
              "ec-secp521r1": "unsupported elliptic curve", "ec-secp256k1": "unsupported elliptic curve"}


@pytest.mark.parametrize("kind", ["qsealc", "qwac"])
@pytest.mark.parametrize("case", list(CSR_FACTORIES))
def test_bad_csr_is_refused(data_dir: Path, tmp_path: Path, case: str, kind: str) -> None:
    csr_file = tmp_path / "bad.csr"
    csr_file.write_bytes(CSR_FACTORIES[case]())
    out = tmp_path / "out"
    args: list[Any] = ["issue", kind, "--data-dir", data_dir, "--org-id", SAMPLE_ORG, "--csr", csr_file, "--out", out]
    if kind == "qwac":
        args += ["--domain", DOMAIN]
    assert_issue_refused(data_dir, out, args, CSR_ERRORS[case])


REGISTER_BAD = [
    # (org id, roles, extra args, expected fragment of the error)
    ("PSD-BE-NBB", "PSP_AI", [], "malformed organizationIdentifier"),
    ("PSDBE_NBB-1", "PSP_AI", [], "malformed organizationIdentifier"),
    ("XYZBE-123", "PSP_AI", [], "unknown organizationIdentifier scheme"),
    ("PSDBE-XYZ-123", "PSP_AI", [], "NCA BE-XYZ is not in the register"),
    ("PSDFR-NBB-123", "PSP_AI", [], "NCA FR-NBB is not in the register"),
    (NEW_ORG, "PSP_XX", [], "unknown PSD2 role 'PSP_XX'"),
    (NEW_ORG, "psp_ai", [], "case-sensitive"),
    (NEW_ORG, "", [], "must not be empty"),
    (NEW_ORG, ",", [], "must not be empty"),
    (NEW_ORG, "PSP_AI", ["--country", "ZZ"], "unknown country code 'ZZ'"),
    (SAMPLE_ORG, "PSP_AI", [], "already in the register"),
]


@pytest.mark.parametrize("org_id,roles,extra,fragment", REGISTER_BAD, ids=[f"{o}|{r}|{' '.join(e)}" for o, r, e, _ in REGISTER_BAD])
def test_register_add_refuses(data_dir: Path, org_id: str, roles: str, extra: list[str], fragment: str) -> None:
    before = snapshot(data_dir)
    assert_refused(run("register", "add", "--data-dir", data_dir, "--org-id", org_id, "--name", "Bad PSP",
                       "--roles", roles, *extra), fragment)
    assert snapshot(data_dir) == before


ISSUE_BAD = [
    # (issue_args overrides, expected fragment of the error)
    ({"org": "PSD-BE-NBB"}, "malformed organizationIdentifier"),
    ({"org": "PSDBE_NBB-1"}, "malformed organizationIdentifier"),
    ({"org": "XYZBE-123"}, "unknown organizationIdentifier scheme"),
    ({"org": "PSDBE-NBB-999"}, "not in the NCA register"),
    ({"roles": "PSP_XX"}, "unknown PSD2 role"),
    ({"roles": "psp_ai"}, "case-sensitive"),
    ({"roles": ""}, "must not be empty"),
    ({"roles": ","}, "must not be empty"),
    ({"roles": "PSP_IC"}, "PSP_IC is not authorised"),
    ({"kind": "qsealc", "roles": "PSP_IC"}, "PSP_IC is not authorised"),
    ({"domains": ("",)}, "empty domain name"),
    ({"domains": ("api..example.com",)}, "empty label"),
    ({"domains": ("192.0.2.1",)}, "IP address"),
    ({"domains": (".".join(["a" * 60] * 5),)}, "at most 253"),
    ({"domains": ("*.example.com",)}, "wildcard"),
    ({"domains": ("bücher.example",)}, "non-LDH"),
    ({"domains": ("-bad.example.com",)}, "invalid label"),
    ({"domains": (DOMAIN, DOMAIN.upper())}, "listed twice"),
]


@pytest.mark.parametrize("overrides,fragment", ISSUE_BAD, ids=[repr(o)[:60] for o, _ in ISSUE_BAD])
def test_issue_refuses(data_dir: Path, tmp_path: Path, overrides: dict[str, Any], fragment: str) -> None:
    out = tmp_path / "out"
    assert_issue_refused(data_dir, out, issue_args(data_dir, out, **overrides), fragment)


@pytest.mark.parametrize("kind", ["qwac", "qsealc"])
def test_issue_for_withdrawn_psp_is_refused(data_dir: Path, tmp_path: Path, kind: str) -> None:
    assert ok_json(run("register", "withdraw", SAMPLE_ORG, "--data-dir", data_dir, "--json"))["status"] == "withdrawn"
    out = tmp_path / "out"
    assert_issue_refused(data_dir, out, issue_args(data_dir, out, kind=kind), "withdrawn")


def test_out_dir_with_existing_cert_is_refused_before_issuing(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "cert.pem").write_text("an earlier certificate\n")
    before = snapshot(data_dir)
    assert_refused(run(*issue_args(data_dir, out)), "refusing to overwrite")
    assert snapshot(data_dir) == before
    assert (out / "cert.pem").read_text() == "an earlier certificate\n"
    assert [p.name for p in out.iterdir()] == ["cert.pem"]


def test_init_twice_is_refused_and_leaves_the_sandbox_alone(data_dir: Path) -> None:
    before, keys_before = snapshot(data_dir), file_hashes(data_dir / "keys")
    config_before = (data_dir / "qtsp.toml").read_bytes()
    for extra in ([], ["--key-type", "rsa-3072"]):
        assert_refused(run("init", "--data-dir", data_dir, *extra), "already holds a sandbox")
    assert snapshot(data_dir) == before
    assert file_hashes(data_dir / "keys") == keys_before
    assert (data_dir / "qtsp.toml").read_bytes() == config_before
    assert ok_json(run("audit", "verify", "--data-dir", data_dir, "--json"))["ok"] is True


# Root ignores a 0o500 mode, so that variant only runs for ordinary users; a path under a
# regular file is unwritable for everyone.
UNWRITABLE = ["under-a-file"] + (["read-only-dir"] if os.geteuid() != 0 else [])


@pytest.mark.parametrize("variant", UNWRITABLE)
def test_init_refuses_unwritable_data_dir(tmp_path: Path, variant: str) -> None:
    if variant == "under-a-file":
        (tmp_path / "afile").write_text("not a directory\n")
        target = tmp_path / "afile" / "sub"
    else:
        target = tmp_path / "locked"
        target.mkdir()
        target.chmod(0o500)
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    try:
        assert_refused(run("init", "--data-dir", target), "not writable")
    finally:
        if variant == "read-only-dir":
            target.chmod(0o700)
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("text, fragment", [
    ('[[pds]]\nurl = "https://qtsp.localtest.me/pds/pds-en.pdf"\nlanguage = "en"\ntime_travel = true\n',
     "unknown keys in [[pds]]: time_travel"),
    ("time_travel = 1\n", "time_travel must be true or false"),
    ("simulator_max_delay_seconds = 61\n", "simulator_max_delay_seconds must be 0-60"),
    ("trusted_list_validity_days = 200\n", "at most 6 months"),
])
def test_bad_simulator_configuration_is_refused(tmp_path: Path, text: str, fragment: str) -> None:
    config_file = tmp_path / "config.toml"
    config_file.write_text(text)
    result = run("init", "--data-dir", tmp_path / "data", "--config", config_file)
    assert result.exit_code in (2, 3) and fragment in result.output, result.output
    assert not (tmp_path / "data").exists()


def test_time_travel_is_off_by_default_and_rendered_as_toml(data_dir: Path) -> None:
    import tomllib

    text = (data_dir / "qtsp.toml").read_text()
    assert tomllib.loads(text)["time_travel"] is False


def test_time_travel_on_the_command_line(data_dir: Path, tmp_path: Path) -> None:
    """--at acts as of another time for that command only; a revocation may be dated back (never before
    the certificate existed, never ahead); nothing dated by --at is stored for clients on the real clock."""
    import datetime as dt
    import sqlite3

    from qtsp.core.types import serial_hex
    from qtsp.clock import time_travelling, utcnow

    out = tmp_path / "q"
    yesterday = utcnow() - dt.timedelta(days=1)
    ok(run("issue", "qwac", "--org-id", SAMPLE_ORG, "--domain", DOMAIN, "--generate-key", "--out", out,
           "--data-dir", data_dir, "--at", yesterday.strftime("%Y-%m-%dT%H:%M:%SZ")))
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert abs((cert.not_valid_before_utc - yesterday).total_seconds()) < 5  # issued as of then
    serial = serial_hex(cert.serial_number)  # as the store keeps it (even length)
    ahead = (utcnow() + dt.timedelta(days=30)).strftime("%Y-%m-%dT%H:%MZ")
    before = (cert.not_valid_before_utc - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%MZ")
    for when, fragment in ((ahead, "cannot be dated in the future"), (before, "was not yet issued")):
        refused = run("revoke", serial, "--reason", "superseded", "--at", when, "--data-dir", data_dir)
        assert refused.exit_code == 3 and fragment in refused.output, refused.output
    assert not time_travelling()  # in process, the command's clock does not outlive it
    refused = run("crl", "generate", "--ca", "qwac-ca", "--at", ahead, "--data-dir", data_dir)
    assert refused.exit_code == 3 and "X-QTSP-Time" in refused.output
    # Dated back, within the certificate's life: the revocation keeps that date; no OCSP answer signed
    # "as of then" is stored (the responder signs on demand until the scheduler re-signs it).
    back = cert.not_valid_before_utc + dt.timedelta(hours=2)
    done = run("revoke", serial, "--reason", "key-compromise", "--at", back.strftime("%Y-%m-%dT%H:%M:%SZ"),
               "--data-dir", data_dir, "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["revoked_at"].startswith(back.strftime("%Y-%m-%dT%H:%M:%S"))
    assert not time_travelling() and abs((utcnow() - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as con:
        stored = con.execute("select count(*) from ocsp_responses r join certificates c on c.id = r.certificate_id "
                             "where c.serial = ?", (serial,)).fetchone()[0]
        dirty = con.execute("select crl_dirty_since from publication_state where issuer_id = 'qwac-ca'").fetchone()[0]
    assert stored == 0
    assert dirty is not None and dirty[:10] == dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")  # real clock
