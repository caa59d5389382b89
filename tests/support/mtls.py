"""Mutual-TLS helpers for the gateway tests (the relying-party matrix, the trust-store consumers): a gateway's
own throwaway server certificate, and a client that presents a certificate and reports what it saw."""

from __future__ import annotations

import datetime as dt
import http.client
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PEM = serialization.Encoding.PEM


def write_key(path: Path, key: object) -> Path:
    """The private key as unencrypted PKCS#8 PEM, 0600 (test keys are made by the tests)."""
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8,  # type: ignore[attr-defined]
                                       serialization.NoEncryption()))
    path.chmod(0o600)
    return path


def gateway_identity(work: Path) -> tuple[Path, Path]:
    """A gateway's own server certificate and key (self-signed: the clients here do not judge it)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "gateway.test")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path = work / "gateway.pem"
    cert_path.write_bytes(cert.public_bytes(PEM))
    return cert_path, write_key(work / "gateway.key", key)


def https_get(port: int, cert: Path, key: Path, timeout: float = 15) -> tuple[int | None, str]:
    """GET / on 127.0.0.1:``port`` presenting ``cert`` (leaf, or leaf and chain) and ``key``: (HTTP status, or
    None when the handshake or the connection failed; what was seen)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the gateway's own certificate is not what is judged here
    context.load_cert_chain(cert, key)
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=timeout)
    try:
        conn.request("GET", "/")
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    except (ssl.SSLError, OSError, http.client.HTTPException) as exc:
        return None, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
