"""Engines, sessions and migrations. SQLite by default, PostgreSQL via QTSP_DATABASE_URL."""

from __future__ import annotations

import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from collections.abc import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from qtsp.core.errors import Kind, QTSPError

MIGRATIONS = Path(__file__).parent / "migrations"


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def make_engine(url: str) -> Engine:
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    try:
        engine = create_engine(url, future=True, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError) as exc:
        raise QTSPError(Kind.STORAGE, f"cannot use database URL: {type(exc).__name__}: {exc}") from None
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:  # a DB-API connection, SQLAlchemy's record
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")  # an acknowledged write survives power loss
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()

    return engine


def alembic_config(engine: Engine | None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    if engine is not None:
        cfg.attributes["engine"] = engine
    return cfg


_migrate_lock = threading.Lock()  # alembic's context proxy is process-global, not thread-safe


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def ensure_current(engine: Engine) -> None:
    """Migrate only when the database is behind (the common case costs one query)."""
    if current_revision(engine) != head_revision():
        migrate(engine)


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest revision (idempotent)."""
    try:
        with _migrate_lock:
            command.upgrade(alembic_config(engine), "head")
    except CommandError as exc:  # e.g. a database stamped by a newer qtsp
        raise QTSPError(Kind.STORAGE, f"cannot migrate the database: {exc}") from None
    except SQLAlchemyError as exc:
        raise QTSPError(Kind.STORAGE, f"cannot migrate the database: {exc.__class__.__name__}: {exc}") from None


def is_initialised(engine: Engine) -> bool:
    return inspect(engine).has_table("certificate_authorities")


def session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only Session whose statements all see one snapshot of the database (reads that must agree
    with each other: the audit chain, its head and the rows it is checked against).

    PostgreSQL: a REPEATABLE READ transaction. SQLite: pysqlite starts no transaction for a SELECT, so
    each statement would read the newest commit; an explicit BEGIN makes the first read fix the
    snapshot (WAL) until the end. Rolled back at the end: nothing is written through it."""
    with engine.connect() as conn:
        if engine.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN")
        else:
            conn.execution_options(isolation_level="REPEATABLE READ")
        session = Session(bind=conn)
        try:
            yield session
        finally:
            session.close()
            conn.rollback()


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on any error. Services use this."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
