"""The CLI takes what people copy from its own listings: CA ids or names as an argument, token names,
PSP legal names, NCA names, a serial without its CA; times without a zone; subjects printed readably."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from qtsp.core.names import readable_name, readable_oids, readable_rfc4514
from support.cli import SAMPLE_ORG, assert_refused, issue_args, ok, ok_json, run, snapshot

QWAC_CA_CN = "qtsp Sandbox PSD2 QWAC CA"


def issued_serial(data_dir: Path, out: Path) -> str:
    return ok_json(run(*issue_args(data_dir, out), "--json"))["serial"]


def behaviours(data_dir: Path) -> list[tuple[Any, ...]]:
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        return db.execute("SELECT issuer_id, scope, behaviour FROM responder_behaviours ORDER BY id").fetchall()


# --- crl show CA ----------------------------------------------------------------------------------


@pytest.mark.parametrize("how", [["qwac-ca"], ["--ca", "qwac-ca"], [QWAC_CA_CN], [QWAC_CA_CN.upper()],
                                 ["qwac-ca", "--ca", "qwac-ca"]], ids=["positional", "option", "name", "NAME", "both"])
def test_crl_show_takes_the_ca_as_an_argument(data_dir: Path, how: list[str]) -> None:
    ok(run("crl", "generate", "qwac-ca", "--data-dir", data_dir))
    shown = ok_json(run("crl", "show", *how, "--data-dir", data_dir, "--json"))
    assert (shown["issuer"], shown["number"], shown["kind"]) == ("qwac-ca", 1, "full")


@pytest.mark.parametrize("args, code, fragment", [
    ([], 2, "which CA?"),
    (["qwac-ca", "--ca", "qseal-ca"], 2, "two CAs given"),
    (["nope"], 4, "no CA 'nope'"),
    (["No Such CA"], 2, "neither a CA id"),
    (["qseal-ca"], 4, "no CRL for qseal-ca yet: run 'qtsp crl generate qseal-ca'"),
])
def test_crl_show_refusals(data_dir: Path, args: list[str], code: int, fragment: str) -> None:
    result = run("crl", "show", *args, "--data-dir", data_dir)
    assert_refused(result, fragment)
    assert result.exit_code == code


# --- tokens by name -----------------------------------------------------------------------------------


def tokens(data_dir: Path) -> dict[int, tuple[str, bool]]:
    return {t["id"]: (t["name"], t["revoked_at"] is not None) for t in ok_json(run("tokens", "list", "--json", "--data-dir", data_dir))}


def create(data_dir: Path, name: str) -> int:
    return ok_json(run("tokens", "create", "--name", name, "--role", "auditor", "--json", "--data-dir", data_dir))["id"]


def test_tokens_revoke_by_name_or_id(data_dir: Path) -> None:
    ci, ops, seven = create(data_dir, "ci"), create(data_dir, "ops"), create(data_dir, "7")
    assert "revoked token" in ok(run("tokens", "revoke", "ci", "--data-dir", data_dir))
    ok(run("tokens", "revoke", str(ops), "--data-dir", data_dir))  # an id still works
    assert tokens(data_dir) == {ci: ("ci", True), ops: ("ops", True), seven: ("7", False)}
    again = run("tokens", "revoke", "ci", "--data-dir", data_dir)
    assert again.exit_code == 5 and "was revoked" in again.stderr
    ok(run("tokens", "revoke", "--id", str(seven), "--data-dir", data_dir))
    assert tokens(data_dir)[seven] == ("7", True)


def test_a_reused_token_name_means_the_live_token(data_dir: Path) -> None:
    first = create(data_dir, "ci")
    ok(run("tokens", "revoke", "ci", "--data-dir", data_dir))
    second = create(data_dir, "ci")
    ok(run("tokens", "revoke", "ci", "--data-dir", data_dir))
    assert tokens(data_dir) == {first: ("ci", True), second: ("ci", True)}


@pytest.mark.parametrize("setup, ref, code, fragment", [
    (["ci", "ci"], "ci", 2, "fits several API tokens (id 1, id 2): give the id"),
    (["ci", "1"], "1", 2, "fits several API tokens"),  # token 1's id and token 2's name
    (["ci"], "nobody", 4, "no API token 'nobody'"),
    (["ci"], "99", 4, "no API token '99'"),
])
def test_tokens_revoke_refuses_what_is_ambiguous_or_unknown(data_dir: Path, setup: list[str], ref: str, code: int,
                                                            fragment: str) -> None:
    for name in setup:
        create(data_dir, name)
    before = tokens(data_dir)
    result = run("tokens", "revoke", ref, "--data-dir", data_dir)
    assert_refused(result, fragment)
    assert result.exit_code == code and tokens(data_dir) == before


def test_tokens_revoke_needs_exactly_one_reference(data_dir: Path) -> None:
    create(data_dir, "ci")
    for args in ([], ["ci", "--id", "1"]):
        assert_refused(run("tokens", "revoke", *args, "--data-dir", data_dir), "not both")


# --- responder behaviours by serial ---------------------------------------------------------------------


def test_responder_set_finds_the_ca_from_the_serial(data_dir: Path, tmp_path: Path) -> None:
    serial = issued_serial(data_dir, tmp_path / "q")
    result = ok_json(run("scenarios", "responder", "set", "try-later", "--serial", serial, "--data-dir", data_dir, "--json"))
    assert (result["ca"], result["serial"], result["behaviour"]) == ("qwac-ca", serial, "try-later")
    ok(run("scenarios", "responder", "set", "stale", "--ca", QWAC_CA_CN, "--data-dir", data_dir))  # a CA by name
    assert behaviours(data_dir) == [("qwac-ca", serial, "try-later"), ("qwac-ca", "*", "stale")]
    listed = ok_json(run("scenarios", "responder", "list", "--json", "--data-dir", data_dir))
    ok(run("scenarios", "responder", "clear", str(listed[0]["id"]), "--data-dir", data_dir))  # by the id it shows
    assert behaviours(data_dir) == [("qwac-ca", "*", "stale")]


def test_a_serial_two_cas_issued_needs_the_ca(data_dir: Path, tmp_path: Path) -> None:
    serial = issued_serial(data_dir, tmp_path / "q")
    # Serials are unique per issuer only: give qseal-ca a certificate with the same serial.
    with closing(sqlite3.connect(data_dir / "qtsp.db")) as db:
        columns = [r[1] for r in db.execute("PRAGMA table_info(certificates)") if r[1] != "id"]
        picked = ", ".join("'qseal-ca'" if c == "issuer_id" else "'ff' || fingerprint_sha256" if c == "fingerprint_sha256"
                           else c for c in columns)
        db.execute(f"INSERT INTO certificates ({', '.join(columns)}) SELECT {picked} FROM certificates WHERE serial = ?",
                   (serial,))
        db.commit()
    before = snapshot(data_dir), behaviours(data_dir)
    result = run("scenarios", "responder", "set", "try-later", "--serial", serial, "--data-dir", data_dir)
    assert_refused(result, "issued by several CAs (qseal-ca, qwac-ca): say which with --ca")
    assert result.exit_code == 2 and (snapshot(data_dir), behaviours(data_dir)) == before
    ok(run("scenarios", "responder", "set", "try-later", "--serial", serial, "--ca", "qwac-ca", "--data-dir", data_dir))
    assert behaviours(data_dir) == [("qwac-ca", serial, "try-later")]


@pytest.mark.parametrize("args, code, fragment", [
    (["try-later"], 2, "say where: --ca CA, or --serial HEX"),
    (["try-later", "--serial", "0x1234"], 4, "no certificate with serial 0x1234"),
    (["try-later", "--serial", "zz"], 2, "serial"),
])
def test_responder_set_refusals(data_dir: Path, args: list[str], code: int, fragment: str) -> None:
    result = run("scenarios", "responder", "set", *args, "--data-dir", data_dir)
    assert_refused(result, fragment)
    assert result.exit_code == code and behaviours(data_dir) == []


def test_responder_clear_by_unknown_id_clears_nothing(data_dir: Path) -> None:
    ok(run("scenarios", "responder", "set", "stale", "--ca", "qwac-ca", "--data-dir", data_dir))
    listed = ok_json(run("scenarios", "responder", "list", "--json", "--data-dir", data_dir))
    result = run("scenarios", "responder", "clear", str(listed[0]["id"]), "999", "--data-dir", data_dir)
    assert_refused(result, "no behaviour 999")
    assert behaviours(data_dir) == [("qwac-ca", "*", "stale")]
    assert_refused(run("scenarios", "responder", "clear", "1", "--all", "--data-dir", data_dir), "one of them")


# --- PSPs, NCAs and CAs by name -----------------------------------------------------------------------------


def test_register_commands_take_the_legal_name(data_dir: Path) -> None:
    shown = ok_json(run("register", "show", "example fintech sa", "--json", "--data-dir", data_dir))
    assert shown["org_id"] == SAMPLE_ORG
    assert ok_json(run("register", "withdraw", "Example Fintech SA", "--json", "--data-dir", data_dir))["status"] == "withdrawn"
    assert ok_json(run("register", "reinstate", SAMPLE_ORG, "--json", "--data-dir", data_dir))["status"] == "active"
    missing = run("register", "show", "Nobody Ltd", "--data-dir", data_dir)
    assert_refused(missing, "no PSP with the organizationIdentifier or legal name 'Nobody Ltd'")
    assert missing.exit_code == 4


def test_nca_requests_take_the_nca_name(data_dir: Path) -> None:
    assert ok_json(run("nca", "requests", "--nca", "National Bank of Belgium", "--json", "--data-dir", data_dir)) == []
    assert ok_json(run("nca", "requests", "--nca", "BE-NBB", "--json", "--data-dir", data_dir)) == []
    assert_refused(run("nca", "requests", "--nca", "Bank of Nowhere", "--data-dir", data_dir), "no NCA 'Bank of Nowhere'")


def test_keys_rotate_takes_a_ca_name(data_dir: Path) -> None:
    planned = ok_json(run("keys", "rotate", "--dry-run", "--ca", QWAC_CA_CN, "--json", "--data-dir", data_dir))
    assert [(p["action"], p["ca_id"]) for p in planned] == [("rollover-ca", "qwac-ca")]


# --- --at without a zone ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [("2027-06-01", "2027-06-01T00:00"), ("2027-06-01T12:00", "2027-06-01T12:00"),
                                            ("2027-06-01T14:00+02:00", "2027-06-01T12:00")])
def test_at_without_a_zone_is_utc(data_dir: Path, tmp_path: Path, text: str, expected: str) -> None:
    out = tmp_path / "q"
    ok(run(*issue_args(data_dir, out), "--at", text))
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    assert cert.not_valid_before_utc.isoformat().startswith(expected)


@pytest.mark.parametrize("text", ["garbage", "2027-13-01", "tomorrow!!", "9999-01-01", "2027-06-01T25:00"])
def test_at_still_refuses_garbage(data_dir: Path, tmp_path: Path, text: str) -> None:
    before = snapshot(data_dir)
    result = run(*issue_args(data_dir, tmp_path / "q"), "--at", text)
    assert_refused(result)
    assert result.exit_code == 2 and snapshot(data_dir) == before


# --- subjects as people read them ----------------------------------------------------------------------------


def test_subjects_are_printed_with_attribute_names(data_dir: Path, tmp_path: Path) -> None:
    serial = issued_serial(data_dir, tmp_path / "q")
    texts = [ok(run("ca", "list", "--data-dir", data_dir)), ok(run("certs", "show", serial, "--data-dir", data_dir)),
             ok(run("certs", "list", "--data-dir", data_dir)), ok(run("ca", "list", "--json", "--data-dir", data_dir))]
    for text in texts:
        assert "2.5.4." not in text and "1.3.6.1.4.1.311" not in text, text
    assert ("CN=qtsp Sandbox Root CA, organizationIdentifier=NTRBE-0000000000, O=qtsp Sandbox Trust Services, C=BE"
            in texts[0])
    assert f"organizationIdentifier={SAMPLE_ORG}, O=Example Fintech SA" in texts[1]
    assert "jurisdictionC=BE" in texts[1] and "businessCategory=Private Organization" in texts[1]
    assert f"organizationIdentifier={SAMPLE_ORG}" in texts[2]


def test_readable_name_keeps_rfc4514_escaping_and_unknown_oids() -> None:
    name = x509.Name([
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.COUNTRY_NAME, "BE")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Acme, Inc+Co")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, "PSDBE-NBB-1"),
                                        x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")]),
        x509.RelativeDistinguishedName([x509.NameAttribute(x509.ObjectIdentifier("1.2.3.4"), "x")]),
    ])
    text = readable_name(name)
    assert text == r"1.2.3.4=x, organizationIdentifier=PSDBE-NBB-1+serialNumber=42, O=Acme\, Inc\+Co, C=BE"
    assert readable_rfc4514(name.rfc4514_string()) == text
    assert readable_rfc4514("not a name") == "not a name"
    assert readable_oids("the CA 'CN=x,2.5.4.97=NTRBE-1' v1.2=3") == "the CA 'CN=x,organizationIdentifier=NTRBE-1' v1.2=3"


def test_the_header_and_trusted_list_mode_still_wants_a_zone() -> None:
    """parse_instant without assume_utc (X-QTSP-Time, Trusted List times) is unchanged: a zone or a refusal."""
    from qtsp.core.errors import QTSPError
    from qtsp.core.instants import parse_instant

    assert parse_instant("2027-06-01T02:00+02:00").isoformat() == "2027-06-01T00:00:00+00:00"
    assert parse_instant("2027-06-01", assume_utc=True).isoformat() == "2027-06-01T00:00:00+00:00"
    for text in ("2027-06-01", "2027-06-01T12:00", "garbage-garbage", "2027-06-01T12:00Zjunk", 20270601):
        with pytest.raises(QTSPError):
            parse_instant(text)  # type: ignore[arg-type]
