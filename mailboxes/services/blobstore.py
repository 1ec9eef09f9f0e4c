"""The blob store's upkeep: orphan files are collected on a schedule (Celery beat)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from mailboxes import blobs
from mailboxes.models import DraftAttachment, Message

log = logging.getLogger(__name__)


def _referenced(names: list[str]) -> set[str]:
    """Those of ``names`` that a message or a draft's file still points to."""
    return set(
        Message.objects.filter(blob_name__in=names).values_list("blob_name", flat=True)
    ) | set(DraftAttachment.objects.filter(blob_name__in=names).values_list("blob_name", flat=True))


def collect_orphan_blobs(now: datetime | None = None) -> dict[str, int]:
    """Delete blobs no row names and stale temporary files, older than BLOB_ORPHAN_GRACE_SECONDS."""
    counts = blobs.collect_orphans(
        _referenced,
        grace=timedelta(seconds=settings.BLOB_ORPHAN_GRACE_SECONDS),
        now=now or timezone.now(),
    )
    if counts["orphans"] or counts["temporary"]:
        log.info(
            "blob store: %d orphan blobs and %d temporary files removed (%d kept)",
            counts["orphans"],
            counts["temporary"],
            counts["kept"],
        )
    return counts
