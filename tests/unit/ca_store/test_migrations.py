"""The store's migrations (ca_store.db, alembic): they create the schema once (a second run is no DDL at
all) and the migrated schema is exactly the models. On SQLite here; tests/system/ca_store/test_store_postgres.py
runs the same tests on PostgreSQL (the ``store_url`` fixture: tests/conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, event, inspect

from ca_store import db
from ca_store.models import Base


TABLES = {t.name for t in Base.metadata.sorted_tables}


def _head_revision() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    from ca_store.db import MIGRATIONS

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return ScriptDirectory.from_config(cfg).get_current_head()


# --- migrations -------------------------------------------------------------------------


def test_migrate_creates_the_schema_and_is_idempotent(store_url: str, engines: Callable[[str], Engine]) -> None:
    engine = engines(store_url)
    assert not db.is_initialised(engine)
    assert inspect(engine).get_table_names() == []

    db.migrate(engine)
    assert db.is_initialised(engine)
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [_head_revision()]

    # Second run: no DDL at all, same tables, still one version row.
    statements: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        db.migrate(engine)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    ddl = [s for s in statements if re.match(r"\s*(CREATE|ALTER|DROP|INSERT|UPDATE|DELETE)\b", s, re.I)]
    assert ddl == []
    assert set(inspect(engine).get_table_names()) == TABLES | {"alembic_version"}
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [_head_revision()]


def test_migrated_schema_matches_the_models(store_url: str, engines: Callable[[str], Engine]) -> None:
    """Alembic autogenerate finds nothing to do: the migration and ca_store.models agree.

    compare_type is on, so a column type drift (say String(64) -> String(128), or a DateTime
    losing timezone=True on PostgreSQL) is caught too. Nothing is filtered out: on both
    backends the comparison is exact (SQLite reflects DATETIME / VARCHAR(n) / BLOB, which
    alembic matches against DateTime / String(n) / LargeBinary without noise).
    """
    engine = engines(store_url)
    db.migrate(engine)
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True, "compare_server_default": True})
        diff = compare_metadata(context, Base.metadata)
    assert diff == []


def test_0006_access_gives_existing_tokens_an_expiry(store_url: str, engines: Callable[[str], Engine]) -> None:
    """Tokens made before the migration were eternal; after it they expire 90 days from the upgrade."""
    import datetime as dt

    from alembic import command

    engine = engines(store_url)
    command.upgrade(db.alembic_config(engine), "0005")
    with engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO api_tokens (name, role, token_hash, created_at) VALUES "
                             "('old', 'operator', :h, :at)"), {"h": "ab" * 32, "at": dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)})
    db.migrate(engine)
    with engine.connect() as conn:
        (expires,) = conn.execute(sa.text("SELECT expires_at FROM api_tokens WHERE name = 'old'")).one()
    if isinstance(expires, str):  # SQLite hands back text
        expires = dt.datetime.fromisoformat(expires)
    expires = expires if expires.tzinfo else expires.replace(tzinfo=dt.timezone.utc)
    left = expires - dt.datetime.now(dt.timezone.utc)
    assert dt.timedelta(days=89) < left <= dt.timedelta(days=90)
