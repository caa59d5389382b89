"""A real SoftHSM2 token store under the test's tmp dir: SOFTHSM2_CONF + tokens made by softhsm2-util.

The tests fail (never skip) when SoftHSM2 is missing: `.ci/run` installs it with apt.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

MISSING = "SoftHSM2 is missing: apt-get install softhsm2 (.ci/run installs it)"


def softhsm_util() -> str:
    found = shutil.which("softhsm2-util")
    if not found:
        raise RuntimeError(MISSING)
    return found


def softhsm_module() -> str:
    from qtsp.signers.pkcs11 import DEFAULT_MODULES

    for candidate in DEFAULT_MODULES:
        if Path(candidate).exists():
            return candidate
    raise RuntimeError(MISSING + " (no libsofthsm2.so found)")


@dataclass
class SoftHSM:
    """One token directory and its configuration file; ``env`` is what to put in os.environ."""

    root: Path
    module: str = field(default_factory=softhsm_module)
    pins: dict[str, str] = field(default_factory=dict)
    so_pins: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.util = softhsm_util()
        self.tokens = self.root / "tokens"
        self.tokens.mkdir(parents=True, exist_ok=True)
        self.conf = self.root / "softhsm2.conf"
        self.conf.write_text(f"directories.tokendir = {self.tokens}\nobjectstore.backend = file\n"
                             "log.level = ERROR\nslots.removable = false\n")

    @property
    def env(self) -> dict[str, str]:
        return {"SOFTHSM2_CONF": str(self.conf)}

    def init_token(self, label: str, pin: str | None = None, so_pin: str | None = None) -> str:
        pin = pin or os.urandom(6).hex()
        so_pin = so_pin or os.urandom(6).hex()
        subprocess.run([self.util, "--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", so_pin],
                       check=True, capture_output=True, env={**os.environ, **self.env}, timeout=60)
        self.pins[label], self.so_pins[label] = pin, so_pin
        return pin
