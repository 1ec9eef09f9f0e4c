"""What patients does when mailboxes delivers: tell the patient, without content, after commit.

Connected to ``mailboxes.hooks.delivered`` by ``PatientsConfig.ready``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from mailboxes.models import Mailbox
from patients import tasks

log = logging.getLogger(__name__)


def enqueue_notifications(mailbox_ids: Iterable[int]) -> None:
    """Enqueue ``notify_patient`` for each patient box (call after commit only)."""
    for mailbox_id in sorted(set(mailbox_ids)):
        try:
            tasks.notify_patient.delay(mailbox_id)
        except Exception:
            # The message is delivered and committed; a failed notification (broker down,
            # or the mail server refusing when tasks run eagerly) only means the patient
            # finds it at their next visit. It must not turn the sender's page into an error.
            log.exception("notify_patient(%s) failed", mailbox_id)


def on_delivered(sender: Any, *, mailboxes: Iterable[Mailbox], **kwargs: Any) -> None:
    """Receiver of ``mailboxes.hooks.delivered``, in the delivery's transaction."""
    patient_boxes = sorted({m.pk for m in mailboxes if m.kind == Mailbox.Kind.PATIENT})
    if patient_boxes:
        transaction.on_commit(lambda: enqueue_notifications(patient_boxes))
