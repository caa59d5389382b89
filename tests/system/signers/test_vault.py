"""Keys in a real OpenBao Transit engine: signing, versions, init --keystore vault, AppRole,
rotation, and what happens while Vault is sealed."""

from __future__ import annotations

import datetime as dt
import sqlite3
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.x509 import ocsp

from cli.main import cli
from qtsp.core.errors import Kind, QTSPError
from qtsp.services import issuance, keys, revocation
from qtsp.services.context import open_sandbox
from qtsp.signers import backend_for
from qtsp.signers.vault import parse_ref

ORG = "PSDBE-NBB-0123456789"


def _unique(prefix: str) -> str:
    import os

    return f"{prefix}-{os.urandom(3).hex()}"


@pytest.mark.parametrize("key_type", ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-3072", "rsa-4096"])
def test_transit_signer_signs_verifiably_with_pinned_versions(vault_env, tmp_path: Path, key_type: str) -> None:
    backend = backend_for("vault-transit", tmp_path)
    info = backend.generate(_unique("t"), key_type)
    name, version = parse_ref(info.ref)
    assert version == 1
    data = vault_env.client().secrets.transit.read_key(name=name)["data"]
    assert data["exportable"] is False
    signer = backend.signer(info.ref)
    messages = [f"message {i}".encode() for i in range(7)]
    algorithm = ec.ECDSA(hashes.SHA256()) if key_type.startswith("ecdsa") else (padding.PKCS1v15(), hashes.SHA256())
    signatures = signer.sign_many(messages, algorithm)  # batch_input
    public = info.public_key
    for message, signature in zip(messages, signatures, strict=True):
        if key_type.startswith("ecdsa"):
            public.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        else:
            public.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    rotated = backend.rotate(info.ref)
    assert parse_ref(rotated.ref) == (name, 2)
    assert rotated.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) != \
        public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    old = backend.signer(info.ref)  # still version 1 after the rotation
    one = old.sign(b"after rotation", *algorithm) if key_type.startswith("rsa") else old.sign(b"after rotation", algorithm)
    if key_type.startswith("ecdsa"):
        public.verify(one, b"after rotation", ec.ECDSA(hashes.SHA256()))
    else:
        public.verify(one, b"after rotation", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(QTSPError):
        signer.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def _openssl_verify(root: Path, chain: Path, leaf: Path) -> None:
    result = subprocess.run(["openssl", "verify", "-CAfile", str(root), "-untrusted", str(chain), str(leaf)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def _vault_sandbox(tmp_path: Path) -> Path:
    data_dir = tmp_path / "vault-sandbox"
    runner = CliRunner()
    result = runner.invoke(cli, ["init", "--keystore", "vault", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(cli, ["register", "add", "--data-dir", str(data_dir), "--org-id", ORG, "--name", "Example Fintech SA",
                                 "--roles", "PSP_AI,PSP_PI", "--locality", "Brussels", "--registration-number", "0123.456.789"])
    assert result.exit_code == 0, result.output
    return data_dir


def test_init_with_vault_keystore_issues_and_never_stores_the_token(vault_env, tmp_path: Path) -> None:
    data_dir = _vault_sandbox(tmp_path)
    runner = CliRunner()
    result = runner.invoke(cli, ["issue", "qwac", "--data-dir", str(data_dir), "--org-id", ORG, "--domain", "api.example.com",
                                 "--generate-key", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    _openssl_verify(data_dir / "ca" / "root.pem", tmp_path / "out" / "chain.pem", tmp_path / "out" / "cert.pem")
    listed = runner.invoke(cli, ["keys", "list", "--json", "--data-dir", str(data_dir)])
    refs = [k["ref"] for k in __import__("json").loads(listed.output)]
    # Two roots, three issuing CAs, and the five delegated responders (each CA's, and each root's for its CAs)
    assert len(refs) == 10 and all(r.startswith("vault-transit:qtsp-") and r.endswith("@1") for r in refs)
    assert not list((data_dir / "keys").glob("*")) if (data_dir / "keys").exists() else True
    token = vault_env.token.encode()
    for path in data_dir.rglob("*"):
        if path.is_file():
            assert token not in path.read_bytes(), f"the Vault token leaked into {path}"
    assert token.decode() not in result.output


def test_approle_login_works_without_a_token(vault_env, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = vault_env.client()
    if "approle/" not in client.sys.list_auth_methods()["data"]:
        client.sys.enable_auth_method("approle")
    client.sys.create_or_update_policy("qtsp", 'path "transit/*" { capabilities = ["create","read","update","list"] }\n'
                                               'path "sys/mounts" { capabilities = ["read"] }')
    client.auth.approle.create_or_update_approle("qtsp", token_policies=["qtsp"], token_ttl="1h")
    role_id = client.auth.approle.read_role_id("qtsp")["data"]["role_id"]
    secret_id = client.auth.approle.generate_secret_id("qtsp")["data"]["secret_id"]
    monkeypatch.delenv("QTSP_VAULT_TOKEN")
    monkeypatch.setenv("QTSP_VAULT_ROLE_ID", role_id)
    monkeypatch.setenv("QTSP_VAULT_SECRET_ID", secret_id)
    data_dir = _vault_sandbox(tmp_path)
    sb = open_sandbox(data_dir)
    issued = issuance.issue(sb, issuance.IssueRequest("qsealc", ORG, generate_key="ecdsa-p256"))
    assert issued.certificate.issuer == issued.chain[0].subject
    monkeypatch.setenv("QTSP_VAULT_SECRET_ID", "wrong")
    with pytest.raises(QTSPError) as err:
        backend_for("vault-transit", data_dir).public_key("vault-transit:nothing@1")
    assert err.value.kind is Kind.SIGNER_UNAVAILABLE and "wrong" not in err.value.detail


def _ocsp_status(app_client, issuer: x509.Certificate, cert: x509.Certificate) -> ocsp.OCSPResponse:  # type: ignore[no-untyped-def]
    der = ocsp.OCSPRequestBuilder().add_certificate(cert, issuer, hashes.SHA1()).build().public_bytes(serialization.Encoding.DER)
    response = app_client.post("/ocsp", data=der, content_type="application/ocsp-request")
    return ocsp.load_der_ocsp_response(response.data)


def test_rotation_in_vault_ocsp_responder_and_ca_rollover(vault_env, tmp_path: Path) -> None:
    from qtsp.web import create_app

    data_dir = _vault_sandbox(tmp_path)
    sb = open_sandbox(data_dir)
    first = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("a.example.com",), generate_key="ecdsa-p256"))
    client = create_app({"data_dir": data_dir}).test_client()
    before = _ocsp_status(client, first.chain[0], first.certificate)
    new_ref = keys.rotate_ocsp(sb, first.issuer_id)
    assert parse_ref(new_ref)[1] == 2  # a new Transit key version
    after = _ocsp_status(client, first.chain[0], first.certificate)
    assert after.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert after.certificates[0].serial_number != before.certificates[0].serial_number  # the new responder signs
    after.certificates[0].public_key().verify(after.signature, after.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))
    # the old responder certificate is left valid (not revoked, not expired)
    assert before.certificates[0].not_valid_after_utc > dt.datetime.now(dt.timezone.utc)

    new_ca = keys.rollover_ca(sb, first.issuer_id)
    assert new_ca == "qwac-ca-2"
    second = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("b.example.com",), generate_key="ecdsa-p256"))
    assert second.issuer_id == "qwac-ca-2"
    assert second.chain[0].public_key() != first.chain[0].public_key()
    for issued, name in ((first, "first"), (second, "second")):
        (tmp_path / f"{name}.pem").write_bytes(issued.certificate.public_bytes(serialization.Encoding.PEM))
        (tmp_path / f"{name}-chain.pem").write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in issued.chain))
        _openssl_verify(data_dir / "ca" / "root.pem", tmp_path / f"{name}-chain.pem", tmp_path / f"{name}.pem")
    aia = second.certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    assert any(d.access_location.value.endswith("/ca/qwac-ca-2.der") for d in aia)
    crldp = second.certificate.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert crldp[0].full_name[0].value.endswith("/crl/qwac-ca-2.crl")
    # The old generation still answers for what it issued, the new one for its own.
    client = create_app({"data_dir": data_dir}).test_client()
    assert _ocsp_status(client, first.chain[0], first.certificate).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert _ocsp_status(client, second.chain[0], second.certificate).certificate_status == ocsp.OCSPCertStatus.GOOD
    assert client.get("/crl/qwac-ca.crl").status_code == 200 and client.get("/crl/qwac-ca-2.crl").status_code == 200


def _counts(data_dir: Path) -> dict[str, int]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return {t: con.execute(f"select count(*) from {t}").fetchone()[0]
                for t in ("certificates", "revocations", "ocsp_responses", "audit_events")}
    finally:
        con.close()


def test_sealed_vault_refuses_cleanly_ocsp_keeps_serving_jobs_back_off_and_catch_up(vault_env, tmp_path: Path) -> None:
    from qtsp import scheduler
    from qtsp.metrics import JOB_FAILURES
    from qtsp.web import create_app

    data_dir = _vault_sandbox(tmp_path)
    sb = open_sandbox(data_dir)
    issued = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("a.example.com",), generate_key="ecdsa-p256"))
    app = create_app({"data_dir": data_dir})
    client = app.test_client()
    assert _ocsp_status(client, issued.chain[0], issued.certificate).certificate_status == ocsp.OCSPCertStatus.GOOD
    token = __import__("qtsp.services.tokens", fromlist=["create"]).create(sb, "ops", "operator")[1]
    vault_env.seal()
    try:
        before = _counts(data_dir)
        with pytest.raises(QTSPError) as err:
            issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("b.example.com",), generate_key="ecdsa-p256"))
        assert err.value.kind is Kind.SIGNER_UNAVAILABLE and "sealed" in err.value.detail
        with pytest.raises(QTSPError) as err:
            revocation.revoke(sb, format(issued.certificate.serial_number, "X"), "key-compromise")
        assert err.value.kind is Kind.SIGNER_UNAVAILABLE
        revoke = client.post(f"/api/v1/certificates/{format(issued.certificate.serial_number, 'X')}/revoke",
                             json={"reason": "superseded"}, headers={"Authorization": f"Bearer {token}"})
        assert revoke.status_code == 503 and revoke.content_type == "application/problem+json"
        assert _counts(data_dir) == before  # nothing half-done
        con = sqlite3.connect(data_dir / "qtsp.db")
        assert con.execute("select count(*) from issuance_intents where state = 'reserved'").fetchone()[0] == 0
        con.close()
        # OCSP keeps serving the pre-signed response while Vault is sealed
        assert _ocsp_status(client, issued.chain[0], issued.certificate).certificate_status == ocsp.OCSPCertStatus.GOOD
        # a signing job fails, is counted and backs off
        failures = JOB_FAILURES.labels("rotate-keys")._value.get()
        # make the responder rotation due (policy 1 day, clock 2 days ahead)
        sb.config = __import__("dataclasses").replace(sb.config, ocsp_key_rotation_days=1)
        jobs = scheduler.Jobs(sb)
        from unittest import mock

        with mock.patch("qtsp.scheduler.utcnow", return_value=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)):
            assert jobs.run("rotate-keys") == 0
            assert JOB_FAILURES.labels("rotate-keys")._value.get() == failures + 1
            assert jobs.run("rotate-keys") == 0  # inside the backoff: not even tried
            assert JOB_FAILURES.labels("rotate-keys")._value.get() == failures + 1
    finally:
        vault_env.unseal()
    # Vault is back: the backlog catches up on the next run after the backoff
    jobs = scheduler.Jobs(sb)  # no backoff left
    from unittest import mock

    with mock.patch("qtsp.scheduler.utcnow", return_value=dt.datetime.now(dt.timezone.utc) + dt.timedelta(days=2)):
        assert jobs.run("rotate-keys") >= 1
    again = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("c.example.com",), generate_key="ecdsa-p256"))
    assert again.certificate.serial_number
    revocation.revoke(sb, format(issued.certificate.serial_number, "X"), "key-compromise")
    client = create_app({"data_dir": data_dir}).test_client()
    assert _ocsp_status(client, issued.chain[0], issued.certificate).certificate_status == ocsp.OCSPCertStatus.REVOKED


def test_openbao_stopped_mid_run_and_started_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Persistent storage: stop the server, everything that signs refuses cleanly, start it, all resumes."""
    from support.bao import PersistentOpenBao
    from qtsp.web import create_app

    bao = PersistentOpenBao()
    try:
        bao.start()
        monkeypatch.setenv("QTSP_VAULT_ADDR", bao.addr)
        monkeypatch.setenv("QTSP_VAULT_TOKEN", bao.token)
        data_dir = _vault_sandbox(tmp_path)
        sb = open_sandbox(data_dir)
        issued = issuance.issue(sb, issuance.IssueRequest("qwac", ORG, domains=("a.example.com",), generate_key="ecdsa-p256"))
        client = create_app({"data_dir": data_dir}).test_client()
        bao.halt()
        before = _counts(data_dir)
        with pytest.raises(QTSPError) as err:
            issuance.issue(sb, issuance.IssueRequest("qsealc", ORG, generate_key="ecdsa-p256"))
        assert err.value.kind is Kind.SIGNER_UNAVAILABLE and "unavailable" in err.value.detail
        with pytest.raises(QTSPError):
            revocation.revoke(sb, format(issued.certificate.serial_number, "X"), "superseded")
        result = CliRunner().invoke(cli, ["revoke", format(issued.certificate.serial_number, "X"), "--data-dir", str(data_dir)])
        assert result.exit_code == 7 and result.output.count("\n") == 1 and "Vault" in result.output
        assert _counts(data_dir) == before
        assert _ocsp_status(client, issued.chain[0], issued.certificate).certificate_status == ocsp.OCSPCertStatus.GOOD
        bao.restart()
        revocation.revoke(sb, format(issued.certificate.serial_number, "X"), "superseded")
        assert _ocsp_status(client, issued.chain[0], issued.certificate).certificate_status == ocsp.OCSPCertStatus.REVOKED
        again = issuance.issue(sb, issuance.IssueRequest("qsealc", ORG, generate_key="ecdsa-p256"))
        assert again.issuer_id == "qseal-ca"
    finally:
        bao.stop()
