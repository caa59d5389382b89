"""Bulk issuance: every line validated first; workers lint and sign; the store gets them all."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import Result
from cryptography import x509

from qtsp.core.errors import Kind, QTSPError
from qtsp.services import bulk
from qtsp.services.context import Sandbox

ORG = "PSDBE-NBB-0123456789"


def _write(path: Path, lines: list[object]) -> Path:
    path.write_text("".join((line if isinstance(line, str) else json.dumps(line)) + "\n" for line in lines))
    return path


def _counts(data_dir: Path) -> tuple[int, int, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return tuple(con.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[return-value]
                     for t in ("certificates", "issuance_intents", "audit_events"))
    finally:
        con.close()


def test_bulk_issues_every_request_on_two_workers(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    lines = [{"kind": "qwac", "org_id": ORG, "domains": [f"api{i}.example.com"]} for i in range(12)]
    lines += [{"kind": "qsealc", "org_id": ORG, "qscd": True, "roles": "PSP_AI"} for _ in range(4)]
    before = _counts(data_dir)
    result = bulk.issue_file(sandbox, _write(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=2)
    assert result.issued == 16
    after = _counts(data_dir)
    assert after[0] - before[0] == 16 and after[2] - before[2] == 16
    dirs = [p for p in (tmp_path / "out").iterdir() if p.is_dir()]
    assert len(dirs) == 16
    serials = set()
    for d in dirs:
        cert = x509.load_pem_x509_certificate((d / "cert.pem").read_bytes())
        serials.add(cert.serial_number)
        assert (d / "key.pem").stat().st_mode & 0o777 == 0o600
        chain = tmp_path / "out" / ("chain-qwac-ca.pem" if cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature else "chain-qseal-ca.pem")
        ok = subprocess.run(["openssl", "verify", "-partial_chain", "-CAfile", str(chain), str(d / "cert.pem")],
                            capture_output=True, text=True, timeout=60)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    assert len(serials) == 16
    con = sqlite3.connect(data_dir / "qtsp.db")
    states = dict(con.execute("select state, count(*) from issuance_intents group by state").fetchall())
    assert states.get("reserved", 0) == 0


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
    before = _counts(data_dir)
    with pytest.raises(QTSPError) as err:
        bulk.issue_file(sandbox, _write(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=2)
    assert err.value.kind in (Kind.MALFORMED, Kind.POLICY)
    assert "2" in err.value.detail  # names the offending line
    assert _counts(data_dir) == before
    assert not (tmp_path / "out").exists()


# --- every line answered: keep going, strict parsing, reporting (issue 13) ----------------------------


def _intent_states(data_dir: Path) -> dict[str, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return dict(con.execute("select state, count(*) from issuance_intents group by state").fetchall())
    finally:
        con.close()


MIXED = [
    {"kind": "qwac", "org_id": ORG, "domains": ["one.example.com"]},
    {"kind": "qwac", "org_id": ORG, "domains": ["two.example.com"], "surprise": 1},
    "",
    {"kind": "qsealc", "org_id": ORG, "roles": "PSP_IC"},
    {"kind": "qsealc", "org_id": ORG, "qscd": True},
    "[1, 2]",
]


def test_keep_going_issues_the_good_lines_and_reports_each_bad_one(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    before = _counts(data_dir)
    result = bulk.issue_file(sandbox, _write(tmp_path / "r.jsonl", MIXED), tmp_path / "out", workers=2, keep_going=True)
    assert result.issued == 2
    assert [(r.line, r.error) for r in result.lines] == [(1, None), (2, Kind.MALFORMED), (4, Kind.POLICY), (5, None),
                                                         (6, Kind.MALFORMED)]
    assert "unknown fields ['surprise']" in result.lines[1].detail and "PSP_IC" in result.lines[2].detail
    after = _counts(data_dir)
    assert after[0] - before[0] == 2 and after[2] - before[2] == 2
    for line in (result.lines[0], result.lines[3]):
        cert = x509.load_pem_x509_certificate(Path(line.cert).read_bytes())
        assert format(cert.serial_number, "X").zfill(len(line.serial)) == line.serial
        assert Path(line.key).stat().st_mode & 0o777 == 0o600 and Path(line.chain).exists()
    assert _intent_states(data_dir).get("reserved", 0) == 0  # bad lines never reserved a serial


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
    before = _counts(data_dir)
    with pytest.raises(QTSPError) as err:
        bulk.issue_file(sandbox, _write(tmp_path / "r.jsonl", MIXED), tmp_path / "out", workers=1)
    assert err.value.kind is Kind.MALFORMED
    assert "line 2: unknown fields" in err.value.detail and "and 2 more bad lines" in err.value.detail
    assert _counts(data_dir) == before and not (tmp_path / "out").exists()


def _cli(data_dir: Path, *args: object) -> Result:
    from click.testing import CliRunner

    from cli.main import cli

    return CliRunner().invoke(cli, ["issue", "bulk", *map(str, args), "--data-dir", str(data_dir)], catch_exceptions=False)


def test_cli_json_is_one_object_per_line_and_the_exit_code_is_the_first_failures(data_dir: Path, tmp_path: Path) -> None:
    result = _cli(data_dir, _write(tmp_path / "r.jsonl", MIXED), "--out", tmp_path / "out", "--workers", "1", "--json")
    assert result.exit_code == 2  # line 2, malformed, comes before line 4's policy refusal
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["line"] for o in objects] == [1, 2, 4, 5, 6]
    assert set(objects[0]) == {"line", "serial", "cert", "chain", "key"}
    assert objects[1] == {"line": 2, "error": "malformed", "detail": objects[1]["detail"]}
    assert objects[2]["error"] == "policy"
    error = json.loads(result.stderr)
    assert error["error"] == "malformed" and error["detail"].startswith("3 of 5 lines failed; the first, line 2:")


def test_cli_text_reports_each_bad_line_on_stderr_without_a_bar_when_not_a_terminal(data_dir: Path, tmp_path: Path) -> None:
    lines = [MIXED[0], {"kind": "qsealc", "org_id": ORG, "roles": "PSP_IC"}]
    result = _cli(data_dir, _write(tmp_path / "r.jsonl", lines), "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 3  # policy
    assert result.stderr.splitlines()[0].startswith("line 2: policy: role PSP_IC is not authorised")
    assert result.stderr.splitlines()[-1].startswith("error: 1 of 2 lines failed")
    assert "issued 1 certificates" in result.stdout and "issuing" not in result.output


def test_cli_all_or_nothing(data_dir: Path, tmp_path: Path) -> None:
    before = _counts(data_dir)
    result = _cli(data_dir, _write(tmp_path / "r.jsonl", MIXED), "--out", tmp_path / "out", "--all-or-nothing")
    assert result.exit_code == 2 and "nothing was issued" in result.stderr
    assert _counts(data_dir) == before


@pytest.mark.parametrize("as_json", [False, True])
def test_progress_bar_only_on_a_terminal_and_never_with_json(data_dir: Path, tmp_path: Path, as_json: bool) -> None:
    import os
    import pty
    import sys

    requests = _write(tmp_path / "r.jsonl", [{"kind": "qsealc", "org_id": ORG} for _ in range(3)])
    master, slave = pty.openpty()
    args = [sys.executable, "-m", "cli.main", "issue", "bulk", str(requests), "--out", str(tmp_path / "out"),
            "--workers", "1", "--data-dir", str(data_dir)] + (["--json"] if as_json else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            cwd=Path(__file__).resolve().parent.parent)
    os.close(slave)
    stdout, _ = proc.communicate(timeout=120)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed and drained
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    assert proc.returncode == 0, seen.decode(errors="replace")
    terminal = seen.decode(errors="replace")
    if as_json:
        assert terminal == "" and len(stdout.splitlines()) == 3
    else:
        assert "issuing" in terminal and "3/3" in terminal and "100%" in terminal
        assert b"issued 3 certificates" in stdout and b"issuing" not in stdout


def test_a_line_lint_refuses_in_a_worker_fails_alone(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    """"xn--zz" is LDH (validation passes) but no valid punycode: pkilint refuses it in the worker."""
    lines = [{"kind": "qwac", "org_id": ORG, "domains": [f"{name}.example.com"]} for name in ("good1", "xn--zz", "good2")]
    before, states = _counts(data_dir), _intent_states(data_dir)
    result = bulk.issue_file(sandbox, _write(tmp_path / "r.jsonl", lines), tmp_path / "out", workers=1, keep_going=True)
    assert [(r.line, r.error) for r in result.lines] == [(1, None), (2, Kind.LINT), (3, None)]
    assert "invalid_plabel_encoding" in result.lines[1].detail
    assert _counts(data_dir)[0] - before[0] == 2
    after = _intent_states(data_dir)
    assert (after.get("done", 0) - states.get("done", 0), after.get("abandoned", 0) - states.get("abandoned", 0)) == (2, 1)
    assert after.get("reserved", 0) == 0  # the refused line's serial is abandoned, never used

    with pytest.raises(QTSPError) as err:  # all-or-nothing: the run stops, nothing stays reserved
        bulk.issue_file(sandbox, _write(tmp_path / "r2.jsonl", lines), tmp_path / "out2", workers=1)
    assert err.value.kind is Kind.LINT and "line 2" in err.value.detail
    assert _intent_states(data_dir).get("reserved", 0) == 0 and _counts(data_dir)[0] - before[0] == 2
