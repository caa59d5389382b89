"""``qtsp bank serve``: a demo bank (ASPSP) whose XS2A-style endpoints check every TPP request as a bank
must: the client QWAC of the mutual-TLS connection, the request signature (Berlin Group draft-cavage,
RFC 9421 or JAdES), the QSealC, revocation, the organisation and the endpoint's PSD2 role
(``qtsp.relying_party.bank_verifier``)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import click

from qtsp.core.errors import Kind, QTSPError

from .output import common, data_dir, no_time_travel
from .trust_source import certificates, trusted_list

MAX_INPUT = 1024 * 1024


def read_file(path: Path, what: str, limit: int = MAX_INPUT) -> bytes:
    from qtsp import files

    return files.read_bounded(path, what, limit)


def _self_signed(workdir: Path, now: dt.datetime) -> tuple[Path, Path, bytes]:
    """A throwaway server certificate for 127.0.0.1 / localhost / ::1, key 0600 in a private directory."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from qtsp import files

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "qtsp demo bank")])
    san = x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                       x509.IPAddress(ipaddress.ip_address("::1"))])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=30)).add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    pem = cert.public_bytes(serialization.Encoding.PEM)
    files.write_new(workdir / "server.pem", pem)
    files.write_new(workdir / "server.key", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                              serialization.NoEncryption()), private=True)
    return workdir / "server.pem", workdir / "server.key", pem


@click.group("bank")
def bank() -> None:
    """A demo bank (ASPSP) that checks signed PSD2 API requests as banks must."""


@bank.command("serve")
@click.option("--port", type=click.IntRange(0, 65535), required=True, help="TCP port (0: any free one, printed)")
@click.option("--host", default="127.0.0.1", show_default=True, help="address to listen on")
@click.option("--tl", "tl", metavar="URL|FILE", help="the Trusted List (default: this sandbox's, from its store)")
@click.option("--tl-signer", type=click.Path(dir_okay=False, path_type=Path), help="PEM the Trusted List must be signed by")
@click.option("--trust-anchor", "anchors", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="pin a CA certificate instead of a Trusted List (repeatable)")
@click.option("--chain", "chain", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PEM file(s) of intermediate CA certificates (repeatable)")
@click.option("--connect-to", metavar="HOST:PORT", help="send every OCSP/CRL/TL request there, keeping the URL's Host")
@click.option("--tls-cert", type=click.Path(dir_okay=False, path_type=Path), help="the bank's server certificate (PEM)")
@click.option("--tls-key", type=click.Path(dir_okay=False, path_type=Path), help="its key (PEM)")
@click.option("--tls-cert-out", type=click.Path(dir_okay=False, path_type=Path),
              help="without --tls-cert: write the generated self-signed server certificate here (for tpp --cacert)")
@click.option("--skew", type=click.IntRange(1, 3600), default=300, show_default=True,
              help="seconds a signature's time (Date, created, sigT) may differ from the bank's clock")
@click.option("--block", "blocked", multiple=True, metavar="SHA256",
              help="refuse a certificate by its SHA-256 fingerprint (hex): CERTIFICATE_BLOCKED (repeatable)")
@common
@no_time_travel
def bank_serve(port: int, host: str, tl: str | None, tl_signer: Path | None, anchors: tuple[Path, ...],
               chain: tuple[Path, ...], connect_to: str | None, tls_cert: Path | None, tls_key: Path | None,
               tls_cert_out: Path | None, skew: int, blocked: tuple[str, ...]) -> None:
    """Serve the demo bank over HTTPS with client certificates: GET /v1/accounts (PSP_AI), POST
    /v1/payments/<product> (PSP_PI), POST /v1/funds-confirmations (PSP_IC). Each request is checked and
    refused with the Berlin Group's error codes. Stops on SIGTERM or Ctrl-C."""
    import signal
    import tempfile
    import threading

    from qtsp import files, relying_party
    from qtsp.clock import utcnow
    from qtsp.relying_party import bank_server, demo_bank
    from qtsp.relying_party.bank_verifier import SignatureVerifier, Trust

    if tls_cert_out is not None and tls_cert_out.exists():
        raise QTSPError(Kind.CONFLICT, f"{tls_cert_out} exists; refusing to overwrite it")
    now = utcnow()
    fetcher = relying_party.Fetcher(connect_to=connect_to)
    parsed = trusted_list(anchors=anchors, tl=tl, tl_signer=tl_signer, fetcher=fetcher, now=now, data_dir=data_dir())
    intermediates = [c for p in chain for c in certificates(p, "chain file")]
    fingerprints = frozenset(b.lower().replace(":", "") for b in blocked)
    if any(len(f) != 64 or any(c not in "0123456789abcdef" for c in f) for f in fingerprints):
        raise QTSPError(Kind.MALFORMED, "--block takes a SHA-256 fingerprint: 64 hex digits")
    trust = Trust(parsed, intermediates, fetcher, fingerprints)
    app = SignatureVerifier(demo_bank.app, trust=trust, roles=demo_bank.ROLES, clock=utcnow,
                            skew=dt.timedelta(seconds=skew))
    with tempfile.TemporaryDirectory(prefix="qtsp-bank-") as tmp:  # the throwaway server key, gone on exit
        workdir = Path(tmp)
        pem = b""
        if tls_cert is None:
            if tls_key is not None:
                raise QTSPError(Kind.MALFORMED, "--tls-key goes with --tls-cert")
            certfile, keyfile, pem = _self_signed(workdir, now)
        else:
            if tls_key is None:
                raise QTSPError(Kind.MALFORMED, "--tls-cert needs --tls-key")
            certfile, keyfile = tls_cert, tls_key
        client_cas = [s.certificate for s in relying_party.anchors(parsed)] + intermediates
        try:
            server = bank_server.tls_server(app, host, port, certfile=str(certfile), keyfile=str(keyfile),
                                            client_cas=client_cas)
        except OSError as exc:
            raise QTSPError(Kind.CONFLICT, f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        if tls_cert is None and tls_cert_out is not None:
            files.write_new(tls_cert_out, pem)  # once listening: its presence says the bank is ready
        signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown, daemon=True).start())
        click.echo(f"demo bank on https://{host}:{server.server_address[1]} (mutual TLS; roles: "
                   + ", ".join(f"{p} {r}" for p, r in demo_bank.ROLES.items()) + ")", err=True)
        try:
            server.serve_forever(poll_interval=0.2)
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
