"""Bulk issuance (qtsp.services.bulk): every line validated first; forked workers lint and sign; the store
gets them all, or with keep_going the good ones. (The CLI: tests/unit/cli/test_bulk.py; the certificates
judged by openssl: tests/system/services/test_bulk.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography import x509

from qtsp.core.errors import Kind, QTSPError
from qtsp.services import bulk
from qtsp.services.context import Sandbox

from support.bulk import MIXED, bulk_counts, intent_states, write_requests

ORG = "PSDBE-NBB-0123456789"


@pytest.mark.parametrize(
    "bad",
    [
        "{not json",
        {"kind": "qwac", "org_id": ORG, "domains": ["bad..example.com"]},
        {"kind": "qwac", "org_id": ORG, "domains": ["ok.example.com"], "roles": "PSP_IC"},
        {"kind": "qwac", "org_id": "PSDBE-NBB-999", "domains": ["ok.example.com"]},
        {"kind": "qsealc", "org_id": ORG, "surprise": 1},
        {"kind": "certificate", "org_id": ORG},
    ],
)
def test_one_bad_line_issues_nothing(sandbox: Sandbox, data_dir: Path, tmp_path: Path, bad: object) -> None:
    lines = [{"kind": "qwac", "org_id": ORG, "domains": ["good.example.com"]}, bad]
    before = bulk_counts(data_dir)
    with pytest.raises(QTSPError) as err:
        bulk.issue_file(sandbox, write_requests(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=2)
    assert err.value.kind in (Kind.MALFORMED, Kind.POLICY)
    assert "2" in err.value.detail  # names the offending line
    assert bulk_counts(data_dir) == before
    assert not (tmp_path / "out").exists()


# --- every line answered: keep going, strict parsing, reporting (issue 13) ----------------------------


def test_keep_going_issues_the_good_lines_and_reports_each_bad_one(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    before = bulk_counts(data_dir)
    result = bulk.issue_file(sandbox, write_requests(tmp_path / "r.jsonl", MIXED), tmp_path / "out", workers=2, keep_going=True)
    assert result.issued == 2
    assert [(r.line, r.error) for r in result.lines] == [(1, None), (2, Kind.MALFORMED), (4, Kind.POLICY), (5, None),
                                                         (6, Kind.MALFORMED)]
    assert "unknown fields ['surprise']" in result.lines[1].detail and "PSP_IC" in result.lines[2].detail
    after = bulk_counts(data_dir)
    assert after[0] - before[0] == 2 and after[2] - before[2] == 2
    for line in (result.lines[0], result.lines[3]):
        cert = x509.load_pem_x509_certificate(Path(line.cert).read_bytes())
        assert format(cert.serial_number, "X").zfill(len(line.serial)) == line.serial
        assert Path(line.key).stat().st_mode & 0o777 == 0o600 and Path(line.chain).exists()
    assert intent_states(data_dir).get("reserved", 0) == 0  # bad lines never reserved a serial


@pytest.mark.parametrize("line, fragment", [
    ('{"kind": "qwac", "kind": "qsealc", "org_id": "x"}', "field 'kind' appears twice"),
    ({"kind": "qsealc", "org_id": ORG, "qscd": "yes"}, "qscd must be true or false"),
    ({"kind": "qsealc", "org_id": ORG, "browser": 1}, "browser must be true or false"),
    ({"kind": "qwac", "org_id": ORG, "domains": "a.example.com"}, "domains must be a list of strings"),
    ({"kind": "qwac", "org_id": ORG, "domains": ["a.example.com", 7]}, "domains must be a list of strings"),
    ({"kind": "qsealc", "org_id": ORG, "roles": ["PSP_AI"]}, "roles must be a string"),
    ({"kind": "qsealc", "org_id": ORG, "roles": None}, "roles must be a string"),
    ({"kind": 1, "org_id": ORG}, "kind must be a string"),
    ({"kind": "qsealc"}, "missing org_id"),
    ({}, "missing kind and org_id"),
    ('"qwac"', "each line is a JSON object"),
    ("{not json", "not JSON"),
    (b'{"kind": "qsealc", "org_id": "\xff"}', "not UTF-8"),
    ("x" * (bulk.MAX_LINE + 1), "line longer than"),
])
def test_lines_are_parsed_strictly(tmp_path: Path, line: object, fragment: str) -> None:
    path = tmp_path / "r.jsonl"
    good = json.dumps({"kind": "qsealc", "org_id": ORG}).encode()
    raw = line if isinstance(line, bytes) else (line if isinstance(line, str) else json.dumps(line)).encode()
    path.write_bytes(good + b"\n" + raw + b"\n")
    requests, failures = bulk.parse_requests(path)
    assert [n for n, _ in requests] == [1]
    assert [(f.line, f.error) for f in failures] == [(2, Kind.MALFORMED)]
    assert fragment in failures[0].detail, failures[0].detail


def test_all_or_nothing_names_the_first_bad_line_and_counts_the_rest(sandbox: Sandbox, data_dir: Path,
                                                                     tmp_path: Path) -> None:
    before = bulk_counts(data_dir)
    with pytest.raises(QTSPError) as err:
        bulk.issue_file(sandbox, write_requests(tmp_path / "r.jsonl", MIXED), tmp_path / "out", workers=1)
    assert err.value.kind is Kind.MALFORMED
    assert "line 2: unknown fields" in err.value.detail and "and 2 more bad lines" in err.value.detail
    assert bulk_counts(data_dir) == before and not (tmp_path / "out").exists()


def test_a_line_lint_refuses_in_a_worker_fails_alone(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    """"xn--zz" is LDH (validation passes) but no valid punycode: pkilint refuses it in the worker."""
    lines = [{"kind": "qwac", "org_id": ORG, "domains": [f"{name}.example.com"]} for name in ("good1", "xn--zz", "good2")]
    before, states = bulk_counts(data_dir), intent_states(data_dir)
    result = bulk.issue_file(sandbox, write_requests(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=1, keep_going=True)
    assert [(r.line, r.error) for r in result.lines] == [(1, None), (2, Kind.LINT), (3, None)]
    assert "invalid_plabel_encoding" in result.lines[1].detail
    assert bulk_counts(data_dir)[0] - before[0] == 2
    after = intent_states(data_dir)
    assert (after.get("done", 0) - states.get("done", 0), after.get("abandoned", 0) - states.get("abandoned", 0)) == (2, 1)
    assert after.get("reserved", 0) == 0  # the refused line's serial is abandoned, never used

    with pytest.raises(QTSPError) as err:  # all-or-nothing: the run stops, nothing stays reserved
        bulk.issue_file(sandbox, write_requests(tmp_path / "r2.jsonl", lines), tmp_path / "out2", workers=1)
    assert err.value.kind is Kind.LINT and "line 2" in err.value.detail
    assert intent_states(data_dir).get("reserved", 0) == 0 and bulk_counts(data_dir)[0] - before[0] == 2
