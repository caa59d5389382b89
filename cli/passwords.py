"""Where the bundle.p12 password comes from: a file, the environment, a hidden prompt, or the
command line (visible to every user of the machine in ``ps`` and kept in shell history).

Exactly one source: two would leave the user unsure which password protects the bundle. The
password itself never appears in a message, only where it came from.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from collections.abc import Callable

import click

from qtsp.core.errors import Kind, QTSPError

P12_ENV = "QTSP_P12_PASSWORD"
MAX_PASSWORD_FILE = 4096


def p12_password_options(func: Callable[..., Any], *, lead: str = "also write bundle.p12") -> Callable[..., Any]:
    """The four sources of the bundle.p12 password; ``lead`` says what the password is for."""
    func = click.option("--p12-password-prompt", is_flag=True,
                        help=f"{lead}: ask for its password (hidden, typed twice)")(func)
    func = click.option("--p12-password-file", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE",
                        help=f"{lead}, with the password on the first line of FILE")(func)
    func = click.option("--p12-password", metavar="PASSWORD",
                        help=f"{lead} with PASSWORD; other users see it in `ps`: prefer "
                             f"--p12-password-file, ${P12_ENV} or --p12-password-prompt")(func)
    return func


def sample_p12_password_options(func: Callable[..., Any]) -> Callable[..., Any]:
    return p12_password_options(func, lead='protect the samples\' bundle.p12 (instead of "sandbox")')


def wants_p12(value: str | None, file: Path | None, prompt: bool) -> str | None:
    """The one source given (its name, for messages), or None; refuses two."""
    env = os.environ.get(P12_ENV) or None  # set but empty counts as unset, as shells use it
    given = [name for name, present in (("--p12-password", value is not None), ("--p12-password-file", file is not None),
                                        (f"${P12_ENV}", env is not None), ("--p12-password-prompt", prompt)) if present]
    if len(given) > 1:
        raise QTSPError(Kind.MALFORMED, f"the bundle.p12 password can come from one place only; got {' and '.join(given)}")
    return given[0] if given else None


def read_p12_password(value: str | None, file: Path | None, prompt: bool) -> str | None:
    """The password from its source; call after ``wants_p12`` and the checks that might refuse the command."""
    source = wants_p12(value, file, prompt)
    if source is None:
        return None
    if value is not None:
        password = value
    elif file is not None:
        password = _from_file(file)
    elif prompt:
        try:
            password = click.prompt("bundle.p12 password", hide_input=True, confirmation_prompt=True, err=True)
        except click.Abort:
            raise QTSPError(Kind.MALFORMED, "no bundle.p12 password given at the prompt") from None
    else:
        password = os.environ[P12_ENV]
    if not password:
        raise QTSPError(Kind.MALFORMED, f"the bundle.p12 password from {source} is empty")
    return password


def _from_file(path: Path) -> str:
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_PASSWORD_FILE + 1)
    except OSError as exc:
        raise QTSPError(Kind.NOT_FOUND, f"cannot read the password file {path}: {exc.strerror}") from None
    if len(data) > MAX_PASSWORD_FILE:
        raise QTSPError(Kind.MALFORMED, f"the password file {path} is larger than {MAX_PASSWORD_FILE} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise QTSPError(Kind.MALFORMED, f"the password file {path} is not UTF-8 text") from None
    lines = text.splitlines()
    return lines[0] if lines else ""  # the first line, without its line end (echo 'pw' > file)
