"""Mes documents after a delivery: file the patient's new documents, after commit.

Connected to ``mailboxes.hooks.delivered`` by ``PatientsConfig.ready``: every door that
delivers (web, API, SMTP gateway, a release from quarantine) goes through it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from mailboxes.models import Mailbox
from patients import tasks

log = logging.getLogger(__name__)


def enqueue_filing(mailbox_ids: Iterable[int]) -> None:
    """Enqueue ``file_patient_documents`` for each patient box (call after commit only)."""
    for mailbox_id in sorted(set(mailbox_ids)):
        try:
            tasks.file_patient_documents.delay(mailbox_id)
        except Exception:
            # Delivered and committed: the list files what is missing when it is opened.
            log.exception("file_patient_documents(%s) failed", mailbox_id)


def on_delivered(sender: Any, *, mailboxes: Iterable[Mailbox], **kwargs: Any) -> None:
    """Receiver of ``mailboxes.hooks.delivered``, in the delivery's transaction."""
    patient_boxes = sorted({m.pk for m in mailboxes if m.kind == Mailbox.Kind.PATIENT})
    if patient_boxes:
        transaction.on_commit(lambda: enqueue_filing(patient_boxes))
