"""``qtsp lint FILE``: a certificate, a CRL or an OCSP response (PEM or DER, the type detected) against its
profile: pkilint underneath, our own CRL and OCSP rules (``qtsp.relying_party.lint_crl`` / ``lint_ocsp``)
on top, each finding naming its document, edition and clause. Exit 0 clean, 1 errors found, 2 unusable
input. Needs no sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from qtsp.core.errors import Kind, QTSPError

from .output import common, emit, table

if TYPE_CHECKING:  # cryptography is imported when the command runs: `qtsp --help` stays fast
    from cryptography import x509

MAX_ISSUER = 1024 * 1024
MAX_REQUEST = 64 * 1024
_SEVERITY = {"FATAL": "error", "ERROR": "error", "WARNING": "warning", "NOTICE": "info", "INFO": "info"}


def read_input(path: Path, what: str, limit: int) -> bytes:
    """The file's bytes; a file that cannot be read, or is too large, is unusable input (exit 2)."""
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise QTSPError(Kind.MALFORMED, f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise QTSPError(Kind.MALFORMED, f"{what} {path} is larger than {limit} bytes")
    return data


def _issuer(path: Path | None) -> x509.Certificate | None:
    from cryptography import x509  # noqa: F811

    if path is None:
        return None
    data = read_input(path, "issuer certificate", MAX_ISSUER)
    try:
        certs = x509.load_pem_x509_certificates(data) if b"-----BEGIN" in data else [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"--issuer {path} is not a PEM or DER certificate") from None
    if len(certs) != 1:
        raise QTSPError(Kind.MALFORMED, f"--issuer {path} holds {len(certs)} certificates; give the one CA")
    return certs[0]


@click.command("lint")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--issuer", "issuer_path", type=click.Path(dir_okay=False, path_type=Path),
              help="the CA certificate (PEM or DER) that issued the CRL, or the certificates the OCSP response is "
                   "about: signature, issuer name and responder authorisation are checked against it")
@click.option("--request", "request_path", type=click.Path(dir_okay=False, path_type=Path),
              help="the DER OCSP request the response answers: its nonce must be echoed, its CertIDs answered")
@common
def lint(file: Path, issuer_path: Path | None, request_path: Path | None) -> None:
    """Lint FILE, a certificate, a CRL or an OCSP response (PEM or DER; the type is detected), as of --at
    (default now). Exit 0 clean (warnings allowed), 1 errors found, 2 unusable input."""
    from cryptography import x509

    from qtsp import lint_documents
    from qtsp.clock import utcnow
    from qtsp.relying_party.artifact_lint import CERTIFICATE, CRL, MAX_ARTIFACT_BYTES, lint_artifact
    from qtsp.relying_party.findings import Finding
    from qtsp.relying_party.lint_crl import is_arl_for

    data = read_input(file, "file", MAX_ARTIFACT_BYTES)
    issuer = _issuer(issuer_path)
    request = read_input(request_path, "OCSP request", MAX_REQUEST) if request_path is not None else None
    at = click.get_current_context().obj.get("at") or utcnow()
    report = lint_artifact(data, at=at, issuer=issuer, request=request)
    linter_set = ""
    try:
        if report.type == CERTIFICATE:
            linter_set, raw = lint_documents.certificate_findings(report.der)
        elif report.type == CRL:
            raw = lint_documents.crl_findings(report.der, arl=is_arl_for(x509.load_der_x509_crl(report.der), issuer))
        else:
            raw = lint_documents.ocsp_findings(report.der)
    except Exception as exc:  # pkilint cannot decode it at all: that is a finding, not a crash  # noqa: BLE001
        raw = [("pkilint.decoding_failed", "FATAL", f"{type(exc).__name__}: {str(exc)[:200]}")]
    source = lint_documents.PKILINT + (f" ({linter_set})" if linter_set else "")
    report.findings = [Finding(code, source, _SEVERITY.get(severity, "error"), message)  # type: ignore[arg-type]
                       for code, severity, message in raw] + report.findings
    data_out = report.as_dict()

    def text() -> str:
        errors = len(report.errors)
        head = f"{'CLEAN' if not errors else 'ERRORS'}  {file}: {report.type}, {errors} error(s), " \
               f"{len(report.findings) - errors} other finding(s), as of {at:%Y-%m-%dT%H:%M:%SZ}"
        rows = [[f.severity, f.rule, f.source, f.message] for f in report.findings]
        return head + ("\n\n" + table(rows, ["SEVERITY", "RULE", "SOURCE", "MESSAGE"]) if rows else "")

    emit(data_out, text)
    if report.errors:
        click.get_current_context().exit(1)
