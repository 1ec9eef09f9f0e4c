"""Scheduled work of the charter (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from charter import inactivity


@shared_task(acks_late=True)
def check_inactive_mailboxes() -> dict[str, int]:
    """Warn the holders of inactive mailboxes, close those past their notice (CNIL 2014-239)."""
    run = inactivity.check_inactive_mailboxes()
    return {"warned": run.warned, "closed": run.closed}
