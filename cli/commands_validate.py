"""``qtsp validate``: the reference validator, as a bank's PSD2 validator should judge a certificate."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from qtsp.core.errors import Kind, QTSPError

from .output import common, emit, subject_of_text

MAX_INPUT = 1024 * 1024
MAX_TL = 8 * 1024 * 1024


def _read(path: Path, what: str, limit: int = MAX_INPUT) -> bytes:
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise QTSPError(Kind.NOT_FOUND, f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > limit:
        raise QTSPError(Kind.MALFORMED, f"{what} {path} is larger than {limit} bytes")
    return data


def _certificates(data: bytes, what: str) -> list[x509.Certificate]:
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise QTSPError(Kind.MALFORMED, f"{what} is not a PEM or DER certificate") from None


@click.command("validate")
@click.argument("certificate", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--purpose", type=click.Choice(["qwac", "qwac-client", "qsealc"]), default="qwac", show_default=True,
              help="qwac: TLS server; qwac-client: TLS client in mutual TLS; qsealc: electronic seal")
@click.option("--require-role", "roles", multiple=True, metavar="ROLE", help="a PSD2 role the certificate must carry (repeatable)")
@click.option("--chain", "chain", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PEM file(s) of intermediate certificates (repeatable)")
@click.option("--tl", "tl", metavar="URL|FILE",
              help="the Trusted List (default: this sandbox's, read from its store)")
@click.option("--tl-signer", "tl_signer", type=click.Path(dir_okay=False, path_type=Path),
              help="PEM of the certificate the Trusted List must be signed by (required with --tl)")
@click.option("--connect-to", "connect_to", metavar="HOST:PORT",
              help="send every HTTP request (OCSP, CRL, Trusted List) there, keeping the URL's Host header")
@common
def validate(certificate: Path, purpose: str, roles: tuple[str, ...], chain: tuple[Path, ...], tl: str | None,
             tl_signer: Path | None, connect_to: str | None) -> None:
    """Judge CERTIFICATE as a PSD2 validator should: path to the Trusted List, revocation (OCSP, then the
    CRL), QCStatements and PSD2 attributes, key usage. Exit 0 accept, 1 reject (with the reasons)."""
    from qtsp.core.names import readable_oids
    from qtsp import relying_party
    from qtsp.services import trusted_list
    from qtsp.clock import utcnow

    ctx = click.get_current_context()
    at = ctx.obj.get("at")
    cert_list = _certificates(_read(certificate, "certificate"), str(certificate))
    if len(cert_list) != 1:
        raise QTSPError(Kind.MALFORMED, f"{certificate} holds {len(cert_list)} certificates; give one (the rest with --chain)")
    intermediates = [c for path in chain for c in _certificates(_read(path, "chain file"), str(path))]
    fetcher = relying_party.Fetcher(connect_to=connect_to, at=at)
    now = utcnow()
    if tl is None:
        if tl_signer is not None:
            raise QTSPError(Kind.MALFORMED, "--tl-signer goes with --tl")
        from qtsp.services.context import open_sandbox

        try:
            sandbox = open_sandbox(ctx.obj["data_dir"])
        except QTSPError as exc:
            if exc.kind is not Kind.NOT_FOUND:
                raise
            raise QTSPError(Kind.NOT_FOUND, f"{exc.detail}; or validate against a published Trusted List: "
                            "--tl URL|FILE --tl-signer PEM") from None
        xml = trusted_list.current(sandbox, now).xml
        pins = [trusted_list.signer_certificate(sandbox)]
    else:
        if tl_signer is None:
            raise QTSPError(Kind.MALFORMED, "--tl needs --tl-signer: a Trusted List is only as good as the pinned "
                            "certificate it is verified against ('qtsp tl signer --out FILE', or /tl-signer.pem)")
        pins = _certificates(_read(tl_signer, "TL signer"), str(tl_signer))
        if tl.startswith(("http://", "https://")):
            xml = fetcher.fetch(tl, limit=MAX_TL)
        else:
            xml = _read(Path(tl), "Trusted List", MAX_TL)
    parsed = relying_party.parse_and_verify_trusted_list(xml, pins, now)
    verdict = relying_party.validate(cert_list[0], trusted_list=parsed, intermediates=intermediates, purpose=purpose,
                                     require_roles=roles, at=now, fetcher=fetcher)

    # Subjects as people read them (organizationIdentifier=..., not 2.5.4.97=...), in the text and the JSON alike.
    data = verdict.as_dict()
    data["path"] = [subject_of_text(p) for p in data["path"]]
    for reason in data["reasons"]:
        reason["message"] = readable_oids(reason["message"])
    data["revocation"] = [{**rev, "certificate": readable_oids(str(rev.get("certificate", "")))} for rev in data["revocation"]]

    def text() -> str:
        lines = [f"{'ACCEPT' if verdict.accepted else 'REJECT'}  {certificate} as {purpose} at {verdict.at:%Y-%m-%dT%H:%M:%SZ}"]
        lines += [f"  - {r['code']}: {r['message']}" for r in data["reasons"]]
        lines.append("  path: " + " <- ".join(reversed(data["path"])))
        for rev in data["revocation"]:
            lines.append(f"  revocation of {rev['certificate']}: {rev['status']}" + (f" (by {rev['source']})" if "source" in rev else ""))
            lines += [f"    unusable first: {problem}" for problem in rev.get("fallback_after", [])]
        if verdict.qualified.get("psd2"):
            p = verdict.qualified["psd2"]
            lines.append(f"  PSD2: roles {', '.join(p['roles'])}; NCA {p['nca_id']} ({p['nca_name']})")
        return "\n".join(lines)

    emit(data, text)
    if not verdict.accepted:
        ctx.exit(1)
