"""Alembic environment: the engine comes from ca_store.db (no alembic.ini URL)."""

from alembic import context

from ca_store.models import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
