"""``qtsp crl generate`` and ``qtsp crl show``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from qtsp.core.errors import Kind, QTSPError

from .output import common, data_dir, emit, table

if TYPE_CHECKING:
    from qtsp.services.crl import CrlRecord
    from qtsp.services.lookup import CrlView


def _one_ca(positional: str | None, option: str | None) -> str | None:
    """The CA as an argument (``qtsp crl show qwac-ca``) or, as before, ``--ca``; not two different ones."""
    if positional is not None and option is not None and positional != option:
        raise QTSPError(Kind.MALFORMED, f"two CAs given ({positional} and --ca {option}): give one")
    return positional if positional is not None else option


def _record_data(record: CrlRecord | CrlView) -> dict[str, Any]:
    return {"issuer": record.issuer_id, "kind": "delta" if record.delta_base is not None else "full",
            "number": record.number, "delta_base": record.delta_base, "entries": record.entries,
            "this_update": record.this_update.isoformat(), "next_update": record.next_update.isoformat(),
            "bytes": len(record.der)}


@click.group()
def crl() -> None:
    """CRLs (per issuing CA) and the root's ARL."""


@crl.command("generate")
@click.argument("ca_ref", metavar="[CA]", required=False)
@click.option("--ca", "ca_option", metavar="CA", help="the same as the CA argument (kept for scripts)")
@click.option("--delta", is_flag=True, help="a delta CRL against the newest full CRL")
@common
def crl_generate(ca_ref: str | None, ca_option: str | None, delta: bool) -> None:
    """Build, sign and store a new CRL now.

    For CA (its id, e.g. qwac-ca, or its name), or for every CA when none is given."""
    from qtsp.services import crl as crl_svc, lookup
    from qtsp.services.context import open_sandbox
    from qtsp.clock import utcnow

    sb = open_sandbox(data_dir())
    ca_ref = _one_ca(ca_ref, ca_option)
    ids = lookup.ca_ids(sb) if ca_ref is None else [lookup.resolve_ca(sb, ca_ref)]
    now = utcnow()
    rows = [_record_data(crl_svc.generate(sb, issuer, now, delta=delta)) for issuer in ids]
    emit(rows, lambda: table(
        [[r["issuer"], r["kind"], str(r["number"]), str(r["entries"]), str(r["this_update"])[:19],
          str(r["next_update"])[:19]] for r in rows],
        ["CA", "KIND", "NUMBER", "ENTRIES", "THIS UPDATE", "NEXT UPDATE"]))


@crl.command("show")
@click.argument("ca_ref", metavar="CA", required=False)
@click.option("--ca", "ca_option", metavar="CA", help="the same as the CA argument (kept for scripts)")
@click.option("--delta", is_flag=True, help="the newest delta CRL instead of the full one")
@click.option("--entries", "list_entries", is_flag=True, help="also list the revoked serials")
@common
def crl_show(ca_ref: str | None, ca_option: str | None, delta: bool, list_entries: bool) -> None:
    """The newest CRL of a CA: number, thisUpdate, nextUpdate, entries.

    CA is its id (e.g. qwac-ca, see 'qtsp ca list') or its name; '--ca CA' works too."""
    from qtsp.core import crl as core_crl
    from qtsp.core.types import serial_hex
    from qtsp.services import lookup
    from qtsp.services.context import open_sandbox

    ca_ref = _one_ca(ca_ref, ca_option)
    if ca_ref is None:
        raise QTSPError(Kind.MALFORMED, "which CA? 'qtsp crl show CA', e.g. qwac-ca (see 'qtsp ca list')")
    sb = open_sandbox(data_dir())
    ca_id = lookup.resolve_ca(sb, ca_ref)
    record = lookup.newest_crl(sb, ca_id, delta=delta)
    if record is None:
        raise QTSPError(Kind.NOT_FOUND, f"no {'delta ' if delta else ''}CRL for {ca_id} yet: run 'qtsp crl generate {ca_id}'")
    data = _record_data(record)
    if list_entries:
        data["revoked"] = [{"serial": serial_hex(s), "reason": r} for s, r in core_crl.entry_reasons(record.der).items()]

    def text() -> str:
        lines = [f"{data['kind']} CRL of {ca_id}",
                 f"  number       {record.number}" + (f" (delta of {record.delta_base})" if record.delta_base is not None else ""),
                 f"  thisUpdate   {record.this_update:%Y-%m-%d %H:%M:%S}Z",
                 f"  nextUpdate   {record.next_update:%Y-%m-%d %H:%M:%S}Z",
                 f"  entries      {record.entries}"]
        if list_entries:
            lines.append(table([[e["serial"], e["reason"]] for e in data["revoked"]], ["SERIAL", "REASON"]))
        return "\n".join(lines)

    emit(data, text)
