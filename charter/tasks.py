"""Scheduled work of the charter (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from charter import inactivity, listeblanche


@shared_task(acks_late=True)
def refresh_liste_blanche() -> str:
    """Re-import the liste blanche from LISTE_BLANCHE_URL (nothing when it is empty)."""
    url = settings.LISTE_BLANCHE_URL
    if not url:
        return "disabled"
    return listeblanche.import_liste_blanche(url).result


@shared_task(acks_late=True)
def check_inactive_mailboxes() -> dict[str, int]:
    """Warn the holders of inactive mailboxes, close those past their notice (CNIL 2014-239)."""
    run = inactivity.check_inactive_mailboxes()
    return {"warned": run.warned, "closed": run.closed}
