"""``qtsp scenarios``: the catalogue of negative and edge-case certificates for testing validators."""

from __future__ import annotations

from pathlib import Path

import click

from qtsp.core.errors import Kind, QTSPError

from .lazy import LazyGroup
from .output import cli_actor, common, data_dir, emit, no_time_travel, table


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



@scenarios.command("matrix")
@click.option("--manifest", "manifest_dir", type=click.Path(file_okay=False, path_type=Path),
              help="an issued catalogue (the directory of 'qtsp scenarios issue --out'); default: issue the whole "
                   "catalogue now, into a temporary directory (the certificates stay in the sandbox, as with issue)")
@click.option("--connect-to", "connect_to", metavar="HOST:PORT",
              help="ask a running 'qtsp serve' there for OCSP and CRLs (default: this sandbox's responder, in process)")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="also write the matrix as a static HTML page to this new file")
@common
@no_time_travel  # the catalogue is issued, and judged, as of now (a served sandbox's time travel is per request)
def scenarios_matrix(manifest_dir: Path | None, connect_to: str | None, html_out: Path | None) -> None:
    """Every scenario through every bank model (strict, chain-only, chain+revocation, psd2-role), against
    this sandbox's Trusted List: which model accepts which defect, and the finding that decided."""
    import tempfile

    from qtsp import files
    from qtsp.clock import utcnow
    from qtsp.relying_party import Fetcher, parse_and_verify_trusted_list
    from qtsp.services import scenario_matrix
    from qtsp.services import scenarios as scenarios_svc
    from qtsp.services import trusted_list
    from qtsp.services.context import open_sandbox

    from .inprocess import InProcessFetcher

    if html_out is not None and (html_out.exists() or html_out.is_symlink()):
        raise QTSPError(Kind.CONFLICT, f"refusing to overwrite {html_out}: it exists")
    sandbox = open_sandbox(data_dir())
    now = utcnow()
    fetcher = Fetcher(connect_to=connect_to) if connect_to else InProcessFetcher(data_dir())
    with tempfile.TemporaryDirectory(prefix="qtsp-matrix-") as tmp:
        if manifest_dir is None:
            manifest_dir = Path(tmp) / "catalogue"
            manifest = scenarios_svc.issue(sandbox, None, manifest_dir, now=now, actor=cli_actor())
        else:
            manifest = scenario_matrix.load_manifest(manifest_dir)
        # Read after issuing: the first issue creates the scenarios CA, and the list then names it.
        parsed = parse_and_verify_trusted_list(trusted_list.current(sandbox, now).xml,
                                               [trusted_list.signer_certificate(sandbox)], now)
        matrix = scenario_matrix.run(manifest_dir, manifest, parsed, fetcher, now)
    if html_out is not None:
        files.write_new(html_out, scenario_matrix.render_html(matrix).encode())
    models = list(matrix["models"])

    def cell(result: dict[str, object]) -> str:
        deciding = result["deciding"]
        return "accept" if deciding is None else f"reject ({deciding['code']})"  # type: ignore[index]

    def text() -> str:
        rows = [[r["name"], *[cell(r["results"][m]) for m in models], "yes" if r["strict_as_expected"] else "NO"]
                for r in matrix["scenarios"]]
        slips = {m: sum(1 for r in matrix["scenarios"] if r["results"]["strict"]["verdict"] == "reject"
                        and r["results"][m]["verdict"] == "accept") for m in models}
        return (table(rows, ["SCENARIO", *[m.upper() for m in models], "STRICT AS EXPECTED"])
                + "\n\ndefects each model lets through: " + ", ".join(f"{m} {n}" for m, n in slips.items())
                + (f"\nHTML: {html_out}" if html_out else ""))

    emit(matrix, text)
