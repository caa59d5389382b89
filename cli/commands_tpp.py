"""``qtsp tpp request``: a curl-like TPP client that seals PSD2 API requests with a QSealC (Berlin Group
draft-cavage, RFC 9421 or JAdES) and sends them over mutual TLS with the client QWAC.

The QSealC key is the directory's key.pem, or any key the sandbox's custodians hold (``--seal-key-ref
file:|vault-transit:|pkcs11:...``): those Signers are cryptography private keys, which is all the
relying-party signing code asks for (``SealKey.from_private_key``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from qtsp.core.errors import Kind, QTSPError

from .commands_bank import MAX_INPUT, read_file
from .trust_source import certificates
from .output import as_json, common, data_dir

MAX_BODY = 1024 * 1024


def _seal_key(directory: Path, key_ref: str | None, algorithm: str | None) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    from qtsp.relying_party.http_signatures import SealKey

    cert = certificates(directory / "cert.pem", "QSealC")[0]
    chain = certificates(directory / "chain.pem", "chain") if (directory / "chain.pem").exists() else []
    if key_ref is not None:
        from qtsp.core.types import KeyRef
        from qtsp.signers import signer_for

        key: Any = signer_for(KeyRef(key_ref), data_dir())
    else:
        try:
            key = load_pem_private_key(read_file(directory / "key.pem", "QSealC key"), None)
        except (ValueError, TypeError):
            raise QTSPError(Kind.MALFORMED, f"{directory / 'key.pem'} is not an unencrypted PEM private key") from None
    try:
        sealed = SealKey.from_private_key(key, cert, algorithm, chain)
        sealed.sign(b"probe")  # the key and the certificate must belong together; a custodian must answer
    except (ValueError, TypeError) as exc:
        raise QTSPError(Kind.MALFORMED, f"cannot sign with the QSealC key: {exc}") from None
    if key.public_key() != cert.public_key():
        raise QTSPError(Kind.MALFORMED, f"the key does not belong to {directory / 'cert.pem'}")
    return sealed


@click.group("tpp")
def tpp() -> None:
    """A TPP's side of PSD2 APIs: requests sealed with a QSealC, sent over mutual TLS."""


@tpp.command("request")
@click.argument("method")
@click.argument("url")
@click.option("--qsealc", "qsealc", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="directory with the QSealC: cert.pem, key.pem, chain.pem (as `qtsp issue qsealc --out` writes)")
@click.option("--qwac", "qwac", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
              help="directory with the client QWAC (`qtsp issue qwac --purpose client|both --out`)")
@click.option("--scheme", type=click.Choice(["berlin-group", "rfc9421", "jades"]), default="berlin-group",
              show_default=True, help="the request-signature scheme")
@click.option("--data", "data", type=click.Path(dir_okay=False, exists=True, path_type=Path), help="the body, from FILE")
@click.option("-H", "--header", "headers", multiple=True, metavar="'NAME: VALUE'", help="a header to send and sign")
@click.option("--cacert", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="what the bank's server certificate must chain to (default: the system's CAs)")
@click.option("-k", "--insecure", is_flag=True, help="do not check the bank's server certificate")
@click.option("--seal-key-ref", metavar="REF", help="sign through a key custodian (file:, vault-transit:, pkcs11:)")
@click.option("--algorithm", type=click.Choice(["RS256", "RS512", "PS256", "PS512", "ES256", "ES384"]),
              help="signature algorithm (default: from the key: RS256, ES256 or ES384)")
@click.option("--tamper", type=click.Choice(["digest-mismatch", "header-not-signed", "other-key", "clock-skew", "replay",
                                             "unsupported-algorithm", "unsigned", "no-certificate"]),
              help="spoil the request on purpose, to test a bank's verifier (docs/qsealc-requests.md)")
@click.option("-i", "--include", is_flag=True, help="print the status line and headers too")
@click.option("--fail", is_flag=True, help="exit 22 on an HTTP error status (curl's --fail)")
@click.option("--timeout", type=click.FloatRange(0.1, 300), default=30.0, show_default=True, help="seconds")
@common
def tpp_request(method: str, url: str, qsealc: Path, qwac: Path, scheme: str, data: Path | None,
                headers: tuple[str, ...], cacert: Path | None, insecure: bool, seal_key_ref: str | None,
                algorithm: str | None, tamper: str | None, include: bool, fail: bool, timeout: float) -> None:
    """Seal METHOD URL with the QSealC and send it over mutual TLS with the QWAC; print the answer."""
    import ssl
    import tempfile
    from urllib.parse import urlsplit

    from qtsp import files
    from qtsp.clock import utcnow
    from qtsp.relying_party import tpp_client
    from qtsp.relying_party.http_signatures import Request
    from qtsp.relying_party.http_signatures.tamper import signed

    parts = urlsplit(url)
    if parts.scheme != "https" or not parts.netloc:
        raise QTSPError(Kind.MALFORMED, f"not an https URL: {url[:200]!r}")
    method = method.upper()
    if not method.isalpha():
        raise QTSPError(Kind.MALFORMED, f"not an HTTP method: {method[:20]!r}")
    fields = []
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip() or any(c in header for c in "\r\n"):
            raise QTSPError(Kind.MALFORMED, f"-H takes 'Name: value', not {header[:80]!r}")
        fields.append((name.strip(), value.strip()))
    body = read_file(data, "body", MAX_BODY) if data else b""
    if body and not any(n.lower() == "content-type" for n, _ in fields):
        fields.append(("Content-Type", "application/json"))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    request = Request(method, target, parts.netloc, fields, body)
    key = _seal_key(qsealc, seal_key_ref, algorithm)
    to_send = signed(request, key, scheme, now=utcnow(), tamper=tamper)
    with tempfile.TemporaryDirectory(prefix="qtsp-tpp-") as work:
        # The QWAC followed by its chain in one file, as TLS sends it.
        client = files.write_new(Path(work) / "qwac-chain.pem", read_file(qwac / "cert.pem", "QWAC", MAX_INPUT)
                                 + (read_file(qwac / "chain.pem", "QWAC chain") if (qwac / "chain.pem").exists() else b""))
        try:
            context = tpp_client.client_context(certfile=str(client), keyfile=str(qwac / "key.pem"),
                                                cafile=str(cacert) if cacert else None, insecure=insecure)
            answers = [tpp_client.send(r, context, timeout=timeout) for r in to_send]
        except ssl.SSLError as exc:
            raise QTSPError(Kind.UNAUTHORISED, f"TLS with {parts.netloc}: {exc.reason or exc}") from None
        except (OSError, ValueError) as exc:
            raise QTSPError(Kind.NOT_FOUND, f"{parts.netloc}: {exc}") from None
    answer = answers[-1]
    if as_json():
        try:
            shown: Any = json.loads(answer.body)
        except ValueError:
            shown = answer.body.decode("utf-8", "replace")
        click.echo(json.dumps({"status": answer.status, "headers": dict(answer.headers), "body": shown,
                               "sent": [{"headers": dict(r.headers)} for r in to_send],
                               "earlier": [{"status": a.status} for a in answers[:-1]]}, indent=2))
    else:
        if include:
            click.echo(f"HTTP/1.1 {answer.status} {answer.reason}")
            for name, value in answer.headers:
                click.echo(f"{name}: {value}")
            click.echo("")
        click.echo(answer.body.decode("utf-8", "replace"))
    if fail and answer.status >= 400:
        click.get_current_context().exit(22)
