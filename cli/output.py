"""Rendering: readable text for people, ``--json`` for scripts; errors as one line.

Imported by every command module, so it stays light: the sandbox context (SQLAlchemy) is
imported when a command runs, not when ``--help`` is asked for; the clock (``--at``) is the
standard library only.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, cast
from collections.abc import Callable

import click

from qtsp.clock import reset_clock, travel_to
from qtsp.config import DATA_DIR_ENV, resolve_data_dir
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.instants import parse_instant

from .operator import AT_KEY, OPERATOR_ENV, OPERATOR_KEY, valid_operator


def common(func: Callable[..., Any]) -> Callable[..., Any]:
    """--data-dir and --json on every command; QTSPError becomes a one-line error + exit code."""

    @click.option("--data-dir", "data_dir", envvar=DATA_DIR_ENV, type=click.Path(file_okay=False, path_type=Path),
                  help=f"sandbox directory (default ./qtsp-data, or ${DATA_DIR_ENV})")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @click.option("--at", "at", metavar="TIME", default=None,
                  help="act as of another time (sandbox time travel), ISO 8601: 2027-06-01T00:00Z, "
                       "2027-06-01T02:00+02:00; without a zone it is UTC (2027-06-01, 2027-06-01T12:00)")
    @functools.wraps(func)
    def wrapper(*args: Any, data_dir: Path | None, as_json: bool, at: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.obj = {"json": as_json, "data_dir": resolve_data_dir(str(data_dir) if data_dir else None), "at": None}
        token = None
        notes = _StderrNotes()
        FILES_LOG.addHandler(notes)
        try:
            before = ctx.meta.get(AT_KEY)  # qtsp --at TIME <command>
            if before is not None and at is not None and before != at:
                raise QTSPError(Kind.MALFORMED, f"--at given twice, {before!r} before the command and {at!r} after it")
            at = at if at is not None else before
            if at is not None:
                if getattr(func, "no_time_travel", False):
                    raise QTSPError(Kind.MALFORMED, f"--at does not apply to '{ctx.info_name}'"
                                    " (for the service, set time_travel = true and send X-QTSP-Time)")
                ctx.obj["at"] = parse_instant(at, assume_utc=True)
                token = travel_to(ctx.obj["at"])
            return func(*args, **kwargs)
        except QTSPError as exc:
            fail(exc, as_json)
        except OSError as exc:
            fail(QTSPError(Kind.STORAGE, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")), as_json)
        finally:
            FILES_LOG.removeHandler(notes)
            if token is not None:  # invoked in process (CliRunner, a library caller): the clock comes back
                reset_clock(token)

    return wrapper


FILES_LOG = logging.getLogger("qtsp.files")


class _StderrNotes(logging.Handler):
    """What qtsp.files warns about (a data dir that was open to other users, now tightened) is said on
    stderr by every command, whatever logging is set up (`serve` sets it up later, for its workers)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


def fail(exc: QTSPError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": exc.kind.value, "detail": exc.detail, "findings": exc.findings}), err=True)
    else:
        click.echo(f"error: {exc.detail}", err=True)
    sys.exit(exc.exit_code)


def _os_user() -> str:
    """The account this process runs as, from the password database (not $USER, which anyone sets)."""
    import pwd

    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name[:48] or f"uid-{uid}"
    except KeyError:  # a uid with no entry (containers)
        return f"uid-{uid}"


def cli_actor() -> str:
    """Who acts, as the audit log records it: ``cli:<OS user>``, or ``cli:<operator>`` when ``--operator``
    (or ``$QTSP_OPERATOR``) names the person at the keyboard, with the OS account beside it when it differs:
    ``cli:alice (os user qtsp)``. Every command that changes something passes it to the service."""
    os_user = _os_user()
    meta = click.get_current_context().meta
    # A command run on its own (a library caller, CliRunner on the command) has no root group: the environment.
    operator = meta[OPERATOR_KEY] if OPERATOR_KEY in meta else os.environ.get(OPERATOR_ENV) or None
    if operator is not None and not valid_operator(operator):
        raise QTSPError(Kind.MALFORMED, f"${OPERATOR_ENV}: 1-64 letters, digits and . _ @ + - (starting with a letter or digit)")
    if not operator or operator == os_user:
        return f"cli:{os_user}"
    return f"cli:{operator} (os user {os_user})"


def data_dir() -> Path:
    return click.get_current_context().obj["data_dir"]


def no_time_travel(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a command that refuses --at (long-running processes: serve, scheduler)."""
    cast(Any, func).no_time_travel = True  # read back by getattr in common()
    return func


def as_json() -> bool:
    return bool(click.get_current_context().obj["json"])


def emit(data: Any, text: str | Callable[[], str]) -> None:
    if as_json():
        click.echo(json.dumps(data, indent=2, default=str))
    else:
        click.echo(text() if callable(text) else text)


def table(rows: list[list[str]], headers: list[str]) -> str:
    if not rows:
        return "(none)"
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=True)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def subject_text(name: Any) -> str:
    """A certificate name as people read it: ``CN=..., organizationIdentifier=..., O=..., C=...``."""
    from qtsp.core.names import readable_name

    return readable_name(name)


def subject_of_text(rfc4514: str) -> str:
    """The same, from a name kept as RFC 4514 text (the store's ``subject`` column, validator paths)."""
    from qtsp.core.names import readable_rfc4514

    return readable_rfc4514(rfc4514)
