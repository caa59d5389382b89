"""``qtsp scenarios``: the catalogue of negative and edge-case certificates for testing validators."""

from __future__ import annotations

from pathlib import Path

import click

from qtsp.core.errors import Kind, QTSPError

from .lazy import LazyGroup
from .output import cli_actor, common, data_dir, emit, table


@click.group("scenarios", cls=LazyGroup, lazy={
    "responder": ("cli.commands_responder:responder",
                  "Make the OCSP responder or CRL publisher misbehave on purpose, per certificate or per CA."),
})
def scenarios() -> None:
    """Negative and edge-case certificates, and responder misbehaviours, for testing bank validators."""


@scenarios.command("list")
@common
def scenarios_list() -> None:
    """The catalogue: each scenario, its purpose and the verdict a correct validator reaches."""
    from qtsp.services import scenarios as scenarios_svc

    rows = scenarios_svc.listing()
    emit(rows, lambda: table([[r["name"], r["purpose"], r["verdict"], ",".join(r["reasons"]) or "-", r["pkix"]]
                              for r in rows], ["NAME", "PURPOSE", "VERDICT", "REASONS", "RFC 5280"])
         + "\n\n'qtsp scenarios list --json' gives each description; 'qtsp scenarios issue --all --out DIR' issues them.")


@scenarios.command("issue")
@click.argument("names", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="every scenario of the catalogue")
@click.option("--out", "out", required=True, type=click.Path(path_type=Path),
              help="an empty or new directory for the certificates, keys, CA certificates and manifest.json")
@common
def scenarios_issue(names: tuple[str, ...], all_: bool, out: Path) -> None:
    """Issue scenario certificates from the simulator's CAs (never the normal ones), past the lint gate on
    purpose, with manifest.json listing the expected verdicts. Revoked ones are revoked in OCSP and the CRL."""
    from qtsp.services import scenarios as scenarios_svc
    from qtsp.services.context import open_sandbox

    if bool(names) == all_:
        raise QTSPError(Kind.MALFORMED, "name one or more scenarios, or pass --all (not both)")
    scenarios_svc.names(list(names) or None)  # unknown names refused before anything is made
    manifest = scenarios_svc.issue(open_sandbox(data_dir()), list(names) or None, out, actor=cli_actor())
    entries = manifest["scenarios"]
    emit(manifest, lambda: table([[e["name"], e["serial"], e["expected"]["verdict"],
                                   ",".join(e["expected"]["reasons"]) or "-", str(len(e["lint_findings"]))]
                                  for e in entries], ["NAME", "SERIAL", "VERDICT", "REASONS", "LINT FINDINGS"])
         + f"\n\n{len(entries)} scenario certificates in {out}; manifest: {out / 'manifest.json'}")

