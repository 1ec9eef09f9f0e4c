"""Celery tasks of accounts: no arguments or ids only, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from accounts import lockout


@shared_task(acks_late=True, ignore_result=True)
def purge_login_throttles() -> int:
    """Forget idle guessing counters and long-unused known addresses."""
    return lockout.purge()
