"""Lazy loading for the ``qtsp`` command tree, so ``qtsp --help`` and completion start fast.

Importing every command module up front pulls in pkilint (with its language tables), SQLAlchemy
and Flask: about a second before ``--help`` could print a line (issue 13). A ``LazyGroup`` knows its
subcommands by name, with the import path and the one-line help, and imports a command module
only when that command runs or its own help is asked for.
"""

from __future__ import annotations

import importlib
import textwrap
from typing import Any
from collections.abc import Callable, Iterable

import click
from click.shell_completion import CompletionItem


class LazyGroup(click.Group):
    """A group whose subcommands are ``name -> ("package.module:attribute", "short help")``.

    The short help lives in the table because listing the commands (``--help``, completion) must
    not import them; ``tests/test_cli_startup.py`` checks that it matches the command's own.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name not in self.lazy:
            return None
        module_name, _, attribute = self.lazy[cmd_name][0].partition(":")
        command = getattr(importlib.import_module(module_name), attribute)
        if not isinstance(command, click.Command):  # a wrong table entry is our bug: say which
            raise TypeError(f"{self.lazy[cmd_name][0]} is not a click command")
        self.commands[cmd_name] = command
        return command

    def listed_help(self, cmd_name: str, limit: int = 45) -> str:
        if cmd_name in self.commands:
            return self.commands[cmd_name].get_short_help_str(limit)
        text = self.lazy[cmd_name][1]
        if len(text) <= limit:
            return text
        # Cut as click cuts a docstring's first sentence, so the listing reads the same either way.
        return textwrap.shorten(text, max(limit, 3), placeholder="...", break_on_hyphens=False)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section("Commands"):
            formatter.write_dl([(name, self.listed_help(name, limit)) for name in names])

    def resolve_command(self, ctx: click.Context, args: list[str]) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            return super().resolve_command(ctx, args)
        except click.exceptions.NoSuchCommand as exc:  # suggest among the lazy names too ("Did you mean ...")
            raise click.exceptions.NoSuchCommand(exc.command_name, possibilities=self.list_commands(ctx),
                                                 ctx=ctx) from None

    def shell_complete(self, ctx: click.Context, incomplete: str) -> list[CompletionItem]:
        results = [CompletionItem(name, help=self.listed_help(name))
                   for name in self.list_commands(ctx) if name.startswith(incomplete)]
        # Options of the group itself; click.Group's own version would import every subcommand.
        results.extend(click.Command.shell_complete(self, ctx, incomplete))
        return results


class LazyChoice(click.Choice):  # type: ignore[type-arg, unused-ignore]  # click < 8.2 (which we allow) has no Choice[str]
    """A ``click.Choice`` whose choices come from a heavy module, read the first time they are needed
    (parsing the option, or that command's ``--help``), not when the command module is imported."""

    def __init__(self, load: Callable[[], Iterable[str]], case_sensitive: bool = True) -> None:
        self._load = load
        self._loaded: tuple[str, ...] | None = None
        self.case_sensitive = case_sensitive

    @property
    def choices(self) -> tuple[str, ...]:  # type: ignore[override]  # click's attribute, a property here: loaded when first read
        if self._loaded is None:
            self._loaded = tuple(self._load())
        return self._loaded
