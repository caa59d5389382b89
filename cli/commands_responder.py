"""``qtsp scenarios responder``: OCSP and CRL misbehaviours on demand."""

from __future__ import annotations

import click

from qtsp.core.errors import Kind, QTSPError
from qtsp.services import simulator
from qtsp.services.context import open_sandbox

from .output import common, data_dir, emit, table

_LIST = "\n".join(f"  {name:15} {target.upper():5} {text}" for name, (target, text) in simulator.BEHAVIOURS.items())


@click.group("responder")
def responder() -> None:
    """Make the OCSP responder or CRL publisher misbehave on purpose, per certificate or per CA.

    Off until set; every change is audited and reaches every worker at once. Answers under a
    behaviour are signed on demand and never cached; clearing restores correct answers."""


def _describe(b: simulator.Behaviour) -> str:
    where = b.issuer_id if b.serial is None else f"{b.issuer_id} serial {b.serial}"
    delay = "" if b.delay_ms is None else f" ({b.delay_ms / 1000:g} s)"
    return f"{b.behaviour}{delay} on {where} ({b.target.upper()})"


@responder.command("set", help=f"""Set BEHAVIOUR for a CA (--ca), or for one certificate of it (--serial, OCSP only).

It replaces what that CA or certificate had for the same target (OCSP or CRL).

\b
Behaviours:
{_LIST}""")
@click.argument("behaviour", metavar="BEHAVIOUR")
@click.option("--ca", "ca_id", required=True, metavar="CA", help="the CA id, e.g. qwac-ca (see 'qtsp ca list')")
@click.option("--serial", metavar="HEX", help="one certificate of the CA (OCSP behaviours only)")
@click.option("--delay", type=float, metavar="SECONDS", help="slow only: how long to stall each answer")
@common
def responder_set(behaviour: str, ca_id: str, serial: str | None, delay: float | None) -> None:
    result = simulator.set_behaviour(open_sandbox(data_dir()), behaviour, ca_id, serial=serial, delay_seconds=delay,
                                     actor="cli")
    emit(result.as_dict(), f"set {_describe(result)}: behaviour {result.id}")


@responder.command("list")
@common
def responder_list() -> None:
    """The behaviours in force (none: every answer is correct)."""
    rows = simulator.list_behaviours(open_sandbox(data_dir()))
    emit([b.as_dict() for b in rows], lambda: table(
        [[str(b.id), b.issuer_id, b.target, b.serial or "*", b.behaviour,
          "" if b.delay_ms is None else f"{b.delay_ms / 1000:g} s", b.created_at.isoformat()[:19], b.created_by]
         for b in rows], ["ID", "CA", "TARGET", "SERIAL", "BEHAVIOUR", "DELAY", "SET", "BY"]))


@responder.command("clear")
@click.option("--ca", "ca_id", metavar="CA", help="every behaviour of this CA (OCSP and CRL, CA-wide and per certificate)")
@click.option("--serial", metavar="HEX", help="with --ca: only this certificate's behaviour")
@click.option("--all", "everything", is_flag=True, help="every behaviour of every CA")
@common
def responder_clear(ca_id: str | None, serial: str | None, everything: bool) -> None:
    """Switch behaviours off: --ca CA [--serial HEX], or --all."""
    if everything == (ca_id is not None):
        raise QTSPError(Kind.MALFORMED, "give either --ca CA [--serial HEX] or --all")
    removed = simulator.clear(open_sandbox(data_dir()), ca_id=ca_id, serial=serial, everything=everything, actor="cli")
    emit([b.as_dict() for b in removed],
         lambda: "\n".join(f"cleared {_describe(b)}" for b in removed) if removed else "nothing to clear")
