"""The scheduler's lease: one row names the process that runs the jobs until it stops renewing."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError

from ca_store.models import SchedulerLease

from .context import Sandbox


def try_lease(sandbox: Sandbox, name: str, holder: str, now: dt.datetime, seconds: float) -> bool:
    """Take or renew the lease ``name``; True if ``holder`` holds it until now + seconds."""
    until = now + dt.timedelta(seconds=seconds)
    try:
        with sandbox.transaction() as session:
            lease = session.execute(
                select(SchedulerLease).where(SchedulerLease.name == name).with_for_update()
            ).scalar_one_or_none()
            if lease is None:
                session.add(SchedulerLease(name=name, holder=holder, expires_at=until))
                return True
            if lease.holder == holder or lease.expires_at <= now:
                lease.holder, lease.expires_at = holder, until
                return True
            return False
    except (IntegrityError, OperationalError):
        return False  # another process inserted or holds the lock: we stand by


def release(sandbox: Sandbox, name: str, holder: str) -> None:
    """Give the lease up at once (a clean stop), so a standby need not wait for it to expire."""
    with sandbox.transaction() as session:
        lease = session.get(SchedulerLease, name)
        if lease is not None and lease.holder == holder:
            session.delete(lease)
