"""``qtsp scenarios responder``: OCSP and CRL misbehaviours on demand."""

from __future__ import annotations

import click


@click.group("responder")
def responder() -> None:
    """Make the OCSP responder or CRL publisher misbehave on purpose, per certificate or per CA."""
