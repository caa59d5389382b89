"""``qtsp issue``: QWACs and QSealCs from a CSR or a generated key; bulk issuance."""

from __future__ import annotations

from pathlib import Path

import click

from qtsp.core.errors import Kind, QTSPError
from qtsp.core.keys import MAX_CSR_BYTES
from qtsp.services import issuance, output
from qtsp.services.context import open_sandbox

from .output import common, data_dir, emit

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


def _run(request: issuance.IssueRequest, out: Path, p12_password: str | None) -> None:
    output.check_out_dir(out, with_key=request.generate_key is not None, with_p12=p12_password is not None)
    sb = open_sandbox(data_dir())
    issued = issuance.issue(sb, request)
    files = output.write_issued(issued, out, p12_password=p12_password)
    cert = issued.certificate
    emit(
        {"serial": issued.serial, "issuer": issued.issuer_id, "subject": cert.subject.rfc4514_string(),
         "not_before": cert.not_valid_before_utc.isoformat(), "not_after": cert.not_valid_after_utc.isoformat(),
         "files": [str(f) for f in files]},
        lambda: "\n".join(
            [f"issued {request.kind.upper()} serial {issued.serial} by {issued.issuer_id}",
             f"  subject:  {cert.subject.rfc4514_string()}",
             f"  valid:    {cert.not_valid_before_utc:%Y-%m-%d %H:%M:%S} to {cert.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"]
            + [f"  wrote:    {f}" for f in files]
        ),
    )


def _key_options(func):  # type: ignore[no-untyped-def]
    func = click.option("--p12-password", help="also write bundle.p12 (needs --generate-key)")(func)
    func = click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="output directory")(func)
    func = click.option("--roles", help="narrow the register's roles, e.g. PSP_AI")(func)
    func = click.option("--key-type", type=KEY_CHOICES, default="ecdsa-p256", show_default=True, help="for --generate-key")(func)
    func = click.option("--generate-key", is_flag=True, help="generate the subscriber key here (written 0600, never stored)")(func)
    func = click.option("--csr", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="PKCS#10 request, PEM or DER")(func)
    func = click.option("--org-id", required=True, help="the PSP's organizationIdentifier (must be in the register)")(func)
    return func


@issue.command("qwac")
@_key_options
@click.option("--domain", "domains", multiple=True, required=True, help="DNS name (repeatable)")
@click.option("--browser", is_flag=True, help="browser variant: serverAuth only (default: mTLS, serverAuth + clientAuth)")
@common
def qwac(org_id: str, csr: Path | None, generate_key: bool, key_type: str, roles: str | None, out: Path,
         p12_password: str | None, domains: tuple[str, ...], browser: bool) -> None:
    """Issue a PSD2 QWAC."""
    request = issuance.IssueRequest("qwac", org_id, domains=domains, csr=_read_csr(csr),
                                    generate_key=key_type if generate_key else None, roles=roles, browser=browser)
    _run(request, out, p12_password)


@issue.command("qsealc")
@_key_options
@click.option("--qscd", is_flag=True, help="QCP-l-qscd with QcSSCD (the key lives in a QSCD)")
@common
def qsealc(org_id: str, csr: Path | None, generate_key: bool, key_type: str, roles: str | None, out: Path,
           p12_password: str | None, qscd: bool) -> None:
    """Issue a PSD2 QSealC."""
    request = issuance.IssueRequest("qsealc", org_id, csr=_read_csr(csr),
                                    generate_key=key_type if generate_key else None, roles=roles, qscd=qscd)
    _run(request, out, p12_password)


@issue.command("bulk")
@click.argument("requests", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path))
@click.option("--workers", type=click.IntRange(1, 64), default=None, help="processes (default: CPU count)")
@common
def bulk(requests: Path, out: Path, workers: int | None) -> None:
    """Issue many certificates from a JSON-lines file, one request per line.

    Each line: {"kind": "qwac"|"qsealc", "org_id": ..., "domains": [...], "roles": "PSP_AI",
    "qscd": false, "browser": false, "key_type": "ecdsa-p256"}. Keys are generated and written
    with each certificate. Every line is validated before anything is issued.
    """
    from qtsp.services import bulk as bulk_svc

    sb = open_sandbox(data_dir())
    result = bulk_svc.issue_file(sb, requests, out, workers=workers)
    emit(result.as_dict(), result.summary)
