"""``qtsp validate``: the reference validator, as a bank's PSD2 validator should judge a certificate.

Trust comes from one of: the sandbox's own Trusted List (the default), a published one (``--tl`` with the
pinned ``--tl-signer``), or the caller's trust anchors (``--trust-anchor ROOT.pem``, no list needed: a
foreign QTSP's root stands in for its Trusted List entry). Exit 0 when every certificate is accepted, 1
when one is rejected, 2 when an input cannot be used (nothing is judged then). docs/validator.md.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from cryptography import x509

from qtsp.core.errors import Kind, QTSPError

from qtsp import files
from qtsp.core.certificates import load_certificates

from .bank_model import apply_model, model_option
from .trust_source import trusted_list
from .output import common, emit, subject_of_text

MAX_INPUT = 1024 * 1024
MAX_TL = 8 * 1024 * 1024
MAX_FILES = 10000
CERT_SUFFIXES = (".pem", ".crt", ".cer", ".der")


def _read(path: Path, what: str, limit: int = MAX_INPUT) -> bytes:
    return files.read_bounded(path, what, limit)  # unusable input: exit 2, like a file that holds no certificate


def _one(path: Path) -> x509.Certificate:
    found = load_certificates(_read(path, "certificate"), str(path))
    if len(found) != 1:
        raise QTSPError(Kind.MALFORMED, f"{path} holds {len(found)} certificates; give one (the rest with --chain)")
    return found[0]


def _inputs(paths: tuple[Path, ...]) -> list[tuple[Path, x509.Certificate]]:
    """Every certificate to judge, all read before any is judged. A directory gives its certificate files
    (*.pem, *.crt, *.cer, *.der, not recursing); one of those that holds no certificate is named on stderr
    and left out (a directory often holds keys too). A file named on the command line must be one."""
    out: list[tuple[Path, x509.Certificate]] = []
    for path in paths:
        if path.is_dir():
            for child in sorted(p for p in path.iterdir() if p.suffix.lower() in CERT_SUFFIXES and p.is_file()):
                try:
                    out.append((child, _one(child)))
                except QTSPError as exc:
                    click.echo(f"skipped: {exc.detail}", err=True)
        else:
            out.append((path, _one(path)))
        if len(out) > MAX_FILES:
            raise QTSPError(Kind.MALFORMED, f"more than {MAX_FILES} certificates in one run")
    if not out:
        raise QTSPError(Kind.MALFORMED, "no certificate to judge in " + ", ".join(map(str, paths)))
    return out


def _readable(verdict: Any, path: Path) -> dict[str, Any]:
    """The verdict's JSON with subjects as people read them (organizationIdentifier=..., not 2.5.4.97=...)."""
    from qtsp.core.names import readable_oids

    data = {"file": str(path), **verdict.as_dict()}
    data["path"] = [subject_of_text(p) for p in data["path"]]
    for finding in data["findings"]:
        finding["message"] = readable_oids(finding["message"])
    for reason in data["reasons"]:
        reason["message"] = readable_oids(reason["message"])
    data["revocation"] = [{**rev, "certificate": readable_oids(str(rev.get("certificate", "")))} for rev in data["revocation"]]
    return data


def _text(verdict: Any, data: dict[str, Any], path: Path) -> str:
    model = "" if data["model"] == "strict" else f" (model {data['model']})"
    lines = [f"{data['verdict'].upper()}  {path} as {verdict.purpose} at {verdict.at:%Y-%m-%dT%H:%M:%SZ}{model}"]
    if data["deciding"] is not None and model:
        deciding = data["deciding"]
        lines.append(f"  decided by: {deciding.get('rule', deciding.get('code'))}: {deciding['message']}")
    elif model and not verdict.accepted:
        lines.append("  strict would reject; this model accepts: the findings below are what it lets through")
    if verdict.certificate_type != verdict.purpose:
        lines.append(f"  the certificate says it is: {verdict.certificate_type}")
    shown = {(r["code"], r["message"]) for r in data["reasons"]}
    lines += [f"  - {f['rule']}: {f['message']} [{f['source']}]" for f in data["findings"]
              if (f["rule"], f["message"]) in shown]
    lines += [f"  {f['severity']} {f['rule']}: {f['message']} [{f['source']}]" for f in data["findings"]
              if (f["rule"], f["message"]) not in shown and f["severity"] != "info"]
    lines.append("  path: " + " <- ".join(reversed(data["path"])))
    for rev in data["revocation"]:
        lines.append(f"  revocation of {rev['certificate']}: {rev['status']}" + (f" (by {rev['source']})" if "source" in rev else ""))
        lines += [f"    unusable first: {problem}" for problem in rev.get("fallback_after", [])]
    psd2 = verdict.qualified.get("psd2")
    if psd2:
        lines.append(f"  PSD2: roles {', '.join(psd2['roles'])}; NCA {psd2['nca_id']} ({psd2['nca_name']})")
    return "\n".join(lines)


@click.command("validate")
@click.argument("certificates", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--purpose", type=click.Choice(["qwac", "qwac-client", "qsealc", "2-qwac"]), default=None,
              help="judge for this use (default: what the certificate says it is, from its EKUs, QcType and "
                   "policies): qwac TLS server, qwac-client TLS client in mutual TLS, qsealc seal, 2-qwac TLS binding")
@click.option("--trust-anchor", "trust_anchors", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PEM of a CA certificate to trust instead of a Trusted List (repeatable): a foreign QTSP's root")
@click.option("--require-role", "roles", multiple=True, metavar="ROLE", help="a PSD2 role the certificate must carry (repeatable)")
@click.option("--chain", "chain", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PEM file(s) of intermediate certificates (repeatable)")
@click.option("--revocation", type=click.Choice(["auto", "ocsp", "crl", "off"]), default="auto", show_default=True,
              help="auto: OCSP, then the CRL; ocsp / crl: that one only; off: the path and profile only")
@click.option("--pkilint/--no-pkilint", "use_pkilint", default=True, show_default=True,
              help="add pkilint's findings (its errors decide only where our own rules found none)")
@click.option("--tl", "tl", metavar="URL|FILE",
              help="the Trusted List (default: this sandbox's, read from its store)")
@click.option("--tl-signer", "tl_signer", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM of the certificate the Trusted List must be signed by (required with --tl)")
@click.option("--connect-to", "connect_to", metavar="HOST:PORT",
              help="send every HTTP request (OCSP, CRL, Trusted List) there, keeping the URL's Host header")
@model_option
@common
def validate(certificates: tuple[Path, ...], purpose: str | None, trust_anchors: tuple[Path, ...], roles: tuple[str, ...],
             chain: tuple[Path, ...], revocation: str, use_pkilint: bool, tl: str | None, tl_signer: Path | None,
             connect_to: str | None, model: str) -> None:
    """Judge CERTIFICATES (files or directories) as a PSD2 validator should: path to the Trusted List or the
    trust anchors, revocation (OCSP, then the CRL), every profile rule with its clause, pkilint. Exit 0 all
    accepted, 1 one rejected (with the findings), 2 an input that cannot be used."""
    from qtsp import relying_party
    from qtsp.clock import utcnow

    ctx = click.get_current_context()
    at = ctx.obj.get("at")
    from qtsp.core.psd2 import ROLES

    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise QTSPError(Kind.MALFORMED, f"unknown PSD2 role {unknown[0]!r}; known: {', '.join(ROLES)}")
    inputs = _inputs(certificates)
    intermediates = [c for path in chain for c in load_certificates(_read(path, "chain file"), str(path))]
    fetcher = relying_party.Fetcher(connect_to=connect_to, at=at)
    now = at or utcnow()  # --at exactly (the travelled clock would add the seconds since)
    parsed = trusted_list(anchors=trust_anchors, tl=tl, tl_signer=tl_signer, fetcher=fetcher, now=now,
                          data_dir=ctx.obj["data_dir"])
    batch = len(inputs) > 1 or any(p.is_dir() for p in certificates)
    rejected = False
    for path, cert in inputs:
        verdict = relying_party.validate(cert, trusted_list=parsed, intermediates=intermediates, purpose=purpose,
                                         require_roles=roles, at=now, fetcher=fetcher, revocation=revocation,
                                         pkilint=use_pkilint)
        data = _readable(verdict, path)
        rejected |= not apply_model(data, verdict, model)
        if data["deciding"] is not None:  # as readable as the findings it is one of
            from qtsp.core.names import readable_oids

            data["deciding"]["message"] = readable_oids(data["deciding"]["message"])
        if batch and ctx.obj["json"]:
            click.echo(json.dumps(data, default=str))  # JSON Lines: one verdict per line
        else:
            emit(data, _text(verdict, data, path))
    if rejected:
        ctx.exit(1)
