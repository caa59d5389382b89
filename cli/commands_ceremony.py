"""``qtsp ceremony``: validate, run, verify and report key ceremonies; import their hierarchy."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from qtsp.core.errors import EXIT_CODES, Kind, QTSPError

from .output import as_json, common, data_dir, emit

_FILE = click.Path(exists=False, dir_okay=False, path_type=Path)


@click.group()
def ceremony() -> None:
    """Key ceremonies: one YAML file each, witnessed, transcribed (examples: `qtsp ceremony examples`)."""


@ceremony.command("validate")
@click.argument("ceremony_file", type=_FILE)
@common
def ceremony_validate(ceremony_file: Path) -> None:
    """Check a ceremony file strictly; nothing is generated or written."""
    from ceremonies import runner

    c = runner.validate(ceremony_file)
    emit({"valid": True, "ceremony_type": c.kind, "name": c.cfg["name"], "sha256": c.sha256},
         f"{ceremony_file}: valid {c.kind} ceremony {c.cfg['name']!r} (sha256 {c.sha256})")


@ceremony.command("run")
@click.argument("ceremony_file", type=_FILE)
@click.option("--yes", "assume_yes", is_flag=True, help="unattended (CI): no confirmations, no prompts")
@common
def ceremony_run(ceremony_file: Path, assume_yes: bool) -> None:
    """Run a ceremony: each step shown and confirmed by the administrator and witnesses."""
    from ceremonies import runner
    from qtsp.clock import utcnow

    quiet = as_json()
    outcome = runner.run(
        ceremony_file, assume_yes=assume_yes,
        echo=(lambda text: click.echo(text, err=True)) if quiet else click.echo,
        confirm=lambda prompt: click.confirm(prompt, default=False, err=quiet),
        ask=lambda prompt: click.prompt(prompt, hide_input=True, default="", show_default=False, err=quiet) or None,
        clock=utcnow)
    if quiet:
        emit({"transcript": str(outcome.transcript), "final_hash": outcome.final_hash, "signed": outcome.signed,
              "result": outcome.result}, "")


@ceremony.command("verify")
@click.argument("transcript_file", type=_FILE)
@click.option("--expect-hash", help="the final hash the witnesses wrote down")
@common
def ceremony_verify(transcript_file: Path, expect_hash: str | None) -> None:
    """Recompute the chain, check the closing signature and every output file's SHA-256."""
    from ceremonies import transcript

    checked = transcript.verify(transcript_file, expect_hash=expect_hash)
    emit(checked.as_dict(), lambda: "\n".join(
        [f"{transcript_file}: {'OK' if checked.ok else 'FAILED'}; {len(checked.lines)} lines, "
         f"{checked.outputs_checked} outputs checked, closing signature {'verifies' if checked.signed else 'absent'}",
         f"final hash {checked.final_hash}"] + [f"problem: {p}" for p in checked.problems]))
    if not checked.ok:
        sys.exit(EXIT_CODES[Kind.INTEGRITY])


@ceremony.command("report")
@click.argument("transcript_file", type=_FILE)
@click.option("--out", "out", type=_FILE, help="write the report here (never overwrites) instead of stdout")
@click.option("--format", "fmt", type=click.Choice(["markdown", "html"]), default=None,
              help="markdown or html (default: from --out's suffix, .html/.htm for HTML; else markdown)")
@common
def ceremony_report(transcript_file: Path, out: Path | None, fmt: str | None) -> None:
    """A record of the ceremony (Markdown or HTML), with a signature table, to print and sign."""
    from ceremonies import report as report_mod
    from qtsp.files import write_new

    if fmt is None:
        fmt = "html" if out is not None and out.suffix.lower() in (".html", ".htm") else "markdown"
    text = report_mod.render_html(transcript_file) if fmt == "html" else report_mod.render(transcript_file)
    if out is None:
        click.echo(text, nl=False)
        return
    write_new(out, text.encode())
    emit({"report": str(out)}, f"wrote {out}")


@ceremony.command("import")
@click.argument("transcripts", nargs=-1, required=True, type=_FILE)
@common
def ceremony_import(transcripts: tuple[Path, ...]) -> None:
    """Make a qtsp data dir serve a hierarchy made by ceremonies (give every transcript)."""
    from ceremonies import importer
    from qtsp.clock import utcnow

    summary = importer.import_hierarchy(data_dir(), list(transcripts), utcnow())
    emit(summary, lambda: "\n".join(
        [f"imported into {summary['data_dir']}:"]
        + [f"  {ca_id}: key {v['key']}, OCSP key {v['ocsp_key'] or '-'}" for ca_id, v in summary["cas"].items()]
        + [f"  ARL number {summary['arl_number']}" if summary["arl_number"] else "  no ARL"]
        + [f"note: {n}" for n in summary["notes"]] + ["start it with: qtsp serve --data-dir " + summary["data_dir"]]))


@ceremony.command("import-arl")
@click.argument("transcript_file", type=_FILE)
@common
def ceremony_import_arl(transcript_file: Path) -> None:
    """Serve a newer ARL made by a crl ceremony (the root stays offline)."""
    from ceremonies import importer
    from qtsp.clock import utcnow

    summary = importer.import_arl(data_dir(), transcript_file, utcnow())
    emit(summary, f"serving ARL number {summary['number']} of {summary['issuer']} (next update {summary['next_update']})")


@ceremony.command("examples")
@click.argument("target", type=click.Path(file_okay=False, path_type=Path))
@common
def ceremony_examples(target: Path) -> None:
    """Copy the example ceremony files into TARGET (a new directory)."""
    from ceremonies import examples_dir
    from qtsp.files import ensure_dir, write_new

    if target.exists() or target.is_symlink():
        raise QTSPError(Kind.CONFLICT, f"{target} exists; refusing to overwrite it")
    ensure_dir(target)
    names = []
    for source in sorted(examples_dir().glob("*.yaml")):
        write_new(target / source.name, source.read_bytes())
        names.append(source.name)
    emit({"copied": names, "to": str(target)}, f"copied {', '.join(names)} to {target}")
