"""The store tests of tests/unit/ca_store, on PostgreSQL: a throwaway cluster started once per session
(tests/support/pg.py), a fresh empty database for each test. The tests are the unit ones, imported; only
the ``store_url`` fixture differs (the others in tests/conftest.py are built on it). Without PostgreSQL
installed they fail (they never skip)."""

from __future__ import annotations

import pytest

from support.pg import PostgresCluster
from unit.ca_store.test_migrations import (  # noqa: F401 (collected here, on PostgreSQL)
    test_0006_access_gives_existing_tokens_an_expiry, test_migrate_creates_the_schema_and_is_idempotent,
    test_migrated_schema_matches_the_models)
from unit.ca_store.test_store import (  # noqa: F401 (collected here, on PostgreSQL)
    test_audit_tampering_is_reported, test_first_revocations_of_an_issuer_at_once_both_succeed, test_init_register_issue,
    test_no_key_material_in_the_database, test_second_init_on_the_same_database_is_refused, test_serial_is_unique_per_issuer,
    test_timestamps_are_aware_utc)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, pg_cluster: PostgresCluster) -> str:
    """An empty database on the session's cluster."""
    return pg_cluster.new_database()
