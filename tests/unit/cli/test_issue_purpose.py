"""``qtsp issue qwac --purpose server|client|both`` (``--browser`` as server), bulk's ``purpose``, and the
validity of each hierarchy under time travel, ``qtsp --at TIME issue ...`` as the issue says it.
(The services underneath: tests/unit/services/test_two_hierarchies.py.)"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from cryptography import x509

from qtsp.core.validity import br_tls_max_days as max_days_at

from support import SAMPLE_ORG
from support.cli import assert_issue_refused, issue_args, ok_json, run

UTC = dt.timezone.utc
SERVER, CLIENT = x509.ExtendedKeyUsageOID.SERVER_AUTH, x509.ExtendedKeyUsageOID.CLIENT_AUTH


def _days(issued: dict[str, str]) -> float:
    span = dt.datetime.fromisoformat(issued["not_after"]) - dt.datetime.fromisoformat(issued["not_before"])
    return (span.total_seconds() + 1) / 86400


def _ekus(out: Path) -> set[x509.ObjectIdentifier]:
    cert = x509.load_pem_x509_certificate((out / "cert.pem").read_bytes())
    return set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.mark.parametrize(("before", "extra", "issuer", "days", "ekus"), [
    (["--at", "2027-04-01"], ["--purpose", "server"], "qwac-browser-ca", 100, {SERVER}),
    (["--at", "2029-04-01"], ["--browser"], "qwac-browser-ca", 47, {SERVER}),
    ([], ["--purpose", "server"], "qwac-browser-ca", None, {SERVER}),  # the real clock: the schedule's row of today
    (["--at", "2027-04-01"], ["--purpose", "both"], "qwac-ca", 398, {SERVER, CLIENT}),
    (["--at", "2029-04-01"], ["--purpose", "client"], "qwac-ca", 398, {CLIENT}),
    ([], [], "qwac-ca", 398, {SERVER, CLIENT}),
])
def test_issue_qwac_by_purpose_and_time(data_dir: Path, tmp_path: Path, before: list[str], extra: list[str], issuer: str,
                                        days: int | None, ekus: set[x509.ObjectIdentifier]) -> None:
    if days is None:  # on the real clock: the CA/B row in force today (200 days from 2026-03-15 to 2027-03-14)
        days = max_days_at(dt.datetime.now(UTC))
    out = tmp_path / "out"
    issued = ok_json(run(*before, *issue_args(data_dir, out), *extra, "--json"))
    assert issued["issuer"] == issuer and _days(issued) == days and _ekus(out) == ekus
    if before:
        assert issued["not_before"].startswith(before[1])


def test_at_before_the_command_and_after_it_must_agree(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert_issue_refused(data_dir, out, ["--at", "2027-04-01", *issue_args(data_dir, out), "--at", "2028-01-01"],
                         "--at given twice")


@pytest.mark.parametrize(("extra", "fragment"), [
    (["--purpose", "client", "--browser"], "browser means purpose server"),
    (["--purpose", "browser"], "Invalid value for '--purpose'"),
])
def test_contradictory_or_unknown_purpose_is_refused_changing_nothing(data_dir: Path, tmp_path: Path, extra: list[str],
                                                                     fragment: str) -> None:
    out = tmp_path / "out"
    if fragment.startswith("Invalid"):  # click's own refusal (usage error, exit 2)
        result = run(*issue_args(data_dir, out), *extra)
        assert result.exit_code == 2 and fragment in result.output and not (out / "cert.pem").exists()
        return
    assert_issue_refused(data_dir, out, [*issue_args(data_dir, out), *extra], fragment)


def test_bulk_lines_choose_their_hierarchy(data_dir: Path, tmp_path: Path) -> None:
    lines = [{"kind": "qwac", "org_id": SAMPLE_ORG, "domains": ["a.example.com"], "purpose": purpose}
             for purpose in ("server", "client", "both")]
    lines.append({"kind": "qwac", "org_id": SAMPLE_ORG, "domains": ["b.example.com"], "browser": True})
    lines.append({"kind": "qwac", "org_id": SAMPLE_ORG, "domains": ["c.example.com"], "purpose": "browser"})
    requests = tmp_path / "requests.jsonl"
    requests.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    result = run("issue", "bulk", str(requests), "--out", tmp_path / "bulk", "--workers", "1", "--json",
                 "--data-dir", data_dir)
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    by_line = {row["line"]: row for row in rows}
    assert by_line[5]["error"] == "malformed" and "purpose must be one of server, client, both" in by_line[5]["detail"]
    issuers = {}
    for number in (1, 2, 3, 4):
        cert = x509.load_pem_x509_certificate(Path(by_line[number]["cert"]).read_bytes())
        issuers[number] = (cert.issuer.rfc4514_string(), set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value))
    assert issuers[1][1] == issuers[4][1] == {SERVER} and issuers[2][1] == {CLIENT} and issuers[3][1] == {SERVER, CLIENT}
    assert issuers[1][0] == issuers[4][0] != issuers[2][0] == issuers[3][0]
    assert "Browser" in issuers[1][0]
