"""``qtsp issue bulk``: JSON lines, exit codes, bad lines on stderr, all-or-nothing, and a progress bar only
on a terminal (a pty around a quick subprocess of the CLI)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from click.testing import Result


from support.bulk import MIXED, bulk_counts, write_requests
from support import ROOT

ORG = "PSDBE-NBB-0123456789"


def _cli(data_dir: Path, *args: object) -> Result:
    from click.testing import CliRunner

    from cli.main import cli

    return CliRunner().invoke(cli, ["issue", "bulk", *map(str, args), "--data-dir", str(data_dir)], catch_exceptions=False)


def test_cli_json_is_one_object_per_line_and_the_exit_code_is_the_first_failures(data_dir: Path, tmp_path: Path) -> None:
    result = _cli(data_dir, write_requests(tmp_path / "r.jsonl", MIXED), "--out", tmp_path / "out", "--workers", "1", "--json")
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
    result = _cli(data_dir, write_requests(tmp_path / "r.jsonl", lines), "--out", tmp_path / "out", "--workers", "1")
    assert result.exit_code == 3  # policy
    assert result.stderr.splitlines()[0].startswith("line 2: policy: role PSP_IC is not authorised")
    assert result.stderr.splitlines()[-1].startswith("error: 1 of 2 lines failed")
    assert "issued 1 certificates" in result.stdout and "issuing" not in result.output


def test_cli_all_or_nothing(data_dir: Path, tmp_path: Path) -> None:
    before = bulk_counts(data_dir)
    result = _cli(data_dir, write_requests(tmp_path / "r.jsonl", MIXED), "--out", tmp_path / "out", "--all-or-nothing")
    assert result.exit_code == 2 and "nothing was issued" in result.stderr
    assert bulk_counts(data_dir) == before


@pytest.mark.parametrize("as_json", [False, True])
def test_progress_bar_only_on_a_terminal_and_never_with_json(data_dir: Path, tmp_path: Path, as_json: bool) -> None:
    import os
    import pty
    import sys

    requests = write_requests(tmp_path / "r.jsonl", [{"kind": "qsealc", "org_id": ORG} for _ in range(3)])
    master, slave = pty.openpty()
    args = [sys.executable, "-m", "cli.main", "issue", "bulk", str(requests), "--out", str(tmp_path / "out"),
            "--workers", "1", "--data-dir", str(data_dir)] + (["--json"] if as_json else [])
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL,
                            cwd=ROOT)
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
