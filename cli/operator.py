"""``qtsp --operator NAME``: who is at the keyboard, for the audit log (``cli/output.py``'s ``cli_actor``).

Standard library and click only: the root group imports it, and ``qtsp --help`` must stay light.
"""

from __future__ import annotations

import re

import click

OPERATOR_ENV = "QTSP_OPERATOR"
OPERATOR_KEY = "qtsp.operator"  # in click's ctx.meta, shared by the group and the command it runs
AT_KEY = "qtsp.at"  # ``qtsp --at TIME <command>``: the same as the command's own --at (cli/output.py)
_OPERATOR_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")


def valid_operator(value: str) -> bool:
    return _OPERATOR_RE.fullmatch(value) is not None


def check_operator(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``qtsp --operator NAME`` / ``$QTSP_OPERATOR``: a name as the audit log will show it, or refused (exit 2)."""
    if value is not None and not valid_operator(value):
        raise click.BadParameter("1-64 letters, digits and . _ @ + - (starting with a letter or digit)")
    return value
