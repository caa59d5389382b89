"""``qtsp scenarios``: the catalogue of negative and edge-case certificates for testing validators."""

from __future__ import annotations

import click

from .commands_responder import responder


@click.group("scenarios")
def scenarios() -> None:
    """Negative and edge-case certificates, and responder misbehaviours, for testing bank validators."""


scenarios.add_command(responder)
