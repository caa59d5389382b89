"""CRLs judged by parties we did not write: ``openssl crl``/``openssl verify`` and pkilint's ``lint_crl``;
concurrent generators on PostgreSQL. (Content, numbers, regeneration in process: tests/unit/services/test_crl.py.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ca_store.models import CrlRecord
from qtsp.clock import utcnow
from qtsp.core.types import serial_hex
from qtsp.services import crl as crl_svc
from qtsp.services import revocation
from qtsp.services.context import Sandbox
from support.crl import EXPIRED_CERTS_ON_CRL, ca_cert, concurrent_numbers, crl_ext, issue_cert, load_crl, pkilint, run_crl_tool
from support.external import find_openssl
from support.pg import PostgresCluster


def test_root_arl_is_empty_valid_and_long_lived(sandbox: Sandbox, data_dir: Path, tmp_path: Path) -> None:
    now = utcnow()
    record = crl_svc.generate(sandbox, "root", now)
    arl = load_crl(record)
    root = ca_cert(data_dir, "root")
    assert len(arl) == 0 and record.entries == 0
    assert arl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    assert arl.next_update_utc - arl.last_update_utc == dt.timedelta(days=sandbox.config.arl_validity_days)
    assert crl_ext(arl, EXPIRED_CERTS_ON_CRL) is None  # the root issues no end-entity certificates
    assert arl.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == \
        root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    path = tmp_path / "root.crl"
    path.write_bytes(record.der)
    result = pkilint(path, "ARL")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.postgres
def test_concurrent_generators_on_postgres(pg_cluster: PostgresCluster, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from qtsp.services.hierarchy import init_sandbox

    monkeypatch.setenv("QTSP_DATABASE_URL", pg_cluster.new_database())
    sandbox = init_sandbox(tmp_path / "pg-data")
    try:
        concurrent_numbers(sandbox)
        record = crl_svc.generate(sandbox, "qwac-ca", utcnow(), delta=True)  # row exists now: ON CONFLICT path
        assert record.number == 10 and record.delta_base is not None
    finally:
        sandbox.engine.dispose()


# --- openssl and pkilint ---------------------------------------------------------------------


def _pem(record: CrlRecord, path: Path) -> Path:
    path.write_bytes(load_crl(record).public_bytes(Encoding.PEM))
    return path


def test_openssl_verifies_the_crl_and_sees_the_revocation(sandbox: Sandbox, data_dir: Path, tmp_path: Path,
                                                         revoked: dict[str, x509.Certificate]) -> None:
    openssl = find_openssl()
    record = crl_svc.generate(sandbox, "qwac-ca", utcnow())
    der = tmp_path / "qwac-ca.crl"
    der.write_bytes(record.der)
    bundle = tmp_path / "chain.pem"
    bundle.write_bytes((data_dir / "ca" / "root.pem").read_bytes() + (data_dir / "ca" / "qwac-ca.pem").read_bytes())
    result = run_crl_tool([openssl, "crl", "-inform", "DER", "-in", str(der), "-CAfile", str(bundle), "-noout"])
    assert result.returncode == 0 and "verify OK" in result.stdout + result.stderr, result.stdout + result.stderr

    crl_pem = _pem(record, tmp_path / "qwac-ca.crl.pem")
    for name, expected in (("good", "OK"), ("key-compromise", "certificate revoked"), ("unspecified", "certificate revoked")):
        leaf = tmp_path / f"{name}.pem"
        leaf.write_bytes(revoked[name].public_bytes(Encoding.PEM))
        result = run_crl_tool([openssl, "verify", "-crl_check", "-CAfile", str(data_dir / "ca" / "root.pem"),
                       "-untrusted", str(data_dir / "ca" / "qwac-ca.pem"), "-CRLfile", str(crl_pem), str(leaf)])
        out = result.stdout + result.stderr
        if expected == "OK":
            assert result.returncode == 0 and f"{leaf}: OK" in out, out
        else:
            assert result.returncode != 0 and expected in out, out

    # The whole chain: the issuing CA's certificate is checked against the root's ARL too.
    arl_pem = _pem(crl_svc.generate(sandbox, "root", utcnow()), tmp_path / "root.crl.pem")
    both = tmp_path / "crls.pem"
    both.write_bytes(crl_pem.read_bytes() + arl_pem.read_bytes())
    leaf = tmp_path / "good.pem"
    result = run_crl_tool([openssl, "verify", "-crl_check_all", "-CAfile", str(data_dir / "ca" / "root.pem"),
                   "-untrusted", str(data_dir / "ca" / "qwac-ca.pem"), "-CRLfile", str(both), str(leaf)])
    assert result.returncode == 0 and f"{leaf}: OK" in result.stdout, result.stdout + result.stderr


def test_pkilint_finds_no_errors(sandbox: Sandbox, tmp_path: Path, revoked: dict[str, x509.Certificate]) -> None:
    seal = issue_cert(sandbox, "seal", kind="qsealc")
    revocation.revoke(sandbox, serial_hex(seal.serial_number), "key-compromise")
    now = utcnow()
    for ca_id in ("qwac-ca", "qseal-ca"):
        for delta in (False, True):
            record = crl_svc.generate(sandbox, ca_id, now, delta=delta)
            path = tmp_path / f"{ca_id}{'-delta' if delta else ''}.crl"
            path.write_bytes(record.der)
            result = pkilint(path, "CRL")
            assert result.returncode == 0, f"{path.name}: {result.stdout}{result.stderr}"
    assert len(load_crl(crl_svc.generate(sandbox, "qseal-ca", now))) == 1
