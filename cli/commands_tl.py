"""``qtsp tl``: the sandbox Trusted List (ETSI TS 119 612)."""

from __future__ import annotations

import click


@click.group("tl")
def tl() -> None:
    """The sandbox Trusted List (ETSI TS 119 612, XAdES-signed), as served at /tl.xml."""
