"""``qtsp keys``: list keys and rotate them (by policy, or one by hand), with a dry run."""

from __future__ import annotations

from dataclasses import asdict

import click

from .output import cli_actor, common, data_dir, emit, table


@click.group()
def keys() -> None:
    """CA and OCSP keys: where they live and when they rotate."""


@keys.command("list")
@common
def keys_list() -> None:
    """Each key reference, its algorithm, what it signs for and when it rotates next."""
    from qtsp.services import keys as svc
    from qtsp.services.context import open_sandbox

    views = svc.list_keys(open_sandbox(data_dir()))
    emit([asdict(v) for v in views], lambda: table(
        [[v.ref, str(v.version), v.key_type, v.certificate,
          "-" if v.next_rotation is None else f"{v.next_rotation:%Y-%m-%d %H:%M}Z"]
         for v in views], ["KEY", "VERSION", "TYPE", "SIGNS FOR", "NEXT ROTATION"]))


@keys.command("rotate")
@click.option("--ocsp", "ocsp_ca", metavar="CA", help="rotate the OCSP responder key of this CA (id or name) now")
@click.option("--ca", "ca_id", metavar="CA", help="roll this issuing CA (id or name) over to a new key and certificate now")
@click.option("--dry-run", is_flag=True, help="print what would rotate and when; change nothing")
@common
def keys_rotate(ocsp_ca: str | None, ca_id: str | None, dry_run: bool) -> None:
    """Rotate what the policies say is due (default), or the key named."""
    from qtsp.services import keys as svc
    from qtsp.clock import utcnow
    from qtsp.services.context import open_sandbox

    from qtsp.services.lookup import resolve_ca

    sb = open_sandbox(data_dir())
    ocsp_ca = None if ocsp_ca is None else resolve_ca(sb, ocsp_ca)
    ca_id = None if ca_id is None else resolve_ca(sb, ca_id)
    now = utcnow()
    if dry_run:
        planned = svc.plan(sb, now)
        if ocsp_ca or ca_id:
            planned = [p for p in planned if (p.action == "rotate-ocsp" and p.ca_id == ocsp_ca)
                       or (p.action == "rollover-ca" and p.ca_id == ca_id)]
        emit([{**asdict(p), "due_now": p.due_at <= now} for p in planned], lambda: table(
            [[p.action, p.ca_id, f"{p.due_at:%Y-%m-%d %H:%M}Z", "now" if p.due_at <= now else "later", p.why] for p in planned],
            ["ACTION", "CA", "DUE", "WHEN", "WHY"]) + ("\n(dry run: nothing changed)" if not ocsp_ca and not ca_id else
                                                    "\n(dry run: would rotate now regardless of the due date)"))
        return
    done = []
    if ocsp_ca:
        done.append(f"rotated OCSP responder of {ocsp_ca}: {svc.rotate_ocsp(sb, ocsp_ca, now, actor=cli_actor())}")
    if ca_id:
        done.append(f"rolled {ca_id} over to {svc.rollover_ca(sb, ca_id, now, actor=cli_actor())}")
    if not ocsp_ca and not ca_id:
        done = svc.run_due(sb, now, actor=cli_actor())
    emit({"done": done}, lambda: "\n".join(done) or "nothing is due")
