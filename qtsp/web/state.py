"""What every request handler shares: the sandbox and the OCSP source, built once per process."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

from flask import current_app

from ..services.context import Sandbox


@dataclass
class WebState:
    sandbox: Sandbox
    settings: dict[str, Any] = field(default_factory=dict)


def state() -> WebState:
    return cast(WebState, current_app.extensions["qtsp"])  # put there by create_app
