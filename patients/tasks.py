"""Celery tasks of the patient space: ids in, one service call, safe to run twice."""

from __future__ import annotations

from celery import shared_task

from patients import closing, family, services, services_agenda, services_documents


@shared_task(acks_late=True, ignore_result=True)
def notify_patient(mailbox_id: int) -> bool:
    """Tell a patient at their personal address that a message waits (throttled)."""
    return services.notify(mailbox_id)


@shared_task(acks_late=True, ignore_result=True)
def end_family_links_at_majority() -> int:
    """Daily: end the guardians' links of children who turned 18, start their own activation."""
    return family.end_links_at_majority().ended


@shared_task(acks_late=True, ignore_result=True)
def record_invitations(mailbox_id: int, message_ids: list[int]) -> int:
    """Mon agenda: apply the calendar invitations of messages delivered to a patient box."""
    return services_agenda.record_invitations(mailbox_id, message_ids)


@shared_task(acks_late=True, ignore_result=True)
def send_appointment_reminders() -> int:
    """Mon agenda (beat): the content-free reminders of appointments coming soon."""
    return services_agenda.send_reminders()


@shared_task(acks_late=True, ignore_result=True)
def file_patient_documents(mailbox_id: int) -> int:
    """File in "Mes documents" the documents of what a patient box received (once each)."""
    return services_documents.file_received_documents(mailbox_id)


@shared_task(acks_late=True, ignore_result=True)
def erase_closed_spaces() -> int:
    """Daily: erase the patient spaces closed longer than their retention period."""
    return closing.erase_closed_spaces()
