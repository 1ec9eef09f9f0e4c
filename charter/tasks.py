"""Scheduled work of the charter (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task

from charter import audit, inactivity


@shared_task(acks_late=True)
def purge_audit_journal() -> int:
    """Purge audit events past AUDIT_RETENTION_DAYS; returns how many went."""
    checkpoint = audit.purge_expired()
    return checkpoint.purged_count if checkpoint else 0


@shared_task(acks_late=True)
def anchor_audit_journal() -> int:
    """Anchor the audit journal's head outside the database; returns the anchored event id."""
    line = audit.anchor()
    return int(line["last_id"]) if line else 0


@shared_task(acks_late=True)
def check_inactive_mailboxes() -> dict[str, int]:
    """Warn the holders of inactive mailboxes, close those past their notice (CNIL 2014-239)."""
    run = inactivity.check_inactive_mailboxes()
    return {"warned": run.warned, "closed": run.closed}
