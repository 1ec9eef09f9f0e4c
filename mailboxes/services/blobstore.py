"""The blob store's upkeep: orphan files are collected on a schedule (Celery beat)."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from mailboxes import blobs, hooks
from mailboxes.models import DraftAttachment, Message

log = logging.getLogger(__name__)


def _referenced(names: list[str]) -> set[str]:
    """Those of ``names`` that a message, a draft's file or a row of an app above (its
    blob kind registered in ``hooks``) still points to."""
    found = set(
        Message.objects.filter(blob_name__in=names).values_list("blob_name", flat=True)
    ) | set(DraftAttachment.objects.filter(blob_name__in=names).values_list("blob_name", flat=True))
    for referenced in hooks.blob_kinds().values():
        found.update(referenced(names))
    return found


def collect_orphan_blobs(now: datetime | None = None) -> dict[str, int]:
    """Delete blobs no row names and stale temporary files, older than BLOB_ORPHAN_GRACE_SECONDS."""
    counts = blobs.collect_orphans(
        _referenced,
        grace=timedelta(seconds=settings.BLOB_ORPHAN_GRACE_SECONDS),
        now=now or timezone.now(),
        kinds=(*blobs.KINDS, *hooks.blob_kinds()),
    )
    if counts["orphans"] or counts["temporary"]:
        log.info(
            "blob store: %d orphan blobs and %d temporary files removed (%d kept)",
            counts["orphans"],
            counts["temporary"],
            counts["kept"],
        )
    return counts
