"""``qtsp`` starts without its heavy parts: which modules a command imports, not how long it takes
(timings vary by machine; ``benchmarks/cli_startup.py`` prints those). Also shell completion through
the lazy command table, and the table's one-line helps against the commands' own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.lazy import LazyChoice, LazyGroup
from cli.main import COMMANDS, cli
from support import ROOT

HEAVY = ("pkilint", "sqlalchemy", "alembic", "flask", "iso639", "ca_store", "granian", "apscheduler", "signxml", "hvac")
QTSP = Path(sys.executable).parent / "qtsp"

# Runs a command in a fresh interpreter as the `qtsp` entry point does, then lists what got imported.
PROBE = """
import json, sys
from cli.main import cli
try:
    cli.main(args=sys.argv[2:], prog_name="qtsp")
except SystemExit:
    pass
with open(sys.argv[1], "w") as handle:
    json.dump(sorted(sys.modules), handle)
"""


def imported_by(tmp_path: Path, *args: str) -> set[str]:
    listing = tmp_path / "modules.json"
    done = subprocess.run([sys.executable, "-c", PROBE, str(listing), *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60, env={k: v for k, v in os.environ.items() if not k.startswith("QTSP_")})
    assert done.returncode == 0, done.stderr
    return set(json.loads(listing.read_text()))


def heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in HEAVY)


LIGHT = [["--help"], ["--version"], ["issue", "--help"], ["certs", "--help"], ["scenarios", "--help"],
         ["scenarios", "responder", "--help"], ["issue", "qwac", "--help"], ["issue", "bulk", "--help"]]
LIGHT += [[name, "--help"] for name in ("audit", "ca", "ceremony", "crl", "keys", "nca", "register", "tl", "tokens",
                                         "validate", "init", "sandbox")]


@pytest.mark.parametrize("args", LIGHT, ids=" ".join)
def test_help_and_version_import_nothing_heavy(tmp_path: Path, args: list[str]) -> None:
    modules = imported_by(tmp_path, *args)
    assert "cli.main" in modules  # the probe ran the real entry point
    assert heavy(modules) == []


def test_top_level_help_imports_no_command_module(tmp_path: Path) -> None:
    modules = imported_by(tmp_path, "--help")
    assert sorted(m for m in modules if m.startswith("cli.commands_")) == []


def test_a_command_that_runs_still_gets_what_it_needs(tmp_path: Path) -> None:
    """The probe is not blind: a command that reaches the store does import SQLAlchemy."""
    modules = imported_by(tmp_path, "ca", "list", "--data-dir", str(tmp_path / "none"))
    assert "sqlalchemy" in modules and "cli.commands_ca" in modules


def test_the_table_lists_every_command_with_its_own_short_help() -> None:
    for name, (target, short) in COMMANDS.items():
        command = cli.get_command(click.Context(cli), name)
        assert command is not None and command.callback.__module__ == target.split(":")[0], name
        assert command.get_short_help_str(500) == short, name
    responder = cli.get_command(click.Context(cli), "scenarios").get_command(click.Context(cli), "responder")
    assert responder.get_short_help_str(500) == cli.get_command(click.Context(cli), "scenarios").lazy["responder"][1]


def test_help_lists_the_commands_and_a_typo_gets_a_suggestion() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()]
    assert listed == sorted(COMMANDS)
    typo = CliRunner().invoke(cli, ["isue"])
    assert typo.exit_code == 2 and "No such command 'isue'" in typo.output and "issue" in typo.output


def test_a_wrong_table_entry_says_which() -> None:
    group = LazyGroup(name="g", lazy={"bad": ("cli.main:COMMANDS", "not a command")})
    with pytest.raises(TypeError, match="cli.main:COMMANDS is not a click command"):
        group.get_command(click.Context(group), "bad")


def test_lazy_choice_reads_its_choices_when_first_needed() -> None:
    calls = []

    def load() -> tuple[str, ...]:
        calls.append(1)
        return ("operator", "auditor")

    @click.command()
    @click.option("--role", type=LazyChoice(load))
    def command(role: str) -> None:
        click.echo(role)

    assert calls == []
    assert CliRunner().invoke(command, ["--role", "auditor"]).output == "auditor\n"
    refused = CliRunner().invoke(command, ["--role", "root"])
    assert refused.exit_code == 2 and "'root' is not one of 'operator', 'auditor'" in refused.output
    assert len(calls) == 1


# --- shell completion (click's protocol, through the real entry point) ------------------------------


def complete(words: str, shell: str = "bash") -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("QTSP_")},
           "_QTSP_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    done = subprocess.run([str(QTSP)], capture_output=True, text=True, env=env, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.mark.parametrize("words, expected", [
    ("qtsp is", ["plain,issue"]),
    ("qtsp c", ["plain,ca", "plain,ceremony", "plain,certs", "plain,crl"]),
    ("qtsp crl sh", ["plain,show"]),
    ("qtsp scenarios responder ", ["plain,clear", "plain,list", "plain,set"]),
    ("qtsp issue qwac --p12-password-", ["plain,--p12-password-file", "plain,--p12-password-prompt"]),
])
def test_bash_completion_through_the_lazy_table(words: str, expected: list[str]) -> None:
    assert complete(words) == expected


def test_completion_scripts_are_generated() -> None:
    env = {**os.environ, "_QTSP_COMPLETE": "bash_source"}
    done = subprocess.run([str(QTSP)], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0 and "_QTSP_COMPLETE=bash_complete" in done.stdout and "complete -o" in done.stdout
    assert complete("qtsp is", shell="zsh") == ["plain", "issue", "Issue PSD2 certificates."]
