"""One ceremony step at a time: shown, confirmed by the administrator and every witness (custodians
too where their shares are involved) unless ``--yes``, carried out, and transcribed with what it
read, what it wrote (SHA-256), the keys it touched (SPKI SHA-256), who confirmed, and when.

``Run`` is what every ceremony kind (``kinds``, ``custody``) works through; ``runner`` validates a
ceremony file and runs its kind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from qtsp import files
from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import PublicKey, key_name

from . import transcript
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


def key_entry(role: str, ref: str | None, public: PublicKey, *, ceremony_key: bool = False,
              attributes: dict[str, bool] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"role": role, "ref": ref, "type": key_name(public), "fingerprint": fingerprint(public),
                             "ceremony_key": ceremony_key}
    if attributes is not None:
        entry["attributes"] = attributes
    return entry


def cert_details(cert: x509.Certificate) -> dict[str, Any]:
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": format(cert.serial_number, "X"), "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "sha256": hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest(),
            "public_key_fingerprint": fingerprint(cert.public_key())}


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
        files.ensure_dir(target.parent)
        try:
            files.write_new(target, data, mode=mode, private=not mode & 0o077, sync=True)
        except QTSPError as exc:
            raise QTSPError(exc.kind, f"{exc.detail}: it appeared during the ceremony") from None
        return {"name": name, "path": self.writer.relative(target), "sha256": file_sha256(target)}

    def input_entry(self, path: Path) -> dict[str, str]:
        return {"path": str(path), "sha256": file_sha256(path)}
