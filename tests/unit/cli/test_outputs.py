"""What the CLI writes: never through a planted symlink, never over a file that appears after the
check; and where the bundle.p12 password comes from (a file, the environment, a prompt, the
command line), one source at a time, never echoed."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from cli.main import cli
from qtsp.core.errors import Kind, QTSPError
from qtsp.services import output
from support.cli import assert_refused, issue_args, ok, run, snapshot

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _no_password_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("QTSP_P12_PASSWORD", raising=False)  # a developer's own must not leak in


def invoke(*args: Any, env: dict[str, str] | None = None, input: str | None = None) -> Result:
    return CliRunner().invoke(cli, [str(a) for a in args], env=env, input=input, catch_exceptions=False)


def assert_no_secret(result: Result) -> None:
    assert PASSWORD not in result.output and "PRIVATE KEY" not in result.output


# --- the safe writer ------------------------------------------------------------------------------


def test_write_new_creates_private_files_0600_and_never_replaces(tmp_path: Path) -> None:
    key = output.write_new(tmp_path / "key.pem", b"secret", private=True)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600 and key.read_bytes() == b"secret"
    with pytest.raises(QTSPError) as err:
        output.write_new(key, b"other")
    assert err.value.kind is Kind.CONFLICT and key.read_bytes() == b"secret"


@pytest.mark.parametrize("target_exists", [True, False], ids=["to-a-file", "dangling"])
def test_write_new_never_follows_a_symlink(tmp_path: Path, target_exists: bool) -> None:
    victim = tmp_path / "victim"
    if target_exists:
        victim.write_bytes(b"do not touch")
    (tmp_path / "cert.pem").symlink_to(victim)
    with pytest.raises(QTSPError) as err:
        output.write_new(tmp_path / "cert.pem", b"attacker-chosen place")
    assert err.value.kind is Kind.CONFLICT
    assert (victim.read_bytes() == b"do not touch") if target_exists else not victim.exists()
    assert (tmp_path / "cert.pem").is_symlink()


# --- issuing into a directory someone else can write to -------------------------------------------


@pytest.mark.parametrize("name", ["cert.pem", "chain.pem", "key.pem", "bundle.p12"])
@pytest.mark.parametrize("target_exists", [True, False], ids=["to-a-file", "dangling"])
def test_symlink_planted_in_the_out_dir_is_refused_before_issuing(data_dir: Path, tmp_path: Path, name: str,
                                                                  target_exists: bool) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim"
    out.mkdir()
    if target_exists:
        victim.write_bytes(b"do not touch")
    (out / name).symlink_to(victim)
    before = snapshot(data_dir)
    result = invoke(*issue_args(data_dir, out), "--p12-password", PASSWORD)
    assert_refused(result, "refusing to overwrite")
    assert result.exit_code == 5
    assert snapshot(data_dir) == before  # no certificate issued for output that cannot be written
    assert (victim.read_bytes() == b"do not touch") if target_exists else not victim.exists()
    assert [p.name for p in out.iterdir()] == [name] and (out / name).is_symlink()


@pytest.mark.parametrize("plant", ["file", "symlink"])
@pytest.mark.parametrize("name", ["cert.pem", "key.pem"])
def test_a_file_that_appears_after_the_check_is_not_overwritten(data_dir: Path, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch, plant: str, name: str) -> None:
    out, victim = tmp_path / "out", tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    checked = output.check_out_dir

    def check_then_race(directory: Path, **kwargs: Any) -> None:
        checked(directory, **kwargs)  # the directory passes the check...
        directory.mkdir(parents=True, exist_ok=True)  # ...then something lands where a file will go
        if plant == "file":
            (directory / name).write_bytes(b"planted")
        else:
            (directory / name).symlink_to(victim)

    monkeypatch.setattr(output, "check_out_dir", check_then_race)
    before = snapshot(data_dir)
    result = run(*issue_args(data_dir, out))
    assert_refused(result, "refusing to overwrite")
    assert snapshot(data_dir) == before
    assert victim.read_bytes() == b"do not touch"
    assert [p.name for p in out.iterdir()] == [name]  # what we had created before the clash is gone
    if plant == "file":
        assert (out / name).read_bytes() == b"planted"


def test_a_refused_issuance_leaves_no_empty_files(data_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "new" / "out"
    ok(run("register", "withdraw", "PSDBE-NBB-0123456789", "--data-dir", data_dir))
    assert_refused(run(*issue_args(data_dir, out)), "withdrawn")
    assert not (tmp_path / "new").exists()


# --- the bundle.p12 password -------------------------------------------------------------------------


def _bundle_password_works(out: Path) -> None:
    key, cert, chain = pkcs12.load_key_and_certificates((out / "bundle.p12").read_bytes(), PASSWORD.encode())
    assert cert == x509.load_pem_x509_certificate((out / "cert.pem").read_bytes()) and key is not None and len(chain) == 2
    assert stat.S_IMODE((out / "bundle.p12").stat().st_mode) == 0o600


@pytest.mark.parametrize("source", ["file", "file-crlf", "env", "prompt", "option"])
def test_p12_password_from_each_source(data_dir: Path, tmp_path: Path, source: str) -> None:
    out, args, env, typed = tmp_path / "out", issue_args(data_dir, tmp_path / "out"), None, None
    if source.startswith("file"):
        secret = tmp_path / "p12.pass"
        secret.write_bytes(PASSWORD.encode() + (b"\r\n" if source == "file-crlf" else b"\n"))
        args += ["--p12-password-file", secret]
    elif source == "env":
        env = {"QTSP_P12_PASSWORD": PASSWORD}
    elif source == "prompt":
        args += ["--p12-password-prompt"]
        typed = f"{PASSWORD}\n{PASSWORD}\n"
    else:
        args += ["--p12-password", PASSWORD]
    result = invoke(*args, env=env, input=typed)
    assert result.exit_code == 0, result.output
    assert_no_secret(result)
    _bundle_password_works(out)


@pytest.mark.parametrize("extra, env, fragment", [
    (["--p12-password", PASSWORD, "--p12-password-prompt"], None, "--p12-password and --p12-password-prompt"),
    (["--p12-password", PASSWORD], {"QTSP_P12_PASSWORD": PASSWORD}, "--p12-password and $QTSP_P12_PASSWORD"),
    (["--p12-password-file", "PASSFILE"], {"QTSP_P12_PASSWORD": PASSWORD}, "--p12-password-file and $QTSP_P12_PASSWORD"),
    (["--p12-password-file", "EMPTYFILE"], None, "from --p12-password-file is empty"),
    (["--p12-password-file", "MISSING"], None, "cannot read the password file"),
    (["--p12-password", ""], None, "from --p12-password is empty"),
])
def test_p12_password_sources_refused_and_nothing_issued(data_dir: Path, tmp_path: Path, extra: list[str],
                                                         env: dict[str, str] | None, fragment: str) -> None:
    files = {"PASSFILE": PASSWORD + "\n", "EMPTYFILE": "\n"}
    for marker, text in files.items():
        (tmp_path / marker).write_text(text)
    extra = [str(tmp_path / e) if e in (*files, "MISSING") else e for e in extra]
    out = tmp_path / "out"
    before = snapshot(data_dir)
    result = invoke(*issue_args(data_dir, out), *extra, env=env)
    assert_refused(result, fragment)
    assert_no_secret(result)
    assert snapshot(data_dir) == before and not out.exists()


def test_prompt_that_never_matches_issues_nothing(data_dir: Path, tmp_path: Path) -> None:
    before = snapshot(data_dir)
    result = invoke(*issue_args(data_dir, tmp_path / "out"), "--p12-password-prompt", input="one\ntwo\n")
    assert result.exit_code == 2 and "no bundle.p12 password given" in result.stderr
    assert "one" not in result.stdout and snapshot(data_dir) == before


def test_p12_with_a_csr_is_refused_before_asking(data_dir: Path, tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    from support.cli import csr_der

    csr = tmp_path / "req.der"
    csr.write_bytes(csr_der(ec.generate_private_key(ec.SECP256R1())))
    result = invoke("issue", "qsealc", "--data-dir", data_dir, "--org-id", "PSDBE-NBB-0123456789", "--csr", csr,
                    "--out", tmp_path / "out", "--p12-password-prompt", input=f"{PASSWORD}\n{PASSWORD}\n")
    assert_refused(result, "needs the private key")
    assert "password" not in result.stdout.lower()  # never prompted


def test_an_empty_environment_variable_counts_as_unset(data_dir: Path, tmp_path: Path) -> None:
    result = invoke(*issue_args(data_dir, tmp_path / "out"), env={"QTSP_P12_PASSWORD": ""})
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "out" / "bundle.p12").exists()


def test_help_says_the_command_line_password_is_visible() -> None:
    text = invoke("issue", "qwac", "--help").output
    assert "`ps`" in text and "--p12-password-file" in text and "QTSP_P12_PASSWORD" in text


# --- the samples of `qtsp sandbox` (make run) ----------------------------------------------------------


@pytest.mark.parametrize("source", ["default", "file", "env", "prompt"])
def test_sandbox_samples_p12_password_from_a_file_the_environment_or_a_prompt(data_dir: Path, tmp_path: Path,
                                                                              source: str) -> None:
    """Every command that writes a bundle.p12 takes its password from a file, the environment or a
    prompt; the sample password "sandbox" is shown only when it is the one used."""
    out, args, env, typed = tmp_path / "samples", ["sandbox", "--data-dir", data_dir, "--out", tmp_path / "samples"], None, None
    if source == "file":
        (tmp_path / "p12.pass").write_text(PASSWORD + "\n")
        args += ["--p12-password-file", tmp_path / "p12.pass"]
    elif source == "env":
        env = {"QTSP_P12_PASSWORD": PASSWORD}
    elif source == "prompt":
        args += ["--p12-password-prompt"]
        typed = f"{PASSWORD}\n{PASSWORD}\n"
    result = invoke(*args, env=env, input=typed)
    assert result.exit_code == 0, result.output
    assert_no_secret(result)
    password = "sandbox" if source == "default" else PASSWORD
    for kind in ("qwac", "qsealc"):
        key, cert, _ = pkcs12.load_key_and_certificates((out / kind / "bundle.p12").read_bytes(), password.encode())
        assert key is not None and cert == x509.load_pem_x509_certificate((out / kind / "cert.pem").read_bytes())
    shown = [line for line in result.stdout.splitlines() if "PKCS#12 password" in line]
    assert shown == (["  PKCS#12 password: sandbox"] if source == "default" else [shown[0]])
    if source != "default":  # where it came from, never what it is
        assert "sandbox" not in shown[0]
        assert {"file": "--p12-password-file", "env": "$QTSP_P12_PASSWORD", "prompt": "--p12-password-prompt"}[source] in shown[0]
    args[args.index(out)] = tmp_path / "again"
    as_json = invoke(*args, "--json", env=env, input=typed)
    assert as_json.exit_code == 0, as_json.output
    assert_no_secret(as_json)
    assert json.loads(as_json.stdout)["p12_password"] == ("sandbox" if source == "default" else None)
