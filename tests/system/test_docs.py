"""Every command in README.md and docs/*.md runs, as written, on this machine (tests/support/docs_runner.py:
bash, in a network namespace). (That only allowed commands are skipped: tests/unit/test_docs.py.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support.docs_runner import DOCUMENTS, ROOT, parse, report, run, script


def _env() -> dict[str, str]:
    keep = ("HOME", "LANG", "LC_ALL", "TERM", "TMPDIR", "USER", "LOGNAME")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PATH"] = f"{ROOT / '.venv/bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_document_commands_run(path: Path, tmp_path: Path) -> None:
    doc = parse(path)
    if not any(b.lang == "sh" and b.directive != "skip" for b in doc.blocks):
        pytest.fail(f"{doc.name} shows no command that runs; add one or leave it out of docs/")  # not a skip
    result = run(doc, tmp_path, _env())
    assert result.returncode == 0, report(doc, tmp_path, result)


def test_runner_fails_on_a_failing_command_and_on_missing_output(tmp_path: Path) -> None:
    """The runner itself: a command that fails, or output that is not there, fails the document."""
    bad = tmp_path / "bad.md"
    bad.write_text("```sh\ntrue\nfalse\necho never\n```\n")
    doc = parse(bad)
    doc.path = ROOT / "bad.md"  # names relative to the checkout in the report
    work = tmp_path / "w1"
    work.mkdir()
    assert run(doc, work, _env()).returncode != 0
    wrong = tmp_path / "wrong.md"
    wrong.write_text("```sh\necho hello\n```\n\n<!-- doctest: output -->\n```text\ngoodbye\n```\n")
    doc = parse(wrong)
    doc.path = ROOT / "wrong.md"
    work = tmp_path / "w2"
    work.mkdir()
    result = run(doc, work, _env())
    assert result.returncode != 0 and "missing from the output: goodbye" in result.stderr
    assert "grep -qF -- goodbye" in script(doc)
