"""authorities: every kind of CA made one way (lint clean, chains), rollover, and ceremony output stored
with the same insert as ``qtsp init``."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from qtsp import config as config_mod
from qtsp.core import profiles
from qtsp.core.errors import Kind, QTSPError
from qtsp.lint import Linter
from qtsp.services import authorities, issuance, nca_identity, scenario_cas, signing
from qtsp.services.authorities import records
from qtsp.services.context import Sandbox
from qtsp.clock import utcnow

LINTER = Linter()


def _responder(ca: authorities.LoadedCA) -> x509.Certificate:
    assert ca.row.ocsp_responder_der is not None, ca.row.id
    return x509.load_der_x509_certificate(ca.row.ocsp_responder_der)


def _check(cert: x509.Certificate, profile_name: str, issuer: x509.Certificate) -> None:
    """Lint clean under its profile, and signed by ``issuer`` (its own key for a root)."""
    LINTER.require_clean(cert, profiles.get_profile(profile_name))
    cert.verify_directly_issued_by(issuer)


def _spki(key: Any) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def test_init_makes_root_issuing_cas_and_responders_lint_clean_and_chained(sandbox: Sandbox) -> None:
    cas = authorities.load_many(sandbox, ["root", "qwac-ca", "qseal-ca"])
    root = cas["root"].cert
    _check(root, "root-ca", root)
    # The root-delegated responder: it answers for the issuing CAs' certificates, which name it (AIA OCSP).
    _check(_responder(cas["root"]), "ocsp-responder", root)
    for ca_id, profile in (("qwac-ca", "qwac-issuing-ca"), ("qseal-ca", "qseal-issuing-ca")):
        ca = cas[ca_id]
        assert (ca.row.parent_id, ca.row.profile) == ("root", profile)
        _check(ca.cert, profile, root)
        _check(_responder(ca), "ocsp-responder", ca.cert)
        assert authorities.common_name(_responder(ca)) == f"{authorities.common_name(ca.cert)} OCSP Responder"
        assert _spki(ca.signer.public_key()) == _spki(ca.cert.public_key())  # the loaded Signer is the CA's key
        assert (sandbox.ca_dir / f"{ca_id}.pem").read_bytes() == ca.cert.public_bytes(Encoding.PEM)


def test_nca_and_simulator_cas_come_the_same_way(sandbox: Sandbox) -> None:
    root = authorities.load(sandbox, "root").cert
    nca = nca_identity.ensure_nca_ca(sandbox, utcnow())
    _check(nca.cert, "nca-issuing-ca", root)
    assert nca.row.ocsp_responder_der is None and nca.row.role == "nca"
    assert nca_identity.ensure_nca_ca(sandbox, utcnow()).row.serial == nca.row.serial  # made once

    sim = scenario_cas.ensure_cas(sandbox)
    parents = {ca_id: sim[parent].cert if parent in sim else root for ca_id, parent in scenario_cas.PARENTS.items()}
    for ca_id, ca in sim.items():
        _check(ca.cert, ca.row.profile, parents[ca_id])
        _check(_responder(ca), "ocsp-responder", ca.cert)
        # backdated, so that the expired scenarios fall inside their CA's validity
        assert ca.cert.not_valid_before_utc < utcnow() - scenario_cas.BACKDATE + dt.timedelta(days=1)
    assert scenario_cas.ensure_cas(sandbox).keys() == sim.keys()


class _Refusing:
    def require_clean(self, cert: x509.Certificate, profile: profiles.Profile) -> None:
        raise QTSPError(Kind.LINT, f"refused {profile.name}")


def test_make_ca_lints_before_the_ca_key_signs(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    signed: list[Any] = []
    real_sign = signing.sign
    monkeypatch.setattr(signing, "sign", lambda tbs, signer: signed.append(tbs) or real_sign(tbs, signer))
    monkeypatch.setattr(sandbox.linter, "require_clean", _Refusing().require_clean)
    root = authorities.load(sandbox, "root").issuer
    plan = authorities.Plan("refused-ca", "qwac", profiles.QWAC_ISSUING_CA.with_validity(365), "Refused CA", root)
    with pytest.raises(QTSPError) as err:
        authorities.make_ca(sandbox, plan, utcnow())
    assert err.value.kind is Kind.LINT and "qwac-issuing-ca" in err.value.detail
    assert signed == []  # the root never signed it
    monkeypatch.undo()
    with pytest.raises(QTSPError) as err:  # and one that would outlive its root is refused when built
        authorities.make_ca(sandbox, authorities.Plan("long-ca", "qwac", profiles.QWAC_ISSUING_CA.with_validity(40 * 365),
                                                      "Too Long CA", root), utcnow())
    assert err.value.kind is Kind.POLICY and "outlive" in err.value.detail


def test_rollover_makes_a_new_generation(sandbox: Sandbox) -> None:
    old = authorities.load(sandbox, "qwac-ca")
    new_id = authorities.rollover(sandbox, "qwac-ca", utcnow(), actor="test")
    assert new_id == "qwac-ca-2"
    new = authorities.load(sandbox, new_id)
    assert (new.row.role, new.row.parent_id, new.row.profile) == ("qwac", "root", old.row.profile)
    assert new.cert.subject == old.cert.subject and _spki(new.cert.public_key()) != _spki(old.cert.public_key())
    assert new.row.key.ref != old.row.key.ref
    _check(new.cert, new.row.profile, authorities.load(sandbox, "root").cert)
    _check(_responder(new), "ocsp-responder", new.cert)
    assert issuance.issuer_for(sandbox, profiles.QWAC) == new_id  # new issuance uses it at once
    assert (sandbox.ca_dir / f"{new_id}.pem").exists()
    assert authorities.load(sandbox, "qwac-ca").row.key.ref == old.row.key.ref  # the old generation keeps its key
    with pytest.raises(QTSPError) as err:
        authorities.rollover(sandbox, "qwac-ca", utcnow(), actor="test")
    assert err.value.kind is Kind.CONFLICT and new_id in err.value.detail
    with pytest.raises(QTSPError) as err:
        authorities.rollover(sandbox, "root", utcnow(), actor="test")
    assert err.value.kind is Kind.NOT_FOUND
    assert authorities.rollover(sandbox, new_id, utcnow(), actor="test") == "qwac-ca-3"


def test_responder_rotation_keeps_the_ca_and_changes_the_responder(sandbox: Sandbox) -> None:
    before = authorities.load(sandbox, "qseal-ca")
    ref = authorities.rotate_responder(sandbox, "qseal-ca", utcnow(), actor="test")
    after = authorities.load(sandbox, "qseal-ca")
    assert after.row.serial == before.row.serial and after.row.ocsp_key.ref == ref != before.row.ocsp_key.ref
    assert _responder(after).serial_number != _responder(before).serial_number
    _check(_responder(after), "ocsp-responder", after.cert)
    with pytest.raises(QTSPError) as err:
        authorities.rotate_responder(sandbox, "nca-ca", utcnow(), actor="test")
    assert err.value.kind is Kind.NOT_FOUND  # no such CA (made on first use); the root's rotates like the others:
    old_root = _responder(authorities.load(sandbox, "root"))
    authorities.rotate_responder(sandbox, "root", utcnow(), actor="test")
    new_root = authorities.load(sandbox, "root")
    assert _responder(new_root).serial_number != old_root.serial_number
    _check(_responder(new_root), "ocsp-responder", new_root.cert)


def _ca_rows(data_dir: Path) -> list[tuple[Any, ...]]:
    con = sqlite3.connect(data_dir / "qtsp.db")
    try:
        return con.execute("select c.id, c.parent_id, c.role, c.profile, c.subject, c.cert_der, c.serial, "
                           "k.ref, k.key_type, k.public_key_der, k.purpose, c.ocsp_responder_der, o.ref, o.purpose "
                           "from certificate_authorities c join key_references k on k.id = c.key_id "
                           "left join key_references o on o.id = c.ocsp_key_id order by c.id").fetchall()
    finally:
        con.close()


def test_ceremony_output_goes_through_the_same_insert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = config_mod.Config()
    for name in ("made", "imported"):
        (tmp_path / name).mkdir()
    made_store = authorities.new_store(tmp_path / "made", cfg)
    imported_store = authorities.new_store(tmp_path / "imported", cfg)
    try:
        now = utcnow()
        made = authorities.make_hierarchy(made_store, now)
        with made_store.transaction() as session:
            authorities.insert_hierarchy(session, made, now, actor="cli")
        # What a ceremony transcript gives: certificates and key references, no key material.
        imported = [authorities.from_ceremony(
            new.ca_id, parent_id=new.parent_id, role=new.role, profile=new.profile, cert=new.cert, key_ref=new.key.ref,
            responder=None if new.responder is None else (new.responder.cert, new.responder.key.ref)) for new in made]
        inserted: list[str] = []
        real_insert = records.insert
        monkeypatch.setattr(records, "insert", lambda session, new, *a, **kw: inserted.append(new.ca_id)
                            or real_insert(session, new, *a, **kw))
        authorities.store_hierarchy(imported_store, imported, now, arl=None, transcripts={"root.transcript.jsonl": "00"})
        assert inserted == ["root", "qwac-ca", "qseal-ca", "browser-root", "qwac-browser-ca"]
        assert _ca_rows(tmp_path / "imported") == _ca_rows(tmp_path / "made")  # row for row, what init writes
        with pytest.raises(QTSPError) as err:  # and a store holding a hierarchy is not imported over
            authorities.new_store(tmp_path / "imported", cfg)
        assert err.value.kind is Kind.CONFLICT
    finally:
        made_store.engine.dispose()
        imported_store.engine.dispose()
