"""Every command that writes files for its user, raced: a symlink (to a file the attacker wants
overwritten) or a file is planted at the name qtsp is about to create, after every check it makes
and just before its open (issue 15, "Low": ``--out`` followed symlinks and checked before it wrote).
Each is refused with a one-line error and the target is left untouched.

The race is won by wrapping ``qtsp.files.create_new``, the one place a file is created (a test in
tests/unit/test_files.py keeps it the only one): whatever a command checked before, the name is taken
when it opens it, so only O_CREAT|O_EXCL|O_NOFOLLOW at the open can save the victim."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result

from ceremonies import examples_dir
from cli.main import cli
from qtsp import files
from support.bulk import write_requests
from support.ceremonies import edit
from support.cli import SAMPLE_ORG, issue_args

VICTIM_BYTES = b"do not touch: the attacker wants this overwritten"
PLANTED_BYTES = b"planted by someone else"


@dataclass
class Race:
    """Plants at the first file named ``name`` that qtsp creates, right before it creates it."""

    name: str
    plant: str  # "symlink" or "file"
    victim: Path
    planted: list[Path] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real = files.create_new

        def racing(path: Path, **kwargs: Any) -> int:
            if path.name == self.name and not self.planted:
                if self.plant == "symlink":
                    path.symlink_to(self.victim)
                else:
                    path.write_bytes(PLANTED_BYTES)
                self.planted.append(path)
            return real(path, **kwargs)

        monkeypatch.setattr(files, "create_new", racing)

    def assert_lost(self, result: Result) -> None:
        assert result.exit_code != 0, result.output
        assert self.planted, f"qtsp never created {self.name}: the race did not run"
        assert "refusing to overwrite" in result.output, result.output
        assert "Traceback" not in result.output and "PRIVATE KEY" not in result.output
        assert self.victim.read_bytes() == VICTIM_BYTES
        spot = self.planted[0]
        if self.plant == "symlink":
            assert spot.is_symlink() and spot.resolve() == self.victim.resolve()
        else:
            assert not spot.is_symlink() and spot.read_bytes() == PLANTED_BYTES


def _issue(data_dir: Path, tmp: Path) -> list[Any]:
    return issue_args(data_dir, tmp / "out")


def _issue_p12(data_dir: Path, tmp: Path) -> list[Any]:
    return [*issue_args(data_dir, tmp / "out"), "--p12-password", "pw-for-the-test"]


def _nca_generate(data_dir: Path, tmp: Path) -> list[Any]:
    return ["nca", "add", "--data-dir", data_dir, "--id", "BE-NBB", "--name", "National Bank of Belgium",
            "--generate", "--out", tmp / "nca"]


def _scenarios(data_dir: Path, tmp: Path) -> list[Any]:
    return ["scenarios", "issue", "expired", "--data-dir", data_dir, "--out", tmp / "scenarios"]


def _bulk(data_dir: Path, tmp: Path) -> list[Any]:
    requests = write_requests(tmp / "requests.jsonl", [{"kind": "qsealc", "org_id": SAMPLE_ORG}])
    return ["issue", "bulk", requests, "--data-dir", data_dir, "--out", tmp / "bulk", "--workers", "1"]


def _tl_export(data_dir: Path, tmp: Path) -> list[Any]:
    return ["tl", "export", "--data-dir", data_dir, "--out", tmp / "tl.xml"]


def _tl_signer(data_dir: Path, tmp: Path) -> list[Any]:
    return ["tl", "signer", "--data-dir", data_dir, "--out", tmp / "tl-signer.pem"]


def _sandbox(data_dir: Path, tmp: Path) -> list[Any]:
    return ["sandbox", "--data-dir", data_dir, "--out", tmp / "samples"]


def _ceremony_examples(data_dir: Path, tmp: Path) -> list[Any]:
    return ["ceremony", "examples", tmp / "examples"]


def _ceremony_run(data_dir: Path, tmp: Path) -> list[Any]:
    def file_root(d: dict[str, Any]) -> None:
        d["key"] = {"backend": {"type": "file", "dir": "keys"}, "label": "root-1", "type": "ecdsa-p256"}

    return ["ceremony", "run", edit(examples_dir() / "root.yaml", tmp / "root.yaml", file_root), "--yes"]


# (command, the file planted); what each writes, and where it is racing: every kind of output.
COMMANDS: list[tuple[str, Callable[[Path, Path], list[Any]], str]] = [
    ("issue cert.pem", _issue, "cert.pem"),
    ("issue key.pem", _issue, "key.pem"),
    ("issue bundle.p12", _issue_p12, "bundle.p12"),
    ("nca add --generate key.pem", _nca_generate, "key.pem"),
    ("nca add --generate chain.pem", _nca_generate, "chain.pem"),
    ("scenarios issue key", _scenarios, "expired.key"),
    ("scenarios issue manifest", _scenarios, "manifest.json"),
    ("issue bulk chain", _bulk, "chain-qseal-ca.pem"),
    ("issue bulk key.pem", _bulk, "key.pem"),
    ("tl export", _tl_export, "tl.xml"),
    ("tl signer", _tl_signer, "tl-signer.pem"),
    ("sandbox samples", _sandbox, "bundle.p12"),
    ("ceremony examples", _ceremony_examples, "root.yaml"),
    ("ceremony run certificate", _ceremony_run, "root.pem"),
    ("ceremony run transcript", _ceremony_run, "root.transcript.jsonl"),
]


@pytest.mark.parametrize("plant", ["symlink", "file"])
@pytest.mark.parametrize("label, command, name", COMMANDS, ids=[c[0] for c in COMMANDS])
def test_a_name_taken_just_before_qtsp_creates_it_is_refused_and_left_alone(
        data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str,
        command: Callable[[Path, Path], list[Any]], name: str, plant: str) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("QTSP_P12_PASSWORD", raising=False)
    victim = tmp_path / "victim"
    victim.write_bytes(VICTIM_BYTES)
    race = Race(name, plant, victim)
    args = [str(a) for a in command(data_dir, tmp_path)]
    race.install(monkeypatch)
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    race.assert_lost(result)


@pytest.mark.parametrize("label, command, directory", [
    ("issue", _issue, "out"), ("nca add --generate", _nca_generate, "nca"), ("scenarios issue", _scenarios, "scenarios"),
    ("issue bulk", _bulk, "bulk"), ("sandbox", _sandbox, "samples"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_an_output_directory_that_is_a_symlink_is_refused_before_anything_is_made(
        data_dir: Path, tmp_path: Path, label: str, command: Callable[[Path, Path], list[Any]], directory: str) -> None:
    """A directory planted in /tmp under the name the user will give: a symlink to the attacker's
    directory (who could then swap the files), refused; nothing is written into it."""
    from support.cli import snapshot

    elsewhere = tmp_path / "attacker"
    elsewhere.mkdir()
    (tmp_path / directory).symlink_to(elsewhere)
    before = snapshot(data_dir)
    result = CliRunner().invoke(cli, [str(a) for a in command(data_dir, tmp_path)], catch_exceptions=False)
    assert result.exit_code != 0 and "is a symlink" in result.output, result.output
    assert list(elsewhere.iterdir()) == []
    assert snapshot(data_dir)[0] == before[0]  # nothing issued, no credential registered
