"""The audit tampering tests of tests/unit/services/test_audit_integrity.py, on PostgreSQL: a throwaway
cluster started once per session (tests/support/pg.py), a fresh database per test. The tests are the
unit ones, imported; only the ``store_url`` fixture differs. The snapshot the check reads from is a
REPEATABLE READ transaction here (test_no_false_alarm_while_others_write)."""

from __future__ import annotations

import pytest

from support.pg import PostgresCluster
from unit.services.test_audit_integrity import (  # noqa: F401 (collected here, on PostgreSQL)
    history, test_a_certificate_inserted_directly_is_detected, test_a_certificate_replaced_or_deleted_is_detected,
    test_a_head_is_never_signed_over_a_rewritten_chain, test_a_token_changed_directly_is_detected,
    test_a_token_inserted_directly_is_detected, test_an_honest_history_verifies,
    test_changing_a_revocation_reason_is_detected, test_cut_the_tail_and_reset_the_head_is_detected,
    test_edit_rehash_and_move_the_head_is_detected, test_no_false_alarm_while_others_write,
    test_un_revoking_a_certificate_is_detected)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, pg_cluster: PostgresCluster) -> str:
    return pg_cluster.new_database()
