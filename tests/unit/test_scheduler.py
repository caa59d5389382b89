"""The scheduler in process: the lease has one holder until it expires; the Trusted List job publishes by
itself. (Schedulers as processes, takeover after a kill, CRLs through `qtsp serve`: tests/system/test_scheduler.py.)"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from qtsp.scheduler import try_lease
from qtsp.services.context import Sandbox

T0 = dt.datetime(2026, 11, 21, 12, 0, tzinfo=dt.timezone.utc)


def test_lease_has_one_holder_until_it_expires(sandbox: Sandbox) -> None:
    assert try_lease(sandbox, "a", T0, 10)
    assert not try_lease(sandbox, "b", T0 + dt.timedelta(seconds=5), 10)
    assert try_lease(sandbox, "a", T0 + dt.timedelta(seconds=5), 10)  # renewal
    assert not try_lease(sandbox, "b", T0 + dt.timedelta(seconds=14), 10)
    assert try_lease(sandbox, "b", T0 + dt.timedelta(seconds=15), 10)  # a stopped renewing
    assert not try_lease(sandbox, "a", T0 + dt.timedelta(seconds=16), 10)


def test_the_trusted_list_job_publishes_after_a_rollover_without_a_reader(sandbox: Sandbox, data_dir: Path) -> None:
    """The scheduler keeps /tl.xml current by itself: the first run publishes a list, a run with nothing
    changed publishes nothing, and after a CA rollover the next run publishes the next sequence listing it."""
    from qtsp import scheduler
    from qtsp.relying_party import parse_and_verify_trusted_list
    from qtsp.services import keys, trusted_list
    from qtsp.clock import utcnow

    assert scheduler.run_job("publish-trusted-list", str(data_dir)) == 1
    assert scheduler.run_job("publish-trusted-list", str(data_dir)) == 0
    with sandbox.transaction() as session:
        first = trusted_list.latest(session)
    assert first is not None
    keys.rollover_ca(sandbox, "qwac-ca", utcnow())
    assert scheduler.run_job("publish-trusted-list", str(data_dir)) == 1
    with sandbox.transaction() as session:
        second = trusted_list.latest(session)
    assert second is not None and second.sequence == first.sequence + 1
    parsed = parse_and_verify_trusted_list(second.xml, [trusted_list.signer_certificate(sandbox)], utcnow())
    assert any("(qwac-ca-2)" in service.name for service in parsed.services)
