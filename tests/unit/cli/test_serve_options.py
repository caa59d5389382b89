"""`qtsp serve` refuses bad --tls-cert/--tls-key and --metrics-token-file before it starts anything: one
clear line, exit code non-zero, no key material in the message. The listener itself:
tests/system/ops/test_serve_tls.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from support.cli import run


def _key_pem(path: Path, password: bytes | None = None) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    encryption = serialization.BestAvailableEncryption(password) if password else serialization.NoEncryption()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    path.write_bytes(pem)
    return pem


def _refused(result, *words: str) -> str:  # type: ignore[no-untyped-def]
    assert result.exit_code != 0, f"accepted: {result.output}"
    message = result.output
    assert "Traceback" not in message
    for word in words:
        assert word in message, message
    return message


def test_tls_options_go_together(data_dir: Path, tmp_path: Path) -> None:
    cert, _ = _pair(tmp_path)
    _refused(run("serve", "--data-dir", data_dir, "--tls-cert", cert, "--no-scheduler"), "--tls-key")


def test_mismatched_or_encrypted_key_is_refused_without_showing_it(data_dir: Path, tmp_path: Path) -> None:
    cert, _ = _pair(tmp_path)
    other = _key_pem(tmp_path / "other.pem")
    message = _refused(run("serve", "--data-dir", data_dir, "--tls-cert", cert, "--tls-key", tmp_path / "other.pem"),
                       "--tls-cert")
    assert other.decode().splitlines()[1] not in message
    encrypted = _key_pem(tmp_path / "encrypted.pem", b"secret-pass")
    message = _refused(run("serve", "--data-dir", data_dir, "--tls-cert", cert, "--tls-key", tmp_path / "encrypted.pem"),
                       "unencrypted")
    assert encrypted.decode().splitlines()[1] not in message and "secret-pass" not in message


@pytest.mark.parametrize("content", ["", "short", "two words of enough length here"])
def test_weak_metrics_token_is_refused(data_dir: Path, tmp_path: Path, content: str) -> None:
    token = tmp_path / "token"
    token.write_text(content)
    message = _refused(run("serve", "--data-dir", data_dir, "--metrics-token-file", token), "--metrics-token-file")
    if content:
        assert content not in message


def _pair(directory: Path) -> tuple[Path, Path]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "listener")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1)).sign(key, hashes.SHA256()))
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    return directory / "cert.pem", directory / "key.pem"
