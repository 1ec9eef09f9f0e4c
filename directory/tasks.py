"""Scheduled Annuaire Santé imports (Celery beat): thin, the work is in services."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from directory import services
from directory.models import ImportRun


@shared_task(acks_late=True, ignore_result=True)
def import_annuaire(kind: str) -> int | None:
    """Import the configured source of one extraction (DIRECTORY_MSS_SOURCE / _PS_SOURCE)."""
    source = (
        settings.DIRECTORY_MSS_SOURCE
        if kind == ImportRun.Kind.MSS
        else settings.DIRECTORY_PS_SOURCE
    )
    if not source:
        return None
    run = services.import_from_source(kind, source)
    return run.pk
