"""The portal's services on their own: accounts and sessions, organisations for every NCA of the register,
scopes that fail closed, the downloads (trust store, scenario bundle) and issuance from a CSR."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from qtsp.core.errors import Kind, QTSPError
from qtsp.core.ncas import EBA_NCAS
from qtsp.services import portal, portal_certs, portal_ops
from qtsp.services.access import NOTHING
from qtsp.services.context import Sandbox
from support import SAMPLE_ORG

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """New passwords hashed with scrypt N=2^14 here (the hash names its N, so they verify as any other):
    the production cost, 2^17, is half a second a hash and these tests make dozens."""
    monkeypatch.setattr(portal, "_SCRYPT_N", 2**14)


@pytest.fixture
def alice(sandbox: Sandbox) -> portal.Principal:
    portal.create_account(sandbox, "alice", PASSWORD, "psp", actor="test")
    return portal.sign_in(sandbox, "alice", PASSWORD)[1]


def test_a_new_psp_account_is_allowed_nothing(alice: portal.Principal) -> None:
    assert alice.scope == NOTHING and not alice.scope.unrestricted and not alice.scope.allows_org(SAMPLE_ORG)


def test_sign_in_refusals_are_alike_and_sessions_end(sandbox: Sandbox, alice: portal.Principal) -> None:
    refusals = []
    for user, password in (("alice", "wrong password here"), ("nobody", PASSWORD), ("NOT VALID", PASSWORD)):
        with pytest.raises(QTSPError) as caught:
            portal.sign_in(sandbox, user, password)
        refusals.append((caught.value.kind, caught.value.detail))
    assert len(set(refusals)) == 1 and refusals[0][0] is Kind.UNAUTHORISED
    session_id, _ = portal.sign_in(sandbox, "alice", PASSWORD)
    assert portal.principal(sandbox, session_id) is not None
    portal.sign_out(sandbox, session_id)
    assert portal.principal(sandbox, session_id) is None
    assert portal.principal(sandbox, "x" * 43) is None and portal.principal(sandbox, None) is None


@pytest.mark.parametrize("password", ["short", "x" * 300])
def test_passwords_out_of_bounds_are_refused(sandbox: Sandbox, password: str) -> None:
    with pytest.raises(QTSPError, match="password"):
        portal.create_account(sandbox, "carol", password)


def test_an_organisation_can_be_registered_under_every_nca(sandbox: Sandbox, alice: portal.Principal) -> None:
    made = set()
    for nca_id in sorted(EBA_NCAS):
        view = portal.register_organisation(sandbox, alice, nca_id=nca_id, legal_name="Test PSP", roles="PSP_AI",
                                            locality="Capital")
        assert view.nca_id == nca_id and view.org_id.startswith(f"PSD{nca_id}-SBX")
        made.add(view.org_id)
    assert _fresh(sandbox).scope.org_ids == frozenset(made)
    with pytest.raises(QTSPError, match="NCA"):
        portal.register_organisation(sandbox, alice, nca_id="XX-NONE", legal_name="X", roles="PSP_AI", locality="Y")


def _fresh(sandbox: Sandbox, user: str = "alice") -> portal.Principal:
    """The principal as the next request sees it (the scope follows the organisations registered since)."""
    who = portal.principal(sandbox, portal.sign_in(sandbox, user, PASSWORD)[0])
    assert who is not None
    return who


def test_only_psp_accounts_register_and_only_operators_act_on_the_sandbox(sandbox: Sandbox,
                                                                          alice: portal.Principal) -> None:
    portal.create_account(sandbox, "ops", PASSWORD, "operator", actor="test")
    ops = portal.sign_in(sandbox, "ops", PASSWORD)[1]
    with pytest.raises(QTSPError, match="PSP accounts"):
        portal.register_organisation(sandbox, ops, nca_id="BE-NBB", legal_name="X", roles="PSP_AI", locality="Y")
    for call in (lambda: portal.set_account_status(sandbox, alice, ops.id, "suspended"),
                 lambda: portal.set_psp_status(sandbox, alice, SAMPLE_ORG, "withdrawn"),
                 lambda: portal_ops.audit_log(sandbox, alice)):
        with pytest.raises(QTSPError) as caught:
            call()
        assert caught.value.kind is Kind.UNAUTHORISED
    assert portal.set_psp_status(sandbox, ops, SAMPLE_ORG, "withdrawn").status == "withdrawn"


def test_a_csr_is_issued_for_ones_own_organisation_only(sandbox: Sandbox, alice: portal.Principal) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (x509.CertificateSigningRequestBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")]))
           .sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
    with pytest.raises(QTSPError) as caught:
        portal_certs.request_certificate(sandbox, alice, kind="qsealc", org_id=SAMPLE_ORG, csr=csr)
    assert caught.value.kind is Kind.POLICY  # as a PSP in no register: the scope hides the sample PSP
    org = portal.register_organisation(sandbox, alice, nca_id="NL-DNB", legal_name="Alice BV", roles="PSP_AI,PSP_PI",
                                       locality="Amsterdam").org_id
    alice = _fresh(sandbox)
    # The QWAC fields of the form, left filled in, do not stop a QSealC.
    issued = portal_certs.request_certificate(sandbox, alice, kind="qsealc", org_id=org, csr=csr, domains=("a.eu",),
                                              purpose="client")
    assert issued.private_key is None and issued.certificate.public_key() == key.public_key()
    listed = portal_certs.certificates(sandbox, alice)
    assert [r.serial for r in listed.records] == [issued.serial]
    with pytest.raises(QTSPError, match="PKCS#12"):
        portal_certs.pkcs12(issued, "password")


def test_a_2qwac_is_offered_and_issued_without_the_1qwac_purpose(sandbox: Sandbox, alice: portal.Principal) -> None:
    """The portal's kinds list the 2-QWAC (issue 18); the purpose field, left filled in, is the 1-QWAC's only."""
    from qtsp.core import oids

    assert [k.kind for k in portal.PORTAL_KINDS] == ["qwac", "qsealc", "two-qwac"]
    org = portal.register_organisation(sandbox, alice, nca_id="NL-DNB", legal_name="Alice BV", roles="PSP_AI",
                                       locality="Amsterdam").org_id
    alice = _fresh(sandbox)
    issued = portal_certs.request_certificate(sandbox, alice, kind="two-qwac", org_id=org, domains=("alice.example.eu",),
                                              generate_key="ecdsa-p256", purpose="server")
    eku = issued.certificate.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [oids.KP_TLS_BINDING]
    assert [r.serial for r in portal_certs.certificates(sandbox, alice, kind="two-qwac").records] == [issued.serial]
    assert portal_certs.certificates(sandbox, alice, kind="qwac").records == []


def test_the_trust_store_holds_every_ca_and_the_scenario_bundle_its_manifest(sandbox: Sandbox,
                                                                           alice: portal.Principal) -> None:
    with zipfile.ZipFile(io.BytesIO(portal_certs.trust_store_zip(sandbox))) as archive:
        names = set(archive.namelist())
        roots = x509.load_pem_x509_certificates(archive.read("roots.pem"))
    assert {"ca/root.pem", "ca/qwac-ca.pem", "ca/qwac-browser-ca.pem", "ca/qseal-ca.pem", "trust-store.pem"} <= names
    assert len(roots) == 2 and all(r.subject == r.issuer for r in roots)
    bundle = portal_certs.scenario_bundle(sandbox, alice)
    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        manifest = json.loads(archive.read("scenarios/manifest.json"))
        for entry in manifest["scenarios"]:
            assert f"scenarios/{entry['certificate']}" in archive.namelist()
    assert manifest["scenarios"] and not list((sandbox.data_dir / "run" / "portal").iterdir())  # work dir removed


def test_the_cookie_secret_is_made_once_private_and_never_read_through_a_symlink(sandbox: Sandbox) -> None:
    import os
    import stat

    first = portal.cookie_secret(sandbox)
    assert portal.cookie_secret(sandbox) == first and len(first) == 64
    path = sandbox.data_dir / portal.SECRET_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.unlink()
    elsewhere = sandbox.data_dir / "elsewhere"
    elsewhere.write_bytes(b"a" * 64)
    os.symlink(elsewhere, path)
    with pytest.raises(QTSPError) as caught:
        portal.cookie_secret(sandbox)
    assert caught.value.kind is Kind.STORAGE
