"""Running a ceremony: validate everything first, then one confirmed, transcribed step at a time.

Nothing is generated before the whole file validates (schema, inputs, outputs, people). Each
step is shown, confirmed by the administrator and every witness in turn (custodians too where
their shares are involved) unless ``--yes``, carried out, and written to the transcript with
what it read, what it wrote (SHA-256), the keys it touched (SPKI SHA-256), who confirmed, and
when. A failure writes an ``abort`` line; success a ``close`` line signed by the ceremony key.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from qtsp import __version__
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import PublicKey, key_type_of

from . import backends, schema, transcript
from .transcript import file_sha256, fingerprint

if TYPE_CHECKING:
    from qtsp.lint import Linter

Echo = Callable[[str], None]
Confirm = Callable[[str], bool]
Ask = Callable[[str], "str | None"]


@dataclass(frozen=True)
class Ceremony:
    path: Path
    sha256: str
    cfg: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.cfg["ceremony-type"])


@dataclass
class StepResult:
    value: Any = None
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: list[dict[str, str]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Outcome:
    transcript: Path
    final_hash: str
    result: dict[str, Any]
    signed: bool


def validate(path: Path) -> Ceremony:
    """The ceremony, or a QTSPError naming the first problem; nothing is written either way."""
    from .checks import semantic

    path = Path(path)
    raw = schema.load_yaml(path)
    cfg = schema.check(raw, path.resolve().parent)
    semantic(cfg)
    return Ceremony(path.resolve(), file_sha256(path), cfg)


def key_entry(role: str, ref: str | None, public: PublicKey, *, ceremony_key: bool = False,
              attributes: dict[str, bool] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": role, "ref": ref, "type": key_type_of(public), "fingerprint": fingerprint(public),
                             "ceremony_key": ceremony_key}
    if attributes is not None:
        entry["attributes"] = attributes
    return entry


def cert_details(cert: x509.Certificate) -> dict[str, Any]:
    import hashlib

    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": format(cert.serial_number, "X"), "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            "public_key_fingerprint": fingerprint(cert.public_key())}  # type: ignore[arg-type]


class Run:
    """One ceremony run: confirmation, output files and the transcript."""

    def __init__(self, ceremony: Ceremony, writer: transcript.Writer, *, assume_yes: bool, echo: Echo,
                 confirm: Confirm, ask: Ask, clock: Callable[[], dt.datetime]) -> None:
        self.ceremony, self.cfg, self.writer = ceremony, ceremony.cfg, writer
        self.assume_yes, self.echo, self.confirm, self.ask, self.clock = assume_yes, echo, confirm, ask, clock
        self.now = clock()  # one time for every certificate of the ceremony
        self.ceremony_signer: Any = None
        self.steps = 0

    @cached_property
    def linter(self) -> Linter:
        """The ceremony's pkilint validators and lint keys, made on first use (a ceremony has no sandbox)."""
        from qtsp.lint import Linter  # pkilint loads in ~0.5 s: not for validating a ceremony file

        return Linter()

    @property
    def people(self) -> dict[str, Any]:
        return dict(self.cfg["people"])

    def secret(self, prompt: str) -> str | None:
        return None if self.assume_yes else self.ask(prompt)

    def _confirmations(self, title: str, custodians: Sequence[str]) -> list[str]:
        if self.assume_yes:
            return []
        names = [self.people["administrator"], *self.people["witnesses"], *custodians]
        for name in names:
            if not self.confirm(f"    {name}: confirm this step?"):
                raise QTSPError(Kind.POLICY, f"{name} did not confirm {title!r}; the ceremony stopped there")
        return names

    def step(self, name: str, title: str, action: Callable[[], StepResult], *, show: Sequence[str] = (),
             custodians: Sequence[str] = ()) -> Any:
        self.steps += 1
        self.echo(f"\nStep {self.steps}: {title}")
        for line in show:
            self.echo(f"    {line}")
        confirmed = self._confirmations(title, custodians)
        result = action()
        self.writer.append({"step": name, "title": title, "at": self.clock().isoformat(),
                            "mode": "unattended (--yes)" if self.assume_yes else "interactive",
                            "confirmed_by": confirmed, "inputs": result.inputs, "outputs": result.outputs,
                            "keys": result.keys, "details": result.details})
        for out in result.outputs:
            self.echo(f"    wrote {out['path']}  sha256 {out['sha256']}")
        for key in result.keys:
            self.echo(f"    key {key['ref']} ({key['type']})  SPKI sha256 {key['fingerprint']}")
        return result.value

    def output(self, name: str, data: bytes, *, mode: int = 0o644, path: Path | None = None) -> dict[str, str]:
        """Write an output file, refusing to replace anything (O_EXCL), and describe it for the transcript."""
        target = path or self.cfg["outputs"][name]
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            raise QTSPError(Kind.CONFLICT, f"{target} appeared during the ceremony; refusing to overwrite it") from None
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return {"name": name, "path": self.writer.relative(target), "sha256": file_sha256(target)}

    def input_entry(self, path: Path) -> dict[str, str]:
        return {"path": str(path), "sha256": file_sha256(path)}


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
    from .kinds import KINDS

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
