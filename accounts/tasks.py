"""Celery tasks of accounts: no arguments or ids only, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from accounts import account_sessions, lockout


@shared_task(acks_late=True, ignore_result=True)
def purge_login_throttles() -> int:
    """Forget idle guessing counters and long-unused known addresses."""
    return lockout.purge()


@shared_task(acks_late=True, ignore_result=True)
def purge_account_sessions() -> int:
    """Forget the records of sessions ended or expired (the journal keeps the sign-ins)."""
    return account_sessions.purge()
