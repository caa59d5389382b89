"""Running a ceremony: validate everything first, then one confirmed, transcribed step at a time.

Nothing is generated before the whole file validates (schema, inputs, outputs, people). Each
step is shown, confirmed by the administrator and every witness in turn (custodians too where
their shares are involved) unless ``--yes``, carried out, and written to the transcript with
what it read, what it wrote (SHA-256), the keys it touched (SPKI SHA-256), who confirmed, and
when (``steps.Run``). A failure writes an ``abort`` line; success a ``close`` line signed by the
ceremony key.
"""

from __future__ import annotations

import datetime as dt
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable

from qtsp import __version__
from qtsp.core.errors import QTSPError

from . import backends, schema, transcript
from .checks import semantic
from .steps import Ask, Ceremony, Confirm, Echo, Run
from .transcript import file_sha256, fingerprint


@dataclass(frozen=True)
class Outcome:
    transcript: Path
    final_hash: str
    result: dict[str, Any]
    signed: bool


def validate(path: Path) -> Ceremony:
    """The ceremony, or a QTSPError naming the first problem; nothing is written either way."""
    path = Path(path)
    raw = schema.load_yaml(path)
    cfg = schema.check(raw, path.resolve().parent)
    semantic(cfg)
    return Ceremony(path.resolve(), file_sha256(path), cfg)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, (Path, dt.datetime)):
        return str(value)
    return value


def _remembered(ask: Ask) -> Ask:
    answers: dict[str, str | None] = {}

    def wrapped(prompt: str) -> str | None:
        if prompt not in answers:
            answers[prompt] = ask(prompt)
        return answers[prompt]

    return wrapped


def run(path: Path, *, assume_yes: bool, echo: Echo, confirm: Confirm, ask: Ask,
        clock: Callable[[], dt.datetime]) -> Outcome:
    from .kinds import KINDS  # when a ceremony runs, not to validate one: the kinds load pkilint and the services

    ceremony = validate(path)
    ask = _remembered(ask)  # a PIN typed once serves every step that opens the same token
    for name in ("key",) if ceremony.kind in ("root", "intermediate", "ocsp-signer", "root-rollover") else ():
        if ceremony.cfg.get(name) is not None:
            backends.check_label_free(ceremony.cfg[name], None if assume_yes else ask)
    writer = transcript.Writer(ceremony.cfg["outputs"]["transcript"])
    ctx = Run(ceremony, writer, assume_yes=assume_yes, echo=echo, confirm=confirm, ask=ask, clock=clock)
    echo(f"Ceremony {ceremony.cfg['name']!r} ({ceremony.kind}), administrator {ctx.people['administrator']}, "
         f"witnesses {', '.join(ctx.people['witnesses'])}")
    writer.append({"step": "open", "format": transcript.FORMAT, "at": clock().isoformat(),
                   "mode": "unattended (--yes)" if assume_yes else "interactive",
                   "details": {"ceremony_type": ceremony.kind, "name": ceremony.cfg["name"], "file": str(ceremony.path),
                               "file_sha256": ceremony.sha256, "people": ceremony.cfg["people"],
                               "config": _jsonable(ceremony.cfg),
                               "tool": {"qtsp": __version__, "python": platform.python_version()}}})
    try:
        result = KINDS[ceremony.kind](ctx)
        signer = ctx.ceremony_signer
        signed_by = fingerprint(signer.public_key()) if signer is not None else None
        close = writer.append({"step": "close", "at": clock().isoformat(), "result": _jsonable(result),
                               "signed_by": signed_by}, signer=signer)
    except BaseException as exc:
        detail = exc.detail if isinstance(exc, QTSPError) else f"{type(exc).__name__}: {exc}"
        writer.append({"step": "abort", "at": clock().isoformat(), "details": {"error": detail}})
        raise
    finally:
        writer.close()
    echo(f"\nTranscript {writer.path}")
    echo(f"Final hash (witnesses, write this down): {close['hash']}")
    return Outcome(writer.path, close["hash"], result, signed_by is not None)
