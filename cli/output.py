"""Rendering: readable text for people, ``--json`` for scripts; errors as one line."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path
from typing import Any, Callable

import click

from qtsp.config import DATA_DIR_ENV, resolve_data_dir
from qtsp.core.errors import Kind, QTSPError
from qtsp.services.context import parse_instant, reset_clock, travel_to


def common(func: Callable[..., Any]) -> Callable[..., Any]:
    """--data-dir and --json on every command; QTSPError becomes a one-line error + exit code."""

    @click.option("--data-dir", "data_dir", envvar=DATA_DIR_ENV, type=click.Path(file_okay=False, path_type=Path),
                  help=f"sandbox directory (default ./qtsp-data, or ${DATA_DIR_ENV})")
    @click.option("--json", "as_json", is_flag=True, help="machine-readable output")
    @click.option("--at", "at", metavar="TIME", default=None,
                  help="act as of another time (sandbox time travel), ISO 8601 with a zone: 2027-06-01T00:00Z")
    @functools.wraps(func)
    def wrapper(*args: Any, data_dir: Path | None, as_json: bool, at: str | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        ctx.obj = {"json": as_json, "data_dir": resolve_data_dir(str(data_dir) if data_dir else None), "at": None}
        token = None
        try:
            if at is not None:
                if getattr(func, "no_time_travel", False):
                    raise QTSPError(Kind.MALFORMED, f"--at does not apply to '{ctx.info_name}'"
                                    " (for the service, set time_travel = true and send X-QTSP-Time)")
                ctx.obj["at"] = parse_instant(at)
                token = travel_to(ctx.obj["at"])
            return func(*args, **kwargs)
        except QTSPError as exc:
            fail(exc, as_json)
        except OSError as exc:
            fail(QTSPError(Kind.STORAGE, f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": ")), as_json)
        finally:
            if token is not None:  # invoked in process (CliRunner, a library caller): the clock comes back
                reset_clock(token)

    return wrapper


def fail(exc: QTSPError, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"error": exc.kind.value, "detail": exc.detail, "findings": exc.findings}), err=True)
    else:
        click.echo(f"error: {exc.detail}", err=True)
    sys.exit(exc.exit_code)


def data_dir() -> Path:
    return click.get_current_context().obj["data_dir"]


def no_time_travel(func: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a command that refuses --at (long-running processes: serve, scheduler)."""
    func.no_time_travel = True  # type: ignore[attr-defined]
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
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])
