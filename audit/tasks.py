"""Scheduled work of the audit journal (thin: each calls one function of audit.chain)."""

from __future__ import annotations

from celery import shared_task

from audit import chain


@shared_task(acks_late=True)
def purge_journal() -> int:
    """Purge audit events past AUDIT_RETENTION_DAYS; returns how many went."""
    checkpoint = chain.purge_expired()
    return checkpoint.purged_count if checkpoint else 0


@shared_task(acks_late=True)
def anchor_journal() -> int:
    """Anchor the audit journal's head outside the database; returns the anchored event id."""
    line = chain.anchor()
    return int(line["last_id"]) if line else 0
