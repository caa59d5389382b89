"""``qtsp trust export``: a trust store (PEM bundle, PKCS#12, JKS) of the CA certificates a Trusted List grants
for QWACs or QSealCs, for nginx, HAProxy and Java. The selection and the PEM/PKCS#12 encodings are in
``qtsp.relying_party.trust_export``; JKS is written by Java's own keytool from the PKCS#12 store."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import click

from qtsp.core.errors import Kind, QTSPError

from .trust_source import published_list
from .output import common, emit

MAX_TL = 8 * 1024 * 1024
MAX_FILE = 1024 * 1024
DEFAULT_STORE_PASSWORD = "changeit"  # what Java's own cacerts uses: a trust store holds no secret
_STOREPASS_ENV = "QTSP_TRUSTSTORE_PASSWORD"


@click.group("trust")
def trust() -> None:
    """Trust stores for relying parties, from a Trusted List."""


def _read(path: Path, what: str, limit: int) -> bytes:
    from qtsp import files

    return files.read_bounded(path, what, limit)


def _password(path: Path | None) -> bytes:
    if path is None:
        return DEFAULT_STORE_PASSWORD.encode()
    lines = _read(path, "password file", 4096).splitlines()
    if not lines or not lines[0]:
        raise QTSPError(Kind.MALFORMED, f"the password file {path} is empty")
    return lines[0]


def _jks(p12: bytes, password: bytes) -> bytes:
    """Java's keytool turns the PKCS#12 trust store into a JKS one (trusted-certificate entries, same aliases)."""
    import tempfile

    from qtsp import files

    keytool = shutil.which("keytool")
    if keytool is None:
        raise QTSPError(Kind.NOT_FOUND, "--format jks needs Java's keytool (a JDK, e.g. apt-get install "
                        "openjdk-17-jdk-headless); Java 9 and later read --format p12 as a trust store too")
    with tempfile.TemporaryDirectory(prefix="qtsp-jks-") as tmp:
        source = files.write_new(Path(tmp) / "in.p12", p12, private=True)
        target = Path(tmp) / "out.jks"
        env = {**os.environ, _STOREPASS_ENV: password.decode()}
        done = subprocess.run([keytool, "-importkeystore", "-noprompt", "-srckeystore", str(source), "-srcstoretype",
                               "PKCS12", "-srcstorepass:env", _STOREPASS_ENV, "-destkeystore", str(target),
                               "-deststoretype", "JKS", "-deststorepass:env", _STOREPASS_ENV],
                              capture_output=True, text=True, timeout=120, env=env, check=False)
        if done.returncode != 0 or not target.exists():
            raise QTSPError(Kind.STORAGE, f"keytool could not write the JKS store: {(done.stderr or done.stdout).strip()[:300]}")
        return target.read_bytes()


@trust.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--tl", "tl", required=True, metavar="URL|FILE", help="the Trusted List (ETSI TS 119 612 XML)")
@click.option("--tl-signer", "tl_signer", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PEM of the certificate the Trusted List must be signed by")
@click.option("--service", "service", required=True, type=click.Choice(["QWAC", "QSealC"], case_sensitive=False),
              help="QWAC: services granted ForWebSiteAuthentication; QSealC: ForeSeals")
@click.option("--format", "fmt", type=click.Choice(["pem", "p12", "jks"]), default="pem", show_default=True,
              help="pem: nginx/HAProxy CA file; p12: PKCS#12 trust store (Java 9+); jks: Java KeyStore (keytool)")
@click.option("--password-file", "password_file", type=click.Path(dir_okay=False, path_type=Path),
              help=f"the p12/jks store password, first line of this file (default {DEFAULT_STORE_PASSWORD!r}, "
                   "like Java's cacerts: a trust store holds no secret, the password only guards its integrity)")
@click.option("--issuers-from-aia", "with_issuers", is_flag=True,
              help="add each CA's issuers up to a self-signed root, fetched from their caIssuers URLs: OpenSSL "
                   "(nginx, HAProxy) builds paths to a root only (not Trusted List services; see docs/lint.md)")
@click.option("--connect-to", "connect_to", metavar="HOST:PORT",
              help="send every HTTP request (Trusted List, caIssuers) there, keeping the URL's Host header")
@common
def trust_export(out: Path, tl: str, tl_signer: Path, service: str, fmt: str, password_file: Path | None,
                 with_issuers: bool, connect_to: str | None) -> None:
    """Write OUT: the CA certificates of the CA/QC services the Trusted List grants for QWACs or QSealCs at
    --at (default now; the service history decides an earlier time), each named after its service."""
    from cryptography.x509.oid import NameOID

    from qtsp import files
    from qtsp.clock import real_utcnow, utcnow
    from qtsp.relying_party import Fetcher
    from qtsp.relying_party import trust_export as export

    kind = {"qwac": "QWAC", "qsealc": "QSealC"}[service.lower()]
    if out.exists() or out.is_symlink():
        raise QTSPError(Kind.CONFLICT, f"refusing to overwrite {out}: it exists")
    password = _password(password_file) if fmt != "pem" else b""
    # The list itself is checked as of now (signature, NextUpdate); the services as of --at.
    fetcher = Fetcher(connect_to=connect_to)
    parsed = published_list(tl, tl_signer, fetcher, real_utcnow())
    at = click.get_current_context().obj.get("at") or utcnow()
    anchors, skipped = export.granted(parsed, kind, at)
    if not anchors:
        raise QTSPError(Kind.NOT_FOUND, f"the Trusted List grants no CA/QC service for {kind} at {at:%Y-%m-%dT%H:%M:%SZ}"
                        + (f" ({'; '.join(skipped)})" if skipped else ""))
    extra, problems = export.issuers_from_aia(anchors, lambda url: fetcher.fetch(url, limit=export.MAX_AIA_CERT_BYTES),
                                              at) if with_issuers else ([], [])
    if problems:
        raise QTSPError(Kind.NOT_FOUND, "--issuers-from-aia: " + "; ".join(problems))
    if fmt == "pem":
        data = export.pem_bundle(anchors, kind=kind, tl=parsed, at=at, path_completion=extra)
    else:
        data = export.pkcs12_truststore(anchors + extra, password)
        if fmt == "jks":
            data = _jks(data, password)
    files.write_new(out, data)
    # "issuer_dn": the subject as OpenSSL prints it in RFC 2253 form (nginx's $ssl_client_i_dn), for a gateway
    # that pins the issuing CA (see docs/lint.md).
    entries: list[dict[str, object]] = [
        {"name": a.name, "subject": a.certificate.subject.rfc4514_string(), "sha256": a.sha256,
         "issuer_dn": a.certificate.subject.rfc4514_string({NameOID.ORGANIZATION_IDENTIFIER: "organizationIdentifier"}),
         "trusted_list_service": a not in extra} for a in anchors + extra]
    emit({"file": str(out), "format": fmt, "service": kind, "at": at.isoformat(), "sequence": parsed.sequence,
          "anchors": entries, "skipped": skipped},
         lambda: "\n".join([f"{len(entries)} {kind} trust anchor(s) written to {out} ({fmt}), Trusted List sequence "
                            f"{parsed.sequence} as of {at:%Y-%m-%dT%H:%M:%SZ}:"]
                           + [f"  {e['name']}  SHA-256 {str(e['sha256'])[:16]}..." for e in entries]
                           + [f"  left out: {s}" for s in skipped]))
