"""``qtsp/files.py``, the one way qtsp writes a file: new files never through a symlink nor over
anything, private ones 0600 whatever the umask, rewritten ones renamed over (a symlink replaced, not
followed), output directories that are symlinks or another user's refused, the data dir's files
tightened. And a scan of the source that keeps it the only way (the commands raced one by one:
tests/unit/cli/test_file_races.py; the data dir's modes: tests/unit/cli/test_data_dir_modes.py)."""

from __future__ import annotations

import ast
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from qtsp import files
from qtsp.core.errors import Kind, QTSPError
from support import ROOT


@contextmanager
def umask(value: int) -> Iterator[None]:
    old = os.umask(value)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# --- new files ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mask", [0o000, 0o022, 0o277], ids=["umask-000", "umask-022", "umask-277"])
def test_private_files_are_0600_whatever_the_umask(tmp_path: Path, mask: int) -> None:
    with umask(mask):
        path = files.write_new(tmp_path / "key.pem", b"secret", private=True)
    assert mode(path) == 0o600 and path.read_bytes() == b"secret"


@pytest.mark.parametrize("planted", ["file", "symlink", "dangling", "directory"])
def test_write_new_refuses_whatever_is_there_and_leaves_it(tmp_path: Path, planted: str) -> None:
    victim, target = tmp_path / "victim", tmp_path / "out.pem"
    victim.write_bytes(b"do not touch")
    if planted == "file":
        target.write_bytes(b"mine")
    elif planted == "symlink":
        target.symlink_to(victim)
    elif planted == "dangling":
        target.symlink_to(tmp_path / "nowhere")
    else:
        target.mkdir()
    with pytest.raises(QTSPError) as err:
        files.write_new(target, b"attacker-chosen place")
    assert err.value.kind is Kind.CONFLICT and "refusing to overwrite" in err.value.detail
    assert victim.read_bytes() == b"do not touch" and not (tmp_path / "nowhere").exists()
    assert target.read_bytes() == b"mine" if planted == "file" else True


def test_a_failed_write_removes_only_its_own_half_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_fdopen(fd: int, *args: object, **kwargs: object) -> object:
        os.close(fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "fdopen", failing_fdopen)
    with pytest.raises(OSError):
        files.write_new(tmp_path / "cert.pem", b"x")
    assert not (tmp_path / "cert.pem").exists()


# --- rewritten data-dir files -----------------------------------------------------------------------


def test_replace_renames_over_a_symlink_without_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"do not touch")
    (tmp_path / "root.pem").symlink_to(victim)
    files.replace(tmp_path / "root.pem", b"new certificate")
    assert victim.read_bytes() == b"do not touch"
    assert not (tmp_path / "root.pem").is_symlink() and (tmp_path / "root.pem").read_bytes() == b"new certificate"
    files.replace(tmp_path / "root.pem", b"newer")
    assert (tmp_path / "root.pem").read_bytes() == b"newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["root.pem", "victim"]  # no temporary left


# --- directories --------------------------------------------------------------------------------------


def test_ensure_dir_refuses_a_symlink_and_makes_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(QTSPError, match="is a symlink"):
        files.ensure_dir(tmp_path / "link")
    made = files.ensure_dir(tmp_path / "a" / "b", private=True)
    assert made == [tmp_path / "a", tmp_path / "a" / "b"] and mode(tmp_path / "a" / "b") == 0o700
    assert files.ensure_dir(tmp_path / "a" / "b") == []  # there already, ours: fine
    files.remove_dirs(made)
    assert not (tmp_path / "a").exists()


def test_ensure_dir_refuses_another_users_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    planted = tmp_path / "out"
    planted.mkdir()
    if os.geteuid() == 0:
        os.chown(planted, 65534, 65534)  # nobody's, planted in a shared /tmp before the user's command
    else:
        monkeypatch.setattr(files.os, "geteuid", lambda: os.getuid() + 1)
    with pytest.raises(QTSPError, match="belongs to another user"):
        files.ensure_dir(planted)


# --- the data dir's modes -----------------------------------------------------------------------------


def test_private_file_tightens_an_open_file_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "qtsp.db"
    db.write_bytes(b"rows")
    db.chmod(0o644)
    files.private_file(db)
    assert mode(db) == 0o600 and "was mode 0644" in caplog.text
    caplog.clear()
    files.private_file(db)
    assert caplog.text == ""  # already right: nothing said
    with umask(0o000):
        files.private_file(tmp_path / "new.db", create=True)
    assert mode(tmp_path / "new.db") == 0o600
    files.private_file(tmp_path / "absent")  # not made without create
    assert not (tmp_path / "absent").exists()


# --- the one way ----------------------------------------------------------------------------------------

# Calls that write or create on the file system; allowed only in qtsp/files.py.
WRITING_METHODS = {"write_bytes", "write_text", "mkdir", "touch", "symlink_to", "hardlink_to", "rename", "chmod"}
WRITING_FUNCTIONS = {("os", "open"), ("os", "mkdir"), ("os", "makedirs"), ("os", "replace"), ("os", "rename"),
                     ("os", "symlink"), ("os", "link"), ("os", "chmod"), ("shutil", "copy"), ("shutil", "copy2"),
                     ("shutil", "copyfile"), ("shutil", "copytree"), ("shutil", "move"), ("tempfile", "mkstemp"),
                     ("tempfile", "NamedTemporaryFile"), ("tempfile", "mkdtemp")}


def _writing_calls(path: Path, base: Path = ROOT) -> Iterator[str]:
    where = path.relative_to(base)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute):
            owner = func.value.id if isinstance(func.value, ast.Name) else None
            if (owner, func.attr) in WRITING_FUNCTIONS:
                yield f"{where}:{node.lineno}: {owner}.{func.attr}"
            elif func.attr in WRITING_METHODS and owner not in ("files", "os", "shutil"):
                yield f"{where}:{node.lineno}: .{func.attr}()"
            elif func.attr == "open" and owner != "os" and _write_mode(node, 0):
                yield f"{where}:{node.lineno}: .open(.., write mode)"
        elif isinstance(func, ast.Name) and func.id == "open" and _write_mode(node, 1):
            yield f"{where}:{node.lineno}: open(.., write mode)"


def _write_mode(call: ast.Call, position: int) -> bool:
    given = [k.value for k in call.keywords if k.arg == "mode"] + call.args[position:position + 1]
    return any(isinstance(m, ast.Constant) and isinstance(m.value, str) and set(m.value) & set("wax+") for m in given)


LOCK_PROBE = """
import fcntl, sys
with open(sys.argv[1], 'r+b') as fh:
    try:
        fcntl.lockf(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        print('held')
    else:
        print('free')
"""


def test_checking_a_file_s_mode_keeps_this_process_s_locks_on_it(tmp_path: Path) -> None:
    """SQLite's locks are POSIX locks; closing any descriptor of the file drops them all. The mode check of
    the database and its -shm file (every ``open_sandbox``) must not: tests/system/web/
    test_ocsp_reopened_sandbox.py shows what a lost lock did to OCSP."""
    import fcntl
    import subprocess
    import sys

    path = tmp_path / "qtsp.db-shm"
    path.write_bytes(b"\0" * 64)
    os.chmod(path, 0o644)
    with open(path, "r+b") as held:
        fcntl.lockf(held, fcntl.LOCK_SH)  # as SQLite holds its shared-memory lock
        files.private_file(path)
        probe = subprocess.run([sys.executable, "-c", LOCK_PROBE, str(path)], capture_output=True, text=True, timeout=30)
        assert probe.stdout.strip() == "held", "the mode check dropped this process's lock on the file"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_every_file_is_written_through_qtsp_files() -> None:
    sources = [p for package in ("qtsp", "cli", "ceremonies", "ca_store") for p in (ROOT / package).rglob("*.py")
               if "migrations" not in p.parts and p != ROOT / "qtsp" / "files.py"]
    found = [call for path in sources for call in _writing_calls(path)]
    assert not found, "write files through qtsp/files.py (O_EXCL|O_NOFOLLOW, 0600 keys):\n" + "\n".join(found)


def test_the_scan_sees_what_it_must_refuse(tmp_path: Path) -> None:
    sample = tmp_path / "probe.py"
    sample.write_text("import os, shutil\nfrom pathlib import Path\n"
                      "Path('x').write_bytes(b'')\nopen('y', 'w')\nos.open('z', os.O_CREAT)\nshutil.copy2('a', 'b')\n"
                      "Path('d').mkdir()\nPath('f').open(mode='ab')\nopen('r')\nPath('g').read_bytes()\n")
    found = list(_writing_calls(sample, tmp_path))
    assert [f.split(": ", 1)[1] for f in found] == [".write_bytes()", "open(.., write mode)", "os.open", "shutil.copy2",
                                                   ".mkdir()", ".open(.., write mode)"]
