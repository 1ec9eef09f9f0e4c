"""Celery tasks of the patient space: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from patients import services


@shared_task(acks_late=True, ignore_result=True)
def notify_patient(mailbox_id: int) -> bool:
    """Tell a patient at their personal address that a message waits (throttled)."""
    return services.notify(mailbox_id)
