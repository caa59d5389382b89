"""Entry point: ``qtsp``."""

from __future__ import annotations

import click

from .commands_ca import audit, ca, certs, init, sandbox
from .commands_ceremony import ceremony
from .commands_issue import issue
from .commands_register import register
from .commands_crl import crl
from .commands_keys import keys
from .commands_nca import nca
from .commands_serve import revoke, scheduler_cmd, serve
from .commands_scenarios import scenarios
from .commands_tl import tl
from .commands_tokens import tokens
from .commands_validate import validate


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qtsp")
def cli() -> None:
    """qtsp: a sandbox QTSP issuing PSD2 QWACs and QSealCs."""


for command in (init, register, issue, certs, ca, audit, sandbox, serve, scheduler_cmd, revoke, crl, tokens, keys, nca, ceremony,
                scenarios, tl, validate):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="qtsp")


if __name__ == "__main__":
    main()
