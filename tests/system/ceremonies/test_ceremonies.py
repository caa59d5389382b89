"""Key ceremonies end to end on a real SoftHSM2 token: the shipped example files, run as they are.

Root on the token, QWAC and QSealC issuing CAs, their OCSP responders, a root-signed responder,
the ARL, a 3-of-5 backup, a restore from 3 shares into a fresh token, an ARL signed with the
restored key, a root rollover with link certificates; then import into a data dir, a QWAC issued
by qtsp and checked with `openssl verify` and `openssl ocsp` against `qtsp serve`. Then every
refusal on the token's files, and transcript tampering. (Ceremonies on file keys, in process:
tests/unit/ceremonies/test_ceremonies.py.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Iterator

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ceremonies import examples_dir, quorum, runner, transcript
from ceremonies.importer import import_hierarchy
from cli.commands_ceremony import ceremony as ceremony_cli
from qtsp.clock import utcnow
from qtsp.core.errors import Kind, QTSPError
from qtsp.signers.pkcs11 import Pkcs11Backend
from support.softhsm import SoftHSM

from support.ceremonies import DELETE as _DELETE, edit, run, set_ as _set

ORDER = ("root", "intermediate-qwac", "intermediate-qseal", "ocsp-signer-qwac", "ocsp-signer-qseal",
         "ocsp-signer-root", "arl", "backup", "restore", "arl-restored", "root-rollover")
ORG = "PSDBE-NBB-0123456789"


@dataclass
class World:
    hsm: SoftHSM
    work: Path
    outcomes: dict[str, runner.Outcome]

    def out(self, name: str) -> Path:
        return self.work / "out" / name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("ceremonies")
    hsm = SoftHSM(base / "hsm")
    for label in ("qtsp-root", "qtsp-root-restored", "qtsp-spare"):
        hsm.init_token(label)
    env = {**hsm.env, "QTSP_ROOT_PIN": hsm.pins["qtsp-root"], "QTSP_ROOT_SO_PIN": hsm.so_pins["qtsp-root"],
           "QTSP_RESTORED_PIN": hsm.pins["qtsp-root-restored"], "QTSP_SPARE_PIN": hsm.pins["qtsp-spare"]}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    work = base / "work"
    shutil.copytree(examples_dir(), work)

    def restored_arl(d: dict[str, Any]) -> None:  # the restored key signs ARL number 2
        d.update(name="ARL 2, signed with the restored root key")
        d["signing-key"]["backend"].update(token="qtsp-root-restored", **{"pin-env": "QTSP_RESTORED_PIN"})
        d["crl"]["number"] = 2
        d["outputs"] = {"crl": "out/root-2.crl", "transcript": "out/arl-2.transcript.jsonl"}

    edit(work / "arl.yaml", work / "arl-restored.yaml", restored_arl)
    try:
        yield World(hsm, work, {name: run(work / f"{name}.yaml") for name in ORDER})
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


def openssl(*args: str) -> str:
    result = subprocess.run(["openssl", *args], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_every_ceremony_ran_signed_and_verifies(world: World) -> None:
    for name, outcome in world.outcomes.items():
        checked = transcript.verify(outcome.transcript, expect_hash=outcome.final_hash)
        assert checked.ok and checked.signed, (name, checked.problems)
    out = world.out
    for ca in ("qwac-ca", "qseal-ca", "root-ocsp"):
        assert ": OK" in openssl("verify", "-CAfile", str(out("root.pem")), str(out(f"{ca}.pem")))
    for ca in ("qwac-ca", "qseal-ca"):
        openssl("verify", "-partial_chain", "-CAfile", str(out(f"{ca}.pem")), str(out(f"{ca}-ocsp.pem")))
    # The ARLs: 1 by the root key, 2 by its restored copy; both verify against the root certificate.
    root = x509.load_pem_x509_certificate(out("root.pem").read_bytes())
    for arl in ("root.crl", "root-2.crl"):
        crl = x509.load_der_x509_crl(out(arl).read_bytes())
        assert crl.is_signature_valid(root.public_key())  # type: ignore[arg-type]
    # Rollover: each root's relying parties reach the other root through a link certificate.
    openssl("verify", "-CAfile", str(out("root.pem")), str(out("root-2-by-root.pem")))
    openssl("verify", "-CAfile", str(out("root-2.pem")), str(out("root-by-root-2.pem")))
    openssl("verify", "-CAfile", str(out("root-2.pem")), "-untrusted", str(out("root-by-root-2.pem")), str(out("qwac-ca.pem")))


def test_token_keys_never_leave_in_clear(world: World) -> None:
    import pkcs11

    backend = Pkcs11Backend(token="qtsp-root", pins=world.hsm.pins)
    attrs = backend.attributes("pkcs11:token=qtsp-root;object=root-2025")  # type: ignore[arg-type]
    assert attrs["sensitive"] and attrs["always_sensitive"] and attrs["local"]
    assert attrs["extractable"] and attrs["wrap_with_trusted"]  # backup: true, under a trusted key only
    plain = backend.generate("plain-ec", "ecdsa-p256")
    assert backend.attributes(plain.ref) == {"sensitive": True, "extractable": False, "always_sensitive": True,
                                             "never_extractable": True, "local": True, "wrap_with_trusted": True}
    rsa_key = backend.generate("plain-rsa", "rsa-2048")
    for info in (plain, rsa_key):  # a certificate signed on the token: raw r||s became DER, RSA DigestInfo right
        from qtsp.core import builder, profiles
        from qtsp.core.serials import new_serial
        from qtsp.services import signing

        tbs = builder.build(profiles.ROOT_CA, subject=x509.Name([x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, "t")]),
                            public_key=info.public_key, serial=new_serial(), now=utcnow(), issuer=None)
        cert = signing.sign(tbs, backend.signer(info.ref))
        cert.verify_directly_issued_by(cert)
    with pytest.raises(QTSPError, match="without backup: true"):
        backend.wrap(plain.ref, quorum.new_secret())
    lib = pkcs11.lib(backend.module)
    with lib.get_token(token_label="qtsp-root").open(user_pin=world.hsm.pins["qtsp-root"]) as session:
        key = session.get_key(label="root-2025", object_class=pkcs11.ObjectClass.PRIVATE_KEY)
        with pytest.raises(pkcs11.exceptions.AttributeSensitive):
            key[pkcs11.Attribute.VALUE]


def test_import_serve_issue_and_validate(world: World, tmp_path: Path) -> None:
    from qtsp.services import issuance, register
    from qtsp.services.context import open_sandbox
    from support.server import running_server

    data_dir = tmp_path / "served"
    names = ("root", "qwac-ca", "qseal-ca", "qwac-ca-ocsp", "qseal-ca-ocsp", "root-ocsp", "arl-1", "arl-2", "restore")
    summary = import_hierarchy(data_dir, [world.out(f"{n}.transcript.jsonl") for n in names], utcnow())
    assert summary["cas"]["root"]["key"] == "pkcs11:token=qtsp-root-restored;object=root-2025"
    assert summary["arl_number"] == 2
    sb = open_sandbox(data_dir)
    register.add_psp(sb, org_id=ORG, name="Example Fintech SA", roles="PSP_AI,PSP_PI", country="BE",
                     locality="Brussels", registration_number="0123.456.789")
    issued = issuance.issue(sb, issuance.IssueRequest(kind="qwac", org_id=ORG, domains=("api.example.eu",),
                                                      generate_key="ecdsa-p256"))
    sb.engine.dispose()
    (tmp_path / "leaf.pem").write_bytes(issued.certificate.public_bytes(Encoding.PEM))
    (tmp_path / "chain.pem").write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in issued.chain))
    assert "leaf.pem: OK" in openssl("verify", "-CAfile", str(world.out("root.pem")), "-untrusted",
                                     str(tmp_path / "chain.pem"), "-purpose", "sslserver", str(tmp_path / "leaf.pem"))
    with running_server(data_dir) as url:
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url + "/crl/root.crl") as response:
            assert response.read() == world.out("root-2.crl").read_bytes()
        answer = openssl("ocsp", "-issuer", str(world.out("qwac-ca.pem")), "-cert", str(tmp_path / "leaf.pem"),
                         "-url", url + "/ocsp", "-CAfile", str(world.out("root.pem")))
        assert "leaf.pem: good" in answer
    with pytest.raises(QTSPError) as refused:  # a second import over it
        import_hierarchy(data_dir, [world.out("root.transcript.jsonl")], utcnow())
    assert refused.value.kind is Kind.CONFLICT
    # The offline root keeps its ARL fresh: a crl ceremony, then import-arl; older numbers are refused.
    # This one revokes the QSealC CA too (the offline root's `qtsp ca revoke`): OCSP says so as well.
    seal_ca = x509.load_pem_x509_certificate(world.out("qseal-ca.pem").read_bytes())
    revoked_at = utcnow().replace(microsecond=0)
    arl3 = run(edit(world.work / "arl-restored.yaml", world.work / "arl-3.yaml", lambda d: (
        d["crl"].update(number=3, revoked=[{"serial": format(seal_ca.serial_number, "X"),
                                            "revoked-at": revoked_at.isoformat().replace("+00:00", "Z"),
                                            "reason": "ca-compromise"}]),
        d.update(outputs={"crl": "out/root-3.crl", "transcript": "out/arl-3.transcript.jsonl"}))))
    cli = CliRunner()
    imported = cli.invoke(ceremony_cli, ["import-arl", str(arl3.transcript), "--data-dir", str(data_dir), "--json"])
    assert imported.exit_code == 0, imported.output
    assert '"qseal-ca"' in imported.output  # revoked_cas
    with running_server(data_dir) as url:
        answer = openssl("ocsp", "-issuer", str(world.out("root.pem")), "-cert", str(world.out("qseal-ca.pem")),
                         "-url", url + "/ocsp", "-CAfile", str(world.out("root.pem")))
        assert "qseal-ca.pem: revoked" in answer and "Reason: cACompromise" in answer, answer
        answer = openssl("ocsp", "-issuer", str(world.out("root.pem")), "-cert", str(world.out("qwac-ca.pem")),
                         "-url", url + "/ocsp", "-CAfile", str(world.out("root.pem")))
        assert "qwac-ca.pem: good" in answer, answer
    again = cli.invoke(ceremony_cli, ["import-arl", str(world.out("arl-2.transcript.jsonl")), "--data-dir", str(data_dir)])
    assert again.exit_code == 5 and "not above 3" in again.output
    from qtsp.services import crl as crl_service

    sb = open_sandbox(data_dir)
    assert crl_service.current(sb, "root", utcnow()).der == world.out("root-3.crl").read_bytes()
    sb.engine.dispose()


def test_import_refuses_an_incomplete_or_tampered_hierarchy(world: World, tmp_path: Path) -> None:
    base = [world.out(f"{n}.transcript.jsonl") for n in ("root", "qwac-ca", "qseal-ca", "qwac-ca-ocsp", "root-ocsp")]
    with pytest.raises(QTSPError, match="qseal-ca has no OCSP responder"):
        import_hierarchy(tmp_path / "a", base, utcnow())
    assert not (tmp_path / "a").exists()
    # The issuing CAs name an OCSP URL for their own status: without the root's responder nobody answers it.
    without = [world.out(f"{n}.transcript.jsonl") for n in ("root", "qwac-ca", "qseal-ca", "qwac-ca-ocsp", "qseal-ca-ocsp")]
    with pytest.raises(QTSPError, match="no responder of the root answers it"):
        import_hierarchy(tmp_path / "a", without, utcnow())
    assert not (tmp_path / "a").exists()
    copy = tmp_path / "copy"
    shutil.copytree(world.work / "out", copy)
    lines = (copy / "qwac-ca.transcript.jsonl").read_text().splitlines()
    assert "Bob Witness" in lines[0]
    lines[0] = lines[0].replace("Bob Witness", "Mallory")
    (copy / "qwac-ca.transcript.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(QTSPError) as refused:
        import_hierarchy(tmp_path / "b", [copy / "root.transcript.jsonl", copy / "qwac-ca.transcript.jsonl"], utcnow())
    assert refused.value.kind is Kind.INTEGRITY


def test_refusals_of_files_and_quorum(world: World, tmp_path: Path) -> None:
    root = tmp_path / "root.yaml"
    root.write_text((examples_dir() / "root.yaml").read_text().replace("  ca-id: root\n", "  ca-id: root\n  ca-id: root\n"))
    with pytest.raises(QTSPError, match="given twice"):
        runner.validate(root)
    shutil.copy(world.work / "root.yaml", tmp_path / "again.yaml")
    (tmp_path / "out").mkdir()
    (tmp_path / "out/root.pub.pem").write_text("keep me")
    with pytest.raises(QTSPError, match="root.pub.pem exists; refusing to overwrite"):
        run(tmp_path / "again.yaml")
    assert (tmp_path / "out/root.pub.pem").read_text() == "keep me" and not (tmp_path / "out/root.transcript.jsonl").exists()
    for name, change, fragment in [
        ("intermediate-qwac", _set("issuer-certificate", "missing.pem"), "does not exist"),
        ("intermediate-qwac", _set("csr", "out/root.pem"), "exactly one of key, public-key, csr"),
        ("backup", _set("quorum.shares", 4), "quorum.shares is 4 but people.custodians names 5"),
        ("backup", _set("quorum.threshold", 1), "2 <= threshold"),
        ("backup", _set("key.backend", {"type": "vault-transit"}), "not exportable"),
        ("backup", _set("key.backend.so-pin-env", _DELETE), "so-pin-env: missing"),
        ("restore", _set("people.custodians", _DELETE), "people.custodians: missing"),
    ]:
        path = edit(world.work / f"{name}.yaml", world.work / f"refused-{name}.yaml",
                    lambda d, c=change: (c(d), d["outputs"].update({k: f"refused/{k}" for k in d["outputs"]})))
        with pytest.raises(QTSPError, match=fragment.replace("(", r"\(")):
            run(path)
        assert not (world.work / "refused").exists()


def test_restore_refuses_short_foreign_and_mistyped_shares(world: World) -> None:
    shares = world.work / "out/shares"
    other = quorum.split(quorum.new_secret(), 3, 5)  # a share of another backup, as a custodian might mix up
    (world.work / "other.txt").write_text(other.shares[0])
    words = (shares / "dan-custodian.txt").read_text().split()
    words[5] = "academic" if words[5] != "academic" else "acid"
    (world.work / "typo.txt").write_text(" ".join(words))
    dan, frank = "out/shares/dan-custodian.txt", "out/shares/frank-custodian.txt"
    cases = [
        ([("Dan Custodian", dan), ("Frank Custodian", frank)], Kind.POLICY, "2 shares listed, this backup needs 3"),
        ([("Dan Custodian", dan), ("Frank Custodian", frank), ("Heidi Custodian", "other.txt")], Kind.POLICY,
         "the share of Heidi Custodian belongs to another backup"),
        ([("Dan Custodian", "typo.txt"), ("Frank Custodian", frank), ("Heidi Custodian", "out/shares/heidi-custodian.txt")],
         Kind.MALFORMED, "the share of Dan Custodian is mistyped"),
        ([("Dan Custodian", dan), ("Frank Custodian", frank), ("Heidi Custodian", dan)], Kind.POLICY, "brought the same share"),
    ]
    for i, (given, kind, fragment) in enumerate(cases):
        def change(d: dict[str, Any], given: Any = given, i: int = i) -> None:
            d["shares"] = [{"custodian": who, "file": f} for who, f in given]
            d["key"]["backend"].update(token="qtsp-spare", **{"pin-env": "QTSP_SPARE_PIN"})
            d["outputs"] = {"public-key": f"refused/{i}.pem", "transcript": f"refused/{i}.jsonl"}

        with pytest.raises(QTSPError) as refused:
            run(edit(world.work / "restore.yaml", world.work / f"restore-refused-{i}.yaml", change))
        assert refused.value.kind is kind and fragment in refused.value.detail, refused.value.detail
    assert not (world.work / "refused").exists()
    assert not Pkcs11Backend(token="qtsp-spare", pins=world.hsm.pins).exists("pkcs11:token=qtsp-spare;object=root-2025")  # type: ignore[arg-type]


def _tampered(world: World, tmp_path: Path, name: str, change: Any) -> transcript.Verification:
    copy = tmp_path / name
    shutil.copytree(world.work / "out", copy)
    path = copy / "qwac-ca.transcript.jsonl"
    lines = path.read_text().splitlines()
    change(lines, copy)
    path.write_text("".join(line + "\n" for line in lines))
    return transcript.verify(path)


def _rehash(lines: list[str], i: int, change: Any) -> None:
    line = json.loads(lines[i])
    change(line)
    line["hash"] = transcript.line_hash(line)
    lines[i] = json.dumps(line)


def test_transcript_tampering_is_found_at_its_first_line(world: World, tmp_path: Path) -> None:
    cases = {
        "edited": (lambda ls, d: ls.__setitem__(2, ls[2].replace('"step": "', '"step": "edited-', 1)), 3, "was edited"),
        "rehashed": (lambda ls, d: _rehash(ls, 2, lambda x: x.update(title="nothing to see")), 4, "does not follow"),
        "removed": (lambda ls, d: ls.pop(3), 4, "where step 4 belongs"),
        "reordered": (lambda ls, d: ls.insert(3, ls.pop(4)), 4, "where step 4 belongs"),
        "truncated": (lambda ls, d: ls.pop(), None, "without its closing line"),
        "not json": (lambda ls, d: ls.__setitem__(1, ls[1][:-1]), 2, "not a JSON object"),
        "forged chain": (lambda ls, d: _forge(ls), None, "signature does not verify"),
        "output changed": (lambda ls, d: (d / "qwac-ca.pem").write_text("x"), None, "output certificate (qwac-ca.pem) changed"),
        "output removed": (lambda ls, d: (d / "qwac-ca.pem").unlink(), None, "output certificate (qwac-ca.pem) is missing"),
    }
    for name, (change, first_bad, fragment) in cases.items():
        checked = _tampered(world, tmp_path, name.replace(" ", "-"), change)
        assert not checked.ok and checked.first_bad_line == first_bad, (name, checked.problems)
        assert any(fragment in p for p in checked.problems), (name, checked.problems)
    path = world.out("qwac-ca.transcript.jsonl")
    result = CliRunner().invoke(ceremony_cli, ["verify", str(path), "--expect-hash", "00" * 32])
    assert result.exit_code == 10 and "not the" in result.output
    assert CliRunner().invoke(ceremony_cli, ["verify", str(path)]).exit_code == 0


def _forge(lines: list[str]) -> None:
    """Edit line 3 and recompute every hash after it: only the closing signature still tells."""
    prev = None
    for i, raw in enumerate(lines):
        line = json.loads(raw)
        if i == 2:
            line["title"] = "forged"
        if prev is not None:
            line["prev"] = prev
        line["hash"] = transcript.line_hash(line)
        prev = line["hash"]
        lines[i] = json.dumps(line)


def test_vault_transit_and_file_backends(vault_env: Any, tmp_path: Path) -> None:
    """Root on file keys; an issuing CA whose key the ceremony makes in Vault Transit; an OCSP
    responder, from a CSR of a key made elsewhere, signed through Transit."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    name = f"cer-{os.urandom(4).hex()}-qwac"
    file_root = {"backend": {"type": "file", "dir": "keys"}, "label": "root-1"}
    run(edit(examples_dir() / "root.yaml", tmp_path / "root.yaml", lambda d: d.update(
        key={**file_root, "type": "ecdsa-p256"})))
    inter = run(edit(examples_dir() / "intermediate-qwac.yaml", tmp_path / "qwac.yaml", lambda d: d.update(
        {"signing-key": file_root, "key": {"backend": {"type": "vault-transit"}, "label": name, "type": "ecdsa-p256"}})))
    assert inter.result["key_ref"] == f"vault-transit:{name}@1"
    local = ec.generate_private_key(ec.SECP256R1())
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([])).sign(local, hashes.SHA256())
    (tmp_path / "responder.csr").write_bytes(csr.public_bytes(Encoding.PEM))

    def responder(d: dict[str, Any]) -> None:
        d["signing-key"] = {"backend": {"type": "vault-transit"}, "label": name}
        del d["key"]
        d.update({"csr": "responder.csr", "key-ref": "file:made-elsewhere"})

    outcome = run(edit(examples_dir() / "ocsp-signer-qwac.yaml", tmp_path / "ocsp.yaml", responder))
    checked = transcript.verify(outcome.transcript)
    assert checked.ok and checked.signed  # closed with the Transit key's signature
    qwac_ca = x509.load_pem_x509_certificate((tmp_path / "out/qwac-ca.pem").read_bytes())
    cert = x509.load_pem_x509_certificate((tmp_path / "out/qwac-ca-ocsp.pem").read_bytes())
    cert.verify_directly_issued_by(qwac_ca)
    assert cert.public_key() == local.public_key() and outcome.result["key_ref"] == "file:made-elsewhere"
    copied = CliRunner().invoke(ceremony_cli, ["examples", str(tmp_path / "examples")])
    assert copied.exit_code == 0 and (tmp_path / "examples/restore.yaml").exists()
