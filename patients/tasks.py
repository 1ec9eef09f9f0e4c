"""Celery tasks of the patient space: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from patients import services, services_documents


@shared_task(acks_late=True, ignore_result=True)
def notify_patient(mailbox_id: int) -> bool:
    """Tell a patient at their personal address that a message waits (throttled)."""
    return services.notify(mailbox_id)


@shared_task(acks_late=True, ignore_result=True)
def file_patient_documents(mailbox_id: int) -> int:
    """File in "Mes documents" the documents of what a patient box received (once each)."""
    return services_documents.file_received_documents(mailbox_id)
