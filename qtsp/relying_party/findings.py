"""A finding: one thing a relying-party check concluded about an artifact, naming the rule it applied and
where that rule is written (document, edition, clause), so that a bank reading the verdict can look it up.

Shared by the validator (certificates), the artifact linter (CRLs, OCSP responses) and the verifiers built
on them; the JSON shape ``{"rule", "source", "severity", "message"}`` is the one ``--json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["ERROR", "INFO", "SEVERITIES", "WARNING", "Finding", "Severity"]

Severity = Literal["error", "warning", "info"]
ERROR: Severity = "error"
WARNING: Severity = "warning"
INFO: Severity = "info"
SEVERITIES: tuple[Severity, ...] = (ERROR, WARNING, INFO)


@dataclass(frozen=True)
class Finding:
    rule: str  # a stable identifier, e.g. "psd2-roles-empty"; tests and bank models key on it
    source: str  # where the rule is written: "ETSI TS 119 495 V1.8.1 5.1", "RFC 5280 5.2.3", "pkilint 0.13.3"
    severity: Severity
    message: str

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity must be one of {', '.join(SEVERITIES)}, not {self.severity!r}")

    @property
    def is_error(self) -> bool:
        return self.severity == ERROR

    def as_dict(self) -> dict[str, str]:
        return {"rule": self.rule, "source": self.source, "severity": self.severity, "message": self.message}
