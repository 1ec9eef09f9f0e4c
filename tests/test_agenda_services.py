"""Mon agenda through the real pipeline: PostgreSQL, Redis, clamd and a Celery worker.

The invitation is scanned and delivered by the worker, which records the appointment
(``patients.tasks.record_invitations``, enqueued on the delivery's commit); the patient's
answer goes back the same way to the professional's box.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from mailboxes.models import Entry, Message
from mssante.lib import mime
from patients.models_agenda import Appointment
from patients.tests.test_agenda import ics
from tests.personas import Person, login, submit
from tests.test_pipeline_services import _no_wake_left, wait_for, worker

__all__ = ["_no_wake_left", "worker"]

pytestmark = [
    pytest.mark.services,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not os.environ.get("MSSANTE_TEST_SERVICES"),
        reason="needs scripts/services (MSSANTE_TEST_SERVICES=1)",
    ),
]


def test_the_worker_records_the_invitation_and_delivers_the_acceptance(
    claire: Person, lucie: Person
) -> None:
    patient, patient_box = lucie
    doctor_user, doctor_box = claire
    start = (timezone.now() + timedelta(days=2)).replace(second=0, microsecond=0)
    submit(
        doctor_box,
        [patient_box.address],
        subject="Votre rendez-vous",
        attachments=[
            mime.Attachment(
                "invitation.ics",
                "text/calendar",
                ics(doctor_box.address, patient_box.address, start=start),
            )
        ],
    )
    wait_for(lambda: Appointment.objects.filter(mailbox=patient_box).exists(), "the appointment")
    appointment = Appointment.objects.get(mailbox=patient_box)
    assert appointment.start == start
    response = login(patient).post(
        reverse("patients:agenda_answer", args=[appointment.pk]), {"answer": "ACCEPTED"}
    )
    assert response.status_code == 302
    reply = Message.objects.get(sender_mailbox=patient_box)
    wait_for(
        lambda: Entry.objects.filter(mailbox=doctor_box, message=reply).exists(),
        "the acceptance in the doctor's box",
    )
    entry = Entry.objects.get(mailbox=doctor_box, message=reply)
    page = login(doctor_user).get(reverse("webmail_read", args=[entry.pk])).content.decode()
    assert "a accepté « Consultation de suivi diabète »" in page
