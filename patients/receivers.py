"""What patients does when mailboxes delivers: tell the patient, without content, after commit.

Connected to ``mailboxes.hooks.delivered`` by ``PatientsConfig.ready``. Messages carrying
a calendar part also go to the agenda (``services_agenda.record_invitation``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from django.db import transaction

from mailboxes.models import Mailbox, Message
from patients import services_agenda, tasks

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


def enqueue_invitations(invitations: dict[int, list[int]]) -> None:
    """Enqueue ``record_invitations`` per patient box (call after commit only)."""
    for mailbox_id, message_ids in sorted(invitations.items()):
        try:
            tasks.record_invitations.delay(mailbox_id, sorted(message_ids))
        except Exception:
            # The message is delivered: a lost invitation still reads in the conversation.
            log.exception("record_invitations(%s) failed", mailbox_id)


def on_delivered(
    sender: Any,
    *,
    mailboxes: Iterable[Mailbox],
    received: Iterable[tuple[Mailbox, Message]] = (),
    **kwargs: Any,
) -> None:
    """Receiver of ``mailboxes.hooks.delivered``, in the delivery's transaction."""
    patient_boxes = sorted({m.pk for m in mailboxes if m.kind == Mailbox.Kind.PATIENT})
    invitations: dict[int, list[int]] = {}
    for box, message in received:
        if box.kind == Mailbox.Kind.PATIENT and services_agenda.carries_calendar(message):
            invitations.setdefault(box.pk, []).append(message.pk)
    if invitations:
        # Before the notification: an eager run has the appointment when the patient looks.
        transaction.on_commit(lambda: enqueue_invitations(invitations))
    if patient_boxes:
        transaction.on_commit(lambda: enqueue_notifications(patient_boxes))
