"""``qtsp scenarios responder``: OCSP and CRL misbehaviours on demand."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from qtsp.core.errors import Kind, QTSPError

from .output import cli_actor, common, data_dir, emit, table

if TYPE_CHECKING:
    from qtsp.services import simulator


@click.group("responder")
def responder() -> None:
    """Make the OCSP responder or CRL publisher misbehave on purpose, per certificate or per CA.

    Off until set; every change is audited and reaches every worker at once. Answers under a
    behaviour are signed on demand and never cached; clearing restores correct answers."""


class _WithBehaviours(click.Command):
    """The list of behaviours is the simulator's table (services.behaviours); read it for this help only."""

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        from qtsp.services.behaviours import BEHAVIOURS

        listing = "\n".join(f"  {name:15} {fault.target.upper():5} {fault.description}" for name, fault in BEHAVIOURS.items())
        self.help = (self.help or "").replace("{behaviours}", listing)
        super().format_help_text(ctx, formatter)


def _describe(b: simulator.Behaviour) -> str:
    where = b.issuer_id if b.serial is None else f"{b.issuer_id} serial {b.serial}"
    delay = "" if b.delay_ms is None else f" ({b.delay_ms / 1000:g} s)"
    return f"{b.behaviour}{delay} on {where} ({b.target.upper()})"


@responder.command("set", cls=_WithBehaviours, short_help="Set BEHAVIOUR for a CA, or for one certificate of it.",
                   help="""Set BEHAVIOUR for a CA (--ca), or for one certificate (--serial, OCSP only; its CA is
found from the serial, --ca is needed only when several CAs issued that serial).

It replaces what that CA or certificate had for the same target (OCSP or CRL).

\b
Behaviours:
{behaviours}""")
@click.argument("behaviour", metavar="BEHAVIOUR")
@click.option("--ca", "ca_ref", metavar="CA", help="the CA: its id, e.g. qwac-ca, or its name (see 'qtsp ca list')")
@click.option("--serial", metavar="HEX", help="one certificate (OCSP behaviours only)")
@click.option("--delay", type=float, metavar="SECONDS", help="slow only: how long to stall each answer")
@common
def responder_set(behaviour: str, ca_ref: str | None, serial: str | None, delay: float | None) -> None:
    from qtsp.services import simulator
    from qtsp.services.context import open_sandbox

    from .lookup import issuers_of_serial, resolve_ca

    if ca_ref is None and serial is None:
        raise QTSPError(Kind.MALFORMED, "say where: --ca CA, or --serial HEX for one certificate")
    sb = open_sandbox(data_dir())
    if ca_ref is not None:
        ca_id = resolve_ca(sb, ca_ref)
    else:
        issuers = issuers_of_serial(sb, serial or "")
        if not issuers:
            raise QTSPError(Kind.NOT_FOUND, f"no certificate with serial {serial}")
        if len(issuers) > 1:
            raise QTSPError(Kind.MALFORMED, f"serial {serial} was issued by several CAs ({', '.join(issuers)}): "
                                            "say which with --ca")
        ca_id = issuers[0]
    result = simulator.set_behaviour(sb, behaviour, ca_id, serial=serial, delay_seconds=delay, actor=cli_actor())
    emit(result.as_dict(), f"set {_describe(result)}: behaviour {result.id}")


@responder.command("list")
@common
def responder_list() -> None:
    """The behaviours in force (none: every answer is correct)."""
    from qtsp.services import simulator
    from qtsp.services.context import open_sandbox

    rows = simulator.list_behaviours(open_sandbox(data_dir()))
    emit([b.as_dict() for b in rows], lambda: table(
        [[str(b.id), b.issuer_id, b.target, b.serial or "*", b.behaviour,
          "" if b.delay_ms is None else f"{b.delay_ms / 1000:g} s", b.created_at.isoformat()[:19], b.created_by]
         for b in rows], ["ID", "CA", "TARGET", "SERIAL", "BEHAVIOUR", "DELAY", "SET", "BY"]))


@responder.command("clear")
@click.argument("ids", metavar="[ID]...", nargs=-1, type=click.IntRange(1))
@click.option("--ca", "ca_ref", metavar="CA", help="every behaviour of this CA (OCSP and CRL, CA-wide and per certificate)")
@click.option("--serial", metavar="HEX", help="with --ca: only this certificate's behaviour")
@click.option("--all", "everything", is_flag=True, help="every behaviour of every CA")
@common
def responder_clear(ids: tuple[int, ...], ca_ref: str | None, serial: str | None, everything: bool) -> None:
    """Switch behaviours off: by ID, --ca CA [--serial HEX], or --all.

    IDs are those 'qtsp scenarios responder list' shows; unknown ones clear nothing."""
    from qtsp.services import simulator
    from qtsp.services.context import open_sandbox

    from .lookup import resolve_ca

    if ids:
        if ca_ref is not None or serial is not None or everything:
            raise QTSPError(Kind.MALFORMED, "give behaviour ids, or --ca CA [--serial HEX], or --all: one of them")
        sb = open_sandbox(data_dir())
        missing = sorted(set(ids) - {b.id for b in simulator.list_behaviours(sb)})
        if missing:  # all or none: a typo in one id must not leave the others half cleared
            raise QTSPError(Kind.NOT_FOUND, f"no behaviour {', '.join(map(str, missing))} (see 'qtsp scenarios responder list')")
        removed = [simulator.clear_by_id(sb, behaviour_id, actor=cli_actor()) for behaviour_id in dict.fromkeys(ids)]
    else:
        if everything == (ca_ref is not None):
            raise QTSPError(Kind.MALFORMED, "give either --ca CA [--serial HEX] or --all")
        sb = open_sandbox(data_dir())
        ca_id = None if ca_ref is None else resolve_ca(sb, ca_ref)
        removed = simulator.clear(sb, ca_id=ca_id, serial=serial, everything=everything, actor=cli_actor())
    emit([b.as_dict() for b in removed],
         lambda: "\n".join(f"cleared {_describe(b)}" for b in removed) if removed else "nothing to clear")
