"""Scheduled work of the trust rules (thin: each calls one service)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from trust import listeblanche


@shared_task(acks_late=True)
def refresh_liste_blanche() -> str:
    """Re-import the liste blanche from LISTE_BLANCHE_URL (nothing when it is empty)."""
    url = settings.LISTE_BLANCHE_URL
    if not url:
        return "disabled"
    return listeblanche.import_liste_blanche(url).result
