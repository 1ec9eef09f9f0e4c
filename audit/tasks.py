"""Scheduled work of the audit journal (thin: each calls one function of the mechanism)."""

from __future__ import annotations

from celery import shared_task

from audit import chain, seals


@shared_task(acks_late=True)
def purge_journal() -> int:
    """Purge audit events past AUDIT_RETENTION_DAYS; returns how many went."""
    checkpoint = chain.purge_expired()
    return checkpoint.purged_count if checkpoint else 0


@shared_task(acks_late=True)
def anchor_journal() -> int:
    """Anchor the audit journal's newest seal outside the database; returns the seal's id."""
    line = chain.anchor()
    return int(line["seal"]) if line else 0


@shared_task(acks_late=True)
def seal_journal() -> int:
    """Seal the journal rows of finished transactions; returns how many were sealed.

    Another sealer at work already: returns at once (it seals them, or the next run).
    Anchors soon when the sealed total crossed a multiple of AUDIT_ANCHOR_EVERY.
    """
    sealed = seals.seal(wait=False)
    if sealed.anchor_due:
        anchor_journal.delay()
    return sealed.rows
