"""Key custody: the file: backend and Signers that builders accept but that never export keys."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from qtsp.core.errors import Kind, QTSPError
from qtsp.signers import backend_for, signer_for
from qtsp.signers.file import FileBackend


def test_file_keys_are_encrypted_0600_and_signers_refuse_export(tmp_path: Path) -> None:
    backend = FileBackend(tmp_path)
    info = backend.generate("ca-1", "ecdsa-p384")
    path = tmp_path / "keys" / "ca-1.p8"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "secrets" / "key-passphrase").stat().st_mode & 0o777 == 0o600
    assert b"ENCRYPTED PRIVATE KEY" in path.read_bytes()
    with pytest.raises(TypeError):
        serialization.load_pem_private_key(path.read_bytes(), None)  # needs the passphrase
    signer = signer_for(info.ref, tmp_path)
    assert isinstance(signer, ec.EllipticCurvePrivateKey)
    with pytest.raises(QTSPError):
        signer.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    assert "PRIVATE" not in repr(signer)
    with pytest.raises(QTSPError) as err:
        backend.generate("ca-1", "ecdsa-p384")
    assert err.value.kind is Kind.CONFLICT


def test_wrong_passphrase_is_signer_unavailable_without_leaking(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("QTSP_KEY_PASSPHRASE", "right horse battery")
    info = FileBackend(tmp_path).generate("ca-1", "rsa-3072")
    assert not (tmp_path / "secrets").exists()  # the env passphrase is used, none is written
    monkeypatch.setenv("QTSP_KEY_PASSPHRASE", "wrong")
    with pytest.raises(QTSPError) as err:
        FileBackend(tmp_path).signer(info.ref)
    assert err.value.kind is Kind.SIGNER_UNAVAILABLE and "right horse" not in err.value.detail


def test_unknown_scheme_is_refused(tmp_path: Path) -> None:
    with pytest.raises(QTSPError) as err:
        backend_for("tpm2:handle=0x81000001", tmp_path)
    assert err.value.kind is Kind.SIGNER_UNAVAILABLE
