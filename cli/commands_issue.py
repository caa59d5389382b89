"""``qtsp issue``: QWACs and QSealCs from a CSR or a generated key; bulk issuance.

Import-light on purpose (``qtsp issue --help`` must not load pkilint or SQLAlchemy): the
services are imported inside the commands.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any
from collections.abc import Callable

import click

from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import MAX_CSR_BYTES

from .output import cli_actor, as_json, common, data_dir, emit, subject_text
from .passwords import p12_password_options, read_p12_password, wants_p12

if TYPE_CHECKING:
    from qtsp.services.bulk import BulkResult
    from qtsp.services.issue_request import IssueRequest

# TS 119 411-5 V2.1.1: today's QWAC, the qualified TLS certificate, is the 1-QWAC; the 2-QWAC signs bindings.
KIND_LABELS = {"qwac": "1-QWAC", "qsealc": "QSealC", "two-qwac": "2-QWAC"}
# What issuance.GENERATED_KEY_TYPES allows (not imported: it would load the services for --help).
KEY_CHOICES = click.Choice(["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"])


@click.group()
def issue() -> None:
    """Issue PSD2 certificates."""


def _read_csr(path: Path | None) -> bytes | None:
    if path is None:
        return None
    if path.stat().st_size > MAX_CSR_BYTES:
        raise QTSPError(Kind.MALFORMED, f"{path} is larger than {MAX_CSR_BYTES} bytes; not a CSR")
    return path.read_bytes()


def _request(options: dict[str, Any]) -> IssueRequest:
    """The command's options as an issue request, parsed as the API's and bulk's requests are."""
    from qtsp.services.issue_request import parse_issue_request

    return parse_issue_request({k: v for k, v in options.items() if v is not None}, source="cli")


def _run(request: IssueRequest, out: Path, password_args: tuple[str | None, Path | None, bool]) -> None:
    from qtsp.services import issuance, output
    from qtsp.services.context import open_sandbox

    with_key, with_p12 = bool(request.generate_key), wants_p12(*password_args) is not None
    output.check_out_dir(out, with_key=with_key, with_p12=with_p12)
    sb = open_sandbox(data_dir())
    p12_password = read_p12_password(*password_args)  # after the checks: no prompt for a command that is refused
    # The files are created (exclusively) before the CA signs: a refused output costs no certificate.
    with output.Outputs.reserve(out, with_key=with_key, with_p12=with_p12) as outputs:
        issued = issuance.issue(sb, request, actor=cli_actor())
        files = output.write_issued(issued, outputs, p12_password=p12_password)
    cert = issued.certificate
    subject = subject_text(cert.subject)
    emit(
        {"serial": issued.serial, "issuer": issued.issuer_id, "subject": subject,
         "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(),
         "files": [str(f) for f in files]},
        lambda: "\n".join(
            [f"issued {KIND_LABELS.get(request.kind, request.kind.upper())} serial {issued.serial} by {issued.issuer_id}",
             f"  subject:  {subject}",
             f"  valid:    {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} to {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"]
            + [f"  wrote:    {f}" for f in files]
        ),
    )


def _key_options(func: Callable[..., Any]) -> Callable[..., Any]:
    func = p12_password_options(func)
    func = click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="output directory")(func)
    func = click.option("--roles", help="narrow the register's roles, e.g. PSP_AI")(func)
    func = click.option("--key-type", type=KEY_CHOICES, default=None,
                        help="for --generate-key  [default from the config: subscriber_key_type, ecdsa-p256 unless set]")(func)
    func = click.option("--generate-key", is_flag=True, help="generate the subscriber key here (written 0600, never stored)")(func)
    func = click.option("--csr", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PKCS#10 request, PEM or DER")(func)
    func = click.option("--org-id", required=True, help="the PSP's organizationIdentifier (must be in the register)")(func)
    return func


@issue.command("qwac")
@_key_options
@click.option("--domain", "domains", multiple=True, required=True, help="DNS name (repeatable)")
@click.option("--purpose", type=click.Choice(["server", "client", "both"]), default=None,
              help="server: browser hierarchy, serverAuth only; client: non-browser (mTLS) hierarchy, clientAuth only; "
                   "both: non-browser, serverAuth + clientAuth  [default: both]")
@click.option("--browser", is_flag=True, help="the same as --purpose server")
@common
def qwac(org_id: str, csr: Path | None, generate_key: bool, key_type: str, roles: str | None, out: Path,
         p12_password: str | None, p12_password_file: Path | None, p12_password_prompt: bool,
         domains: tuple[str, ...], purpose: str | None, browser: bool) -> None:
    """Issue a PSD2 QWAC (a 1-QWAC: the TLS certificate itself is qualified), from the hierarchy its purpose decides (docs/certificates.md, "Two QWAC hierarchies")."""
    request = _request({"kind": "qwac", "org_id": org_id, "domains": list(domains), "csr": _read_csr(csr),
                        "generate_key": generate_key, "key_type": key_type, "roles": roles, "browser": browser,
                        "purpose": purpose})
    _run(request, out, (p12_password, p12_password_file, p12_password_prompt))


@issue.command("qsealc")
@_key_options
@click.option("--qscd", is_flag=True, help="QCP-l-qscd with QcSSCD (the key lives in a QSCD)")
@common
def qsealc(org_id: str, csr: Path | None, generate_key: bool, key_type: str, roles: str | None, out: Path,
           p12_password: str | None, p12_password_file: Path | None, p12_password_prompt: bool, qscd: bool) -> None:
    """Issue a PSD2 QSealC."""
    request = _request({"kind": "qsealc", "org_id": org_id, "csr": _read_csr(csr), "generate_key": generate_key,
                        "key_type": key_type, "roles": roles, "qscd": qscd})
    _run(request, out, (p12_password, p12_password_file, p12_password_prompt))


@issue.command("two-qwac")
@_key_options
@click.option("--domain", "domains", multiple=True, required=True, help="DNS name of the site it binds (repeatable)")
@common
def two_qwac(org_id: str, csr: Path | None, generate_key: bool, key_type: str, roles: str | None, out: Path,
             p12_password: str | None, p12_password_file: Path | None, p12_password_prompt: bool,
             domains: tuple[str, ...]) -> None:
    """Issue a 2-QWAC (ETSI TS 119 411-5 4.2): QNCP-w-gen, EKU id-kp-tls-binding only, from the 2-QWAC CA. It is
    no TLS certificate: it signs the site's TLS certificate bindings ('qtsp binding sign'). Key: P-256 or RSA."""
    request = _request({"kind": "two-qwac", "org_id": org_id, "domains": list(domains), "csr": _read_csr(csr),
                        "generate_key": generate_key, "key_type": key_type, "roles": roles})
    _run(request, out, (p12_password, p12_password_file, p12_password_prompt))


@issue.command("bulk")
@click.argument("requests", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="a new or empty directory")
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="processes (default: CPU count)")
@click.option("--all-or-nothing", is_flag=True, help="issue nothing if any line is bad (default: issue the good lines)")
@common
def bulk(requests: Path, out: Path, workers: int | None, all_or_nothing: bool) -> None:
    """Issue many certificates from a JSON-lines file, one request per line.

    \b
    Each line: {"kind": "qwac"|"qsealc", "org_id": ..., "domains": [...], "roles": "PSP_AI",
                "qscd": false, "purpose": "server"|"client"|"both", "key_type": "ecdsa-p384"}
    ("browser": true is the older spelling of "purpose": "server").
    (kind and org_id required; any other field is refused; key_type defaults to the config's
    subscriber_key_type). Keys are generated and written with
    each certificate: OUT/SERIAL/cert.pem and key.pem (0600), OUT/chain-CA.pem. Blank lines are skipped.

    Every bad line is reported with its number and reason, and the good ones are still issued;
    the exit code is then that of the first bad line's error (2 malformed, 3 policy, 8 lint...).
    With --json, one object per line on stdout: {"line": N, "serial", "cert", "chain", "key"} or
    {"line": N, "error": KIND, "detail": ...}. A progress bar goes to stderr when it is a terminal.
    """
    from qtsp.services import bulk as bulk_svc
    from qtsp.services.context import open_sandbox

    sb = open_sandbox(data_dir())
    bars: list[Any] = []  # made at the first report, when the number of valid lines is known

    def progress(done: int, total: int) -> None:
        if not bars:
            bars.append(click.progressbar(length=total, label="issuing", file=sys.stderr, show_pos=True, show_percent=True,
                                           show_eta=True))
            bars[0].render_progress()
        bars[0].update(done - bars[0].pos)

    show_bar = not as_json() and sys.stderr.isatty()  # a terminal only: never in logs, pipes or --json
    try:
        result = bulk_svc.issue_file(sb, requests, out, actor=cli_actor(), workers=workers, keep_going=not all_or_nothing,
                                     progress=progress if show_bar else None)
    finally:
        if bars:
            bars[0].render_finish()
    _report_bulk(result)


def _report_bulk(result: BulkResult) -> None:
    failed = result.failed
    if as_json():
        for line in result.lines:
            click.echo(json.dumps(line.as_dict()))
    else:
        for line in failed:
            click.echo(f"line {line.line}: {line.error.value if line.error else 'error'}: {line.detail}", err=True)
        click.echo(result.summary())
    if failed:  # after every line was answered: the first bad line's kind and exit code, as one error line
        first = failed[0]
        raise QTSPError(first.error or Kind.MALFORMED,
                        f"{len(failed)} of {len(result.lines)} lines failed; the first, line {first.line}: {first.detail}")
