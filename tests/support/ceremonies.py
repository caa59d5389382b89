"""Key ceremony helpers (tests/unit/ceremonies/, tests/system/ceremonies/): run a ceremony file without
prompts, and copy a ceremony file with an edit (``change(data)``, or ``set_(path, value)``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from ceremonies import runner
from qtsp.clock import utcnow


def run(path: Path, *, yes: bool = True) -> runner.Outcome:
    return runner.run(path, assume_yes=yes, echo=lambda _: None, confirm=lambda _: True, ask=lambda _: None, clock=utcnow)


def edit(src: Path, dst: Path, change: Any) -> Path:
    """A copy of a ceremony file with ``change(data)`` applied (a dict edit)."""
    data = yaml.safe_load(src.read_text())
    change(data)
    dst.write_text(yaml.safe_dump(data, sort_keys=False))
    return dst


def set_(path: str, value: Any) -> Any:
    def change(d: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        if value is DELETE:
            del d[last]
        else:
            d[last] = value
    return change


DELETE = object()
