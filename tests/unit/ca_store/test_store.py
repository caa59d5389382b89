"""The store through the services (ca_store, qtsp.services): init, register, issue; serials unique per
issuer; no key material in the database; one hierarchy per database; audit tampering found; timestamps
aware UTC; concurrent first revocations. On SQLite here; tests/system/ca_store/test_store_postgres.py runs
the same tests on PostgreSQL (the ``store_url`` fixture and those built on it: tests/conftest.py)."""

from __future__ import annotations

import datetime as dt
import itertools
import re
from pathlib import Path
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from asn1crypto import keys as asn1_keys, pem as asn1_pem
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, select
from sqlalchemy.exc import StatementError

from ca_store import repositories as repo
from ca_store.models import (
    Base,
    Certificate,
    IssuanceIntent,
    KeyReference,
    PSPAuthorisation,
)
from qtsp.core.errors import Kind, QTSPError
from qtsp.services import audit, register
from qtsp.services.context import Sandbox
from qtsp.services.hierarchy import QSEAL_CA_ID, QWAC_CA_ID
from qtsp.services.issuance import Issued


ORG = "PSDBE-NBB-0123456789"
UTC = dt.timezone.utc
TABLES = {t.name for t in Base.metadata.sorted_tables}


def _count(engine: Engine, table: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text(f"SELECT count(*) FROM {table}")).scalar_one()


# --- the service path -------------------------------------------------------------------


def test_init_register_issue(issued: tuple[Sandbox, Issued], store_url: str, engines: Callable[[str], Engine]) -> None:
    sandbox, result = issued
    assert sandbox.engine.url.render_as_string(hide_password=False) == store_url  # QTSP_DATABASE_URL was used
    der = result.certificate.public_bytes(serialization.Encoding.DER)

    with sandbox.transaction() as session:
        cas = {ca.id: ca for ca in repo.list_cas(session)}
        assert set(cas) == {"root", QWAC_CA_ID, QSEAL_CA_ID, "browser-root", "qwac-browser-ca"}
        assert cas[QWAC_CA_ID].parent_id == "root" and cas["root"].parent_id is None
        assert cas["qwac-browser-ca"].parent_id == "browser-root" and cas["browser-root"].parent_id is None

        # The issuing CAs' certificates are certificates of the root too (their OCSP and ARL status) ...
        registered = session.execute(select(Certificate).where(Certificate.issuer_id == "root")).scalars().all()
        assert sorted((c.serial, c.profile) for c in registered) == sorted(
            (cas[ca_id].serial, cas[ca_id].profile) for ca_id in (QWAC_CA_ID, QSEAL_CA_ID))
        # ... and the one QWAC the only certificate the QWAC CA issued.
        certs = session.execute(select(Certificate).where(Certificate.issuer_id.not_in(["root", "browser-root"]))).scalars().all()
        assert len(certs) == 1
        cert = certs[0]
        assert (cert.issuer_id, cert.serial) == (QWAC_CA_ID, result.serial)
        assert cert.der == der
        assert cert.org_id == ORG and cert.nca_id == "BE-NBB"
        assert cert.dns_names == "api.example.com"
        assert cert.status == "good"
        assert repo.get_certificate(session, result.serial, QWAC_CA_ID).id == cert.id

        intents = session.execute(select(IssuanceIntent)).scalars().all()
        assert [(i.issuer_id, i.serial, i.state) for i in intents] == [(QWAC_CA_ID, result.serial, "done")]

        events = repo.audit_events(session)
        # init: five CAs (two roots), and the three issuing CAs' certificates registered with their roots for
        # status (each root's delegated responder answers for them)
        init_actions = sorted(e.action for e in events[:8])
        assert init_actions == ["ca.create"] * 5 + ["certificate.issue"] * 3
        assert [e.action for e in events[8:]] == ["register.add", "certificate.issue"]
        assert [e.seq for e in events] == list(range(1, 11))
        assert events[-1].subject == result.serial
        for before, after in itertools.pairwise(events):
            assert after.prev_hash == before.hash

    assert audit.verify(sandbox) == (10, None)


# --- constraints --------------------------------------------------------------------------


def test_serial_is_unique_per_issuer(init: Callable[[Path], Sandbox], tmp_path: Path) -> None:
    sandbox = init(tmp_path / "data")
    now = dt.datetime.now(UTC)
    with sandbox.transaction() as session:
        first = repo.reserve_serials(session, QWAC_CA_ID, ["0A1B2C"], "qwac", now)
        first_id = first[0].id

    with pytest.raises(QTSPError) as caught:
        with sandbox.transaction() as session:
            repo.reserve_serials(session, QWAC_CA_ID, ["0A1B2C"], "qwac", now + dt.timedelta(seconds=1))
    assert caught.value.kind is Kind.CONFLICT

    # A batch holding a used serial is refused as a whole: the fresh serial beside it is not kept.
    with pytest.raises(QTSPError) as caught:
        with sandbox.transaction() as session:
            repo.reserve_serials(session, QWAC_CA_ID, ["0D0E0F", "0A1B2C"], "qwac", now)
    assert caught.value.kind is Kind.CONFLICT

    with sandbox.transaction() as session:
        rows = session.execute(select(IssuanceIntent)).scalars().all()
        assert [(r.id, r.issuer_id, r.serial, r.state, r.created_at) for r in rows] == [
            (first_id, QWAC_CA_ID, "0A1B2C", "reserved", now)
        ]
        # The same serial under another issuer is a different certificate: allowed.
        repo.reserve_serials(session, QSEAL_CA_ID, ["0A1B2C"], "qsealc", now)
    with sandbox.transaction() as session:
        assert len(session.execute(select(IssuanceIntent)).scalars().all()) == 2


# --- key custody --------------------------------------------------------------------------


def _every_stored_value(engine: Engine) -> list[tuple[str, str, bytes]]:
    """(table, column, value as bytes) for every non-null cell of every table in the database."""
    meta = sa.MetaData()
    meta.reflect(engine)
    assert TABLES <= set(meta.tables)
    cells = []
    with engine.connect() as conn:
        for table in meta.sorted_tables:
            for row in conn.execute(table.select()).mappings():
                for column, value in row.items():
                    if value is None:
                        continue
                    if isinstance(value, (bytes, bytearray, memoryview)):
                        data = bytes(value)
                    else:
                        data = str(value).encode()
                    cells.append((table.name, column, data))
    return cells


def _windows(data: bytes, size: int = 16) -> set[bytes]:
    """Every ``size``-byte run of ``data`` (the whole of it when shorter)."""
    return {data[i : i + size] for i in range(0, max(len(data) - size, 0) + 1)}


def _private_scalar(key: object) -> bytes:
    value = key.private_numbers().private_value  # type: ignore[attr-defined]
    return value.to_bytes((value.bit_length() + 7) // 8, "big")


def test_no_key_material_in_the_database(
    issued: tuple[Sandbox, Issued], store_url: str, engines: Callable[[str], Engine]
) -> None:
    sandbox, result = issued
    key_files = sorted((sandbox.data_dir / "keys").glob("*.p8"))
    assert len(key_files) == 10  # five CA keys (two roots), five OCSP responder keys (each root's answers for its CAs)

    passphrase = (sandbox.data_dir / "secrets" / "key-passphrase").read_bytes().strip()
    secrets: dict[str, bytes] = {"key passphrase": passphrase}
    for path in key_files:
        pem = path.read_bytes()
        kind, _, der = asn1_pem.unarmor(pem)
        assert kind == "ENCRYPTED PRIVATE KEY"
        info = asn1_keys.EncryptedPrivateKeyInfo.load(der)
        params = info["encryption_algorithm"]["parameters"]
        # The file's own secret parts (the public ASN.1 framing and OIDs are shared with any DER):
        # the base64 body, the ciphertext, the PBKDF2 salt and the IV, and the decrypted scalar.
        secrets[f"{path.name} base64"] = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
        secrets[f"{path.name} ciphertext"] = info["encrypted_data"].native
        secrets[f"{path.name} salt"] = params["key_derivation_func"]["parameters"]["salt"].native
        secrets[f"{path.name} iv"] = params["encryption_scheme"]["parameters"].native
        secrets[f"{path.name} private scalar"] = _private_scalar(
            serialization.load_pem_private_key(pem, passphrase)  # type: ignore[arg-type]
        )
    assert result.private_key is not None  # the subscriber key generated for the QWAC
    secrets["subscriber private scalar"] = _private_scalar(result.private_key)

    cells = _every_stored_value(engines(store_url))
    assert {table for table, _, _ in cells} >= {"key_references", "certificate_authorities", "certificates", "audit_events"}
    for table, column, data in cells:
        assert b"PRIVATE KEY" not in data, f"{table}.{column} holds a PEM private key"
        for name, secret in secrets.items():
            # No 16-byte run of any secret appears anywhere: catches whole copies and fragments
            # alike (16 random bytes turning up by chance in ~50 kB of DER: ~1e-33).
            for window in _windows(secret):
                assert window not in data, f"{table}.{column} holds bytes of {name}"

    with sandbox.transaction() as session:
        keys = session.execute(select(KeyReference).order_by(KeyReference.id)).scalars().all()
        assert len(keys) == 10
        for key in keys:
            assert re.fullmatch(r"file:[a-z0-9][a-z0-9._-]{0,63}", key.ref), key.ref
            assert (sandbox.data_dir / "keys" / f"{key.ref[len('file:'):]}.p8") in key_files
            public = serialization.load_der_public_key(key.public_key_der)
            assert public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo) == key.public_key_der


# --- one hierarchy per database -------------------------------------------------------------


def test_second_init_on_the_same_database_is_refused(
    init: Callable[[Path], Sandbox], tmp_path: Path, engines: Callable[[str], Engine], store_env: str
) -> None:
    first = init(tmp_path / "first")
    engine = engines(store_env)
    before = {t: _count(engine, t) for t in ("certificate_authorities", "key_references", "audit_events", "ncas")}
    assert before["certificate_authorities"] == 5

    second = tmp_path / "second"
    with pytest.raises(QTSPError) as caught:
        init(second)
    assert caught.value.kind is Kind.CONFLICT

    assert {t: _count(engine, t) for t in before} == before
    assert not (second / "keys").exists(), "keys were generated for a refused init"
    assert not (second / "qtsp.toml").exists()
    with first.transaction() as session:
        assert {ca.id for ca in repo.list_cas(session)} == {"root", QWAC_CA_ID, QSEAL_CA_ID, "browser-root", "qwac-browser-ca"}
    assert audit.verify(first) == (8, None)


# --- audit chain tampering ------------------------------------------------------------------


def _tamper_details(conn: sa.Connection, last: int) -> int:
    conn.execute(sa.text("UPDATE audit_events SET details = :d WHERE seq = 2"), {"d": '{"forged":true}'})
    return 2


def _tamper_delete_last(conn: sa.Connection, last: int) -> int:
    conn.execute(sa.text("DELETE FROM audit_events WHERE seq = :s"), {"s": last})
    return last


def _tamper_swap(conn: sa.Connection, last: int) -> int:
    # seq is the primary key: go through a free value so no statement collides.
    conn.execute(sa.text("UPDATE audit_events SET seq = -1 WHERE seq = 2"))
    conn.execute(sa.text("UPDATE audit_events SET seq = 2 WHERE seq = 3"))
    conn.execute(sa.text("UPDATE audit_events SET seq = 3 WHERE seq = -1"))
    return 2


@pytest.mark.parametrize(
    "tamper", [_tamper_details, _tamper_delete_last, _tamper_swap], ids=["update-details", "delete-last", "swap-seq"]
)
def test_audit_tampering_is_reported(
    tamper: Callable[[sa.Connection, int], int], init: Callable[[Path], Sandbox], tmp_path: Path,
    engines: Callable[[str], Engine], store_env: str,
) -> None:
    sandbox = init(tmp_path / "data")
    register.add_psp(sandbox, org_id=ORG, name="Example Fintech SA", roles="PSP_AI", locality="Brussels")
    total, problem = audit.verify(sandbox)
    assert (total, problem) == (9, None)  # five CAs made, three registered for status, one PSP registered

    with engines(store_env).begin() as conn:  # raw SQL, behind the repositories' back
        expected_seq = tamper(conn, total)

    _, problem = audit.verify(sandbox)
    assert problem is not None, f"{tamper.__name__} went unnoticed"
    assert problem.seq == expected_seq, problem


# --- time -------------------------------------------------------------------------------------


def _assert_utc(value: dt.datetime | None, what: str) -> None:
    assert isinstance(value, dt.datetime), what
    assert value.tzinfo is not None and value.utcoffset() == dt.timedelta(0), f"{what} is {value!r}"


def test_timestamps_are_aware_utc(issued: tuple[Sandbox, Issued], store_url: str) -> None:
    sandbox, result = issued
    with sandbox.transaction() as session:
        for ca in repo.list_cas(session):
            for name in ("not_before", "not_after", "created_at"):
                _assert_utc(getattr(ca, name), f"certificate_authorities.{name}")
            _assert_utc(ca.key.created_at, "key_references.created_at")
        cert = session.execute(select(Certificate).where(Certificate.issuer_id == QWAC_CA_ID)).scalar_one()
        for name in ("not_before", "not_after", "created_at"):
            _assert_utc(getattr(cert, name), f"certificates.{name}")
        assert cert.not_before == result.certificate.not_valid_before_utc
        assert cert.not_after == result.certificate.not_valid_after_utc
        psp = session.get(PSPAuthorisation, ORG)
        assert psp is not None
        _assert_utc(psp.created_at, "psp_authorisations.created_at")
        _assert_utc(psp.updated_at, "psp_authorisations.updated_at")
        _assert_utc(session.execute(select(IssuanceIntent)).scalar_one().created_at, "issuance_intents.created_at")
        for ev in repo.audit_events(session):
            _assert_utc(ev.at, "audit_events.at")

    # An aware non-UTC value round-trips as the same instant, in UTC, to the microsecond.
    cest = dt.timezone(dt.timedelta(hours=2))
    written = dt.datetime(2030, 6, 1, 14, 30, 15, 123456, tzinfo=cest)
    with sandbox.transaction() as session:
        key = repo.add_key(session, KeyReference(ref="file:tz-probe", key_type="ecdsa-p256", public_key_der=b"\x30",
                                                 purpose="test", created_at=written))
        key_id = key.id
    with sandbox.transaction() as session:
        read = session.get(KeyReference, key_id)
        assert read is not None
        _assert_utc(read.created_at, "round-tripped created_at")
        assert read.created_at == written
        assert read.created_at.replace(tzinfo=None) == dt.datetime(2030, 6, 1, 12, 30, 15, 123456)

    # A naive datetime is refused rather than stored as some local time.
    with pytest.raises(StatementError):
        with sandbox.transaction() as session:
            repo.add_key(session, KeyReference(ref="file:naive", key_type="ecdsa-p256", public_key_der=b"\x30",
                                               purpose="test", created_at=dt.datetime(2030, 1, 1)))

    if store_url.startswith("postgresql"):
        # On PostgreSQL the column itself is timestamptz, not just the ORM type.
        with sandbox.engine.connect() as conn:
            types = conn.execute(sa.text(
                "SELECT DISTINCT data_type FROM information_schema.columns "
                "WHERE table_schema = 'public' AND data_type LIKE 'timestamp%'"
            )).scalars().all()
        assert types == ["timestamp with time zone"]


def test_first_revocations_of_an_issuer_at_once_both_succeed(init: Callable[[Path], Sandbox], tmp_path: Path) -> None:
    """Two workers revoking the first certificates of an issuer at the same moment both create its
    publication_state row; the second used to fail its unique key (a 500, found by the kill -9 test on
    PostgreSQL). Several rounds, each starting with no row, each with a barrier."""
    import threading

    from sqlalchemy import delete

    from ca_store.models import PublicationState
    from qtsp.services import issuance, register, revocation

    sandbox = init(tmp_path / "data")
    register.add_psp(sandbox, org_id="PSDBE-NBB-0123456789", name="Example Fintech SA", roles="PSP_AI,PSP_PI",
                     country="BE")
    for _round in range(6):
        serials = [format(issuance.issue(sandbox, issuance.IssueRequest(
            "qsealc", "PSDBE-NBB-0123456789", generate_key="ecdsa-p256")).certificate.serial_number, "X")
            for _ in range(3)]
        with sandbox.transaction() as session:
            session.execute(delete(PublicationState))
        barrier = threading.Barrier(len(serials))
        errors: list[BaseException] = []

        def revoke(serial: str) -> None:
            barrier.wait()
            try:
                revocation.revoke(sandbox, serial, "superseded")
            except BaseException as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

        threads = [threading.Thread(target=revoke, args=(s,)) for s in serials]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        with sandbox.transaction() as session:
            states = session.query(PublicationState).all()
            assert [s.issuer_id for s in states] == ["qseal-ca"] and states[0].crl_dirty_since is not None
