"""Mon agenda: invitations become appointments, answered, moved, cancelled, exported, reminded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import icalendar
import pytest
from django.core import mail
from django.urls import reverse
from django.utils import timezone

from audit.models import AuditEvent
from mailboxes import services as mailbox_services
from mailboxes.models import Entry, Mailbox, Message
from mssante.lib import mime
from patients import services, tasks
from patients.models import NotificationPreference
from patients.models_agenda import Appointment
from patients.tests.conftest import Space
from tests.personas import login

pytestmark = pytest.mark.django_db

SOON = (timezone.now() + timedelta(days=3)).replace(microsecond=0, second=0, minute=0)


def ics(
    organizer: str,
    attendee: str,
    *,
    start: datetime = SOON,
    sequence: int = 0,
    method: str = "REQUEST",
    uid: str = "rdv-17@cabinet-martin",
    summary: str = "Consultation de suivi diabète",
    location: str = "Cabinet du Dr Martin\\, 3 rue des Lilas",
) -> bytes:
    def stamp(value: datetime) -> str:
        return value.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")

    return (
        "BEGIN:VCALENDAR\r\nPRODID:-//Cabinet//FR\r\nVERSION:2.0\r\n"
        f"METHOD:{method}\r\nBEGIN:VEVENT\r\nUID:{uid}\r\nSEQUENCE:{sequence}\r\n"
        f"DTSTAMP:20261201T100000Z\r\nDTSTART:{stamp(start)}\r\n"
        f"DTEND:{stamp(start + timedelta(minutes=30))}\r\nSUMMARY:{summary}\r\n"
        f"LOCATION:{location}\r\nORGANIZER;CN=Dr Claire Martin:mailto:{organizer}\r\n"
        f"ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE:mailto:{attendee}\r\n"
        "END:VEVENT\r\nEND:VCALENDAR\r\n"
    ).encode()


def invite(space: Space, data: bytes | None = None, *, sender: Mailbox | None = None) -> Message:
    sender = sender or space.doctor_box
    return space.send(
        sender,
        [space.patient_box.address],
        subject="Votre rendez-vous",
        text="Je vous propose un rendez-vous.",
        attachments=[
            mime.Attachment(
                "invitation.ics",
                "text/calendar",
                data or ics(sender.address, space.patient_box.address),
            )
        ],
    )


def answer(space: Space, appointment: Appointment, choice: str, **kwargs: Any) -> Any:
    client = login(space.patient, **kwargs)
    url = reverse("patients:agenda_answer", args=[appointment.pk])
    return space.run(client.post, url, {"answer": choice}, follow=True)


def reply_ics(message: Message) -> str:
    raw = mailbox_services.read_raw(message)
    (part,) = mime.parse_message(raw).attachments
    return mime.get_part(raw, part.index).data.decode().replace("\r\n ", "")


def test_an_invitation_appears_in_the_agenda(space: Space) -> None:
    invite(space)
    appointment = Appointment.objects.get()
    assert appointment.mailbox == space.patient_box
    assert appointment.start == SOON and appointment.answer == Appointment.Answer.PENDING
    page = login(space.patient).get(reverse("patients:agenda")).content.decode()
    assert "Consultation de suivi diabète" in page
    assert "Cabinet du Dr Martin, 3 rue des Lilas" in page and "Dr Claire Martin" in page
    assert 'value="ACCEPTED"' in page and 'value="DECLINED"' in page
    assert AuditEvent.objects.filter(action="patient.appointment_received").exists()


def test_accepting_sends_an_itip_reply_the_professional_sees(space: Space) -> None:
    message = invite(space)
    appointment = Appointment.objects.get()
    response = answer(space, appointment, "ACCEPTED")
    assert "Rendez-vous accepté" in response.content.decode()
    reply = Message.objects.get(sender_mailbox=space.patient_box)
    assert reply.to_addrs == [space.doctor_box.address]
    assert reply.thread_key == message.thread_key
    data = reply_ics(reply)
    assert "METHOD:REPLY" in data and "UID:rdv-17@cabinet-martin" in data
    assert "PARTSTAT=ACCEPTED" in data and space.patient_box.address in data
    # Delivered in the professional's box, where the webmail shows the acceptance.
    received = Entry.objects.get(mailbox=space.doctor_box, message=reply)
    page = login(space.doctor).get(reverse("webmail_read", args=[received.pk])).content.decode()
    assert "a accepté « Consultation de suivi diabète »" in page
    appointment.refresh_from_db()
    assert appointment.answer == Appointment.Answer.ACCEPTED and appointment.answered_at
    event = AuditEvent.objects.get(action="patient.appointment_answered")
    assert event.data["answer"] == "ACCEPTED" and "diabète" not in str(event.data)


def test_declining_sends_a_declined_reply(space: Space) -> None:
    invite(space)
    appointment = Appointment.objects.get()
    answer(space, appointment, "DECLINED")
    reply = Message.objects.get(sender_mailbox=space.patient_box)
    assert "PARTSTAT=DECLINED" in reply_ics(reply)
    received = Entry.objects.get(mailbox=space.doctor_box, message=reply)
    page = login(space.doctor).get(reverse("webmail_read", args=[received.pk])).content.decode()
    assert "a refusé « Consultation de suivi diabète »" in page
    appointment.refresh_from_db()
    assert appointment.answer == Appointment.Answer.DECLINED


def test_the_same_answer_twice_and_an_unknown_answer_send_nothing(space: Space) -> None:
    invite(space)
    appointment = Appointment.objects.get()
    answer(space, appointment, "ACCEPTED")
    again = answer(space, appointment, "ACCEPTED").content.decode()
    assert "déjà donné cette réponse" in again
    unknown = answer(space, appointment, "<script>").content.decode()
    assert "Réponse inconnue" in unknown and "<script>" not in unknown
    assert Message.objects.filter(sender_mailbox=space.patient_box).count() == 1


def test_an_update_with_a_higher_sequence_moves_the_appointment(space: Space) -> None:
    invite(space)
    appointment = Appointment.objects.get()
    answer(space, appointment, "ACCEPTED")
    later = SOON + timedelta(days=2, hours=3)
    doctor, patient = space.doctor_box.address, space.patient_box.address
    invite(space, ics(doctor, patient, start=later, sequence=1, location="Salle 2"))
    appointment.refresh_from_db()
    assert appointment.start == later and appointment.sequence == 1
    assert appointment.location == "Salle 2"
    # A moved appointment needs a new answer.
    assert appointment.answer == Appointment.Answer.PENDING
    # An older version arriving late changes nothing.
    invite(space, ics(doctor, patient, start=SOON, sequence=0))
    appointment.refresh_from_db()
    assert appointment.start == later
    assert Appointment.objects.count() == 1


def test_a_cancel_marks_the_appointment_cancelled(space: Space) -> None:
    invite(space)
    doctor, patient = space.doctor_box.address, space.patient_box.address
    invite(space, ics(doctor, patient, method="CANCEL", sequence=1))
    appointment = Appointment.objects.get()
    assert appointment.cancelled
    page = login(space.patient).get(reverse("patients:agenda")).content.decode()
    assert "Annulé" in page and 'value="ACCEPTED"' not in page
    refused = answer(space, appointment, "ACCEPTED").content.decode()
    assert "a été annulé" in refused
    assert not Message.objects.filter(sender_mailbox=space.patient_box).exists()


def test_a_forged_update_or_cancel_from_another_sender_is_ignored(space: Space) -> None:
    invite(space)
    mine = Appointment.objects.get()
    nurse, patient = space.nurse_box.address, space.patient_box.address
    moved = SOON + timedelta(days=10)
    invite(space, ics(nurse, patient, start=moved, sequence=5), sender=space.nurse_box)
    invite(space, ics(nurse, patient, method="CANCEL", sequence=9), sender=space.nurse_box)
    mine.refresh_from_db()
    assert mine.start == SOON and not mine.cancelled and mine.sequence == 0
    assert mine.organizer_address == space.doctor_box.address
    # The nurse's invitation is her own appointment, answered to her, not to the doctor.
    theirs = Appointment.objects.exclude(pk=mine.pk).get()
    assert theirs.organizer_address == nurse and theirs.cancelled


def test_another_patients_appointment_does_not_exist(space: Space) -> None:
    invite(space)
    appointment = Appointment.objects.get()
    intruder = login(space.other)
    for url in (
        reverse("patients:agenda_event_ics", args=[appointment.pk]),
        reverse("patients:agenda_answer", args=[appointment.pk]),
    ):
        response = intruder.post(url, {"answer": "DECLINED"}) if "repondre" in url else None
        response = response or intruder.get(url)
        assert response.status_code == 404, url
    assert "Consultation" not in intruder.get(reverse("patients:agenda")).content.decode()
    # A professional has no agenda page.
    assert login(space.doctor).get(reverse("patients:agenda")).status_code == 404
    appointment.refresh_from_db()
    assert appointment.answer == Appointment.Answer.PENDING


def test_a_forged_post_without_the_csrf_token_is_refused(space: Space) -> None:
    invite(space)
    appointment = Appointment.objects.get()
    response = login(space.patient, enforce_csrf_checks=True).post(
        reverse("patients:agenda_answer", args=[appointment.pk]), {"answer": "ACCEPTED"}
    )
    assert response.status_code == 403
    assert not Message.objects.filter(sender_mailbox=space.patient_box).exists()


HOSTILE = {
    "huge": ics("a@b.fr", "c@d.fr", summary="x" * 300_000),
    "deep": b"BEGIN:VCALENDAR\r\n" * 50 + b"END:VCALENDAR\r\n" * 50,
    "bad dates": ics("a@b.fr", "c@d.fr").replace(b"DTSTART:", b"DTSTART:9999"),
    "binary": b"\x00\xff" * 1000,
    "no uid": ics("a@b.fr", "c@d.fr").replace(b"UID:rdv-17@cabinet-martin\r\n", b""),
    "many events": b"BEGIN:VCALENDAR\r\n"
    + b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n" * 500
    + b"END:VCALENDAR\r\n",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_calendar_is_not_an_appointment_and_never_an_error(
    space: Space, name: str
) -> None:
    invite(space, HOSTILE[name])
    assert not Appointment.objects.exists()
    assert login(space.patient).get(reverse("patients:agenda")).status_code == 200


def test_a_patient_cannot_make_an_appointment_with_herself(space: Space) -> None:
    message = invite(space)
    entry = space.entry(space.patient_box, message)
    # Her own answer (with its calendar part) lands in her box as sent: never an appointment.
    space.run(
        login(space.patient).post,
        reverse("patients:reply", args=[entry.pk]),
        {"text": "Merci."},
    )
    from patients import services_agenda

    for sent in Message.objects.filter(sender_mailbox=space.patient_box):
        assert services_agenda.record_invitation(space.patient_box.pk, sent.pk) is None
    assert Appointment.objects.count() == 1


def test_an_appointment_is_answered_even_in_a_closed_conversation(space: Space) -> None:
    message = invite(space)
    services.close_conversation(
        patient_box=space.patient_box,
        thread_key=message.thread_key,
        by=space.doctor,
        from_mailbox=space.doctor_box,
    )
    entry = space.entry(space.patient_box, message)
    # Free text is refused there…
    space.run(
        login(space.patient).post, reverse("patients:reply", args=[entry.pk]), {"text": "Merci"}
    )
    assert not Message.objects.filter(sender_mailbox=space.patient_box).exists()
    # …an appointment's answer is not (it carries no free text).
    answer(space, Appointment.objects.get(), "ACCEPTED")
    reply = Message.objects.get(sender_mailbox=space.patient_box)
    assert reply.to_addrs == [space.doctor_box.address]


def test_one_appointment_exports_as_an_ics_that_parses_back(space: Space) -> None:
    invite(space)
    appointment = Appointment.objects.get()
    response = login(space.patient).get(reverse("patients:agenda_event_ics", args=[appointment.pk]))
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/calendar")
    assert "attachment" in response["Content-Disposition"]
    calendar = icalendar.Calendar.from_ical(response.content)
    (event,) = calendar.walk("VEVENT")
    assert str(event["UID"]) == "rdv-17@cabinet-martin"
    assert event.decoded("DTSTART") == SOON
    assert str(event["SUMMARY"]) == "Consultation de suivi diabète"
    assert str(event["STATUS"]) == "TENTATIVE"
    assert AuditEvent.objects.filter(action="patient.agenda_exported").exists()


def test_the_whole_agenda_exports_without_declined_appointments(space: Space) -> None:
    doctor, patient = space.doctor_box.address, space.patient_box.address
    invite(space)
    invite(space, ics(doctor, patient, uid="autre@cabinet", summary="Vaccination"))
    declined = Appointment.objects.get(uid="autre@cabinet")
    answer(space, declined, "DECLINED")
    answer(space, Appointment.objects.get(uid="rdv-17@cabinet-martin"), "ACCEPTED")
    response = login(space.patient).get(reverse("patients:agenda_ics"))
    calendar = icalendar.Calendar.from_ical(response.content)
    events = calendar.walk("VEVENT")
    assert [str(e["UID"]) for e in events] == ["rdv-17@cabinet-martin"]
    assert str(events[0]["STATUS"]) == "CONFIRMED"


def test_the_reminder_is_sent_once_and_says_nothing(space: Space) -> None:
    doctor, patient = space.doctor_box.address, space.patient_box.address
    invite(space, ics(doctor, patient, start=timezone.now() + timedelta(hours=20)))
    invite(space, ics(doctor, patient, uid="loin@cabinet", start=SOON + timedelta(days=20)))
    mail.outbox.clear()
    assert tasks.send_appointment_reminders() == 1
    (reminder,) = mail.outbox
    assert reminder.to == [space.patient.email]
    text = f"{reminder.subject} {reminder.body}".lower()
    assert "rendez-vous" in text and "/patient/agenda/" in text
    for word in ("diabète", "martin", "lilas", "cabinet", space.doctor_box.address):
        assert word.lower() not in text
    # Never twice for the same appointment.
    assert tasks.send_appointment_reminders() == 0
    assert len(mail.outbox) == 1
    assert AuditEvent.objects.filter(action="patient.appointment_reminded").count() == 1


def test_no_reminder_when_declined_cancelled_or_notifications_are_off(space: Space) -> None:
    doctor, patient = space.doctor_box.address, space.patient_box.address
    soon = timezone.now() + timedelta(hours=5)
    invite(space, ics(doctor, patient, start=soon, uid="a@x"))
    invite(space, ics(doctor, patient, start=soon, uid="b@x"))
    invite(space, ics(doctor, patient, start=soon, uid="b@x", method="CANCEL", sequence=1))
    answer(space, Appointment.objects.get(uid="a@x"), "DECLINED")
    mail.outbox.clear()
    assert tasks.send_appointment_reminders() == 0
    invite(space, ics(doctor, patient, start=soon, uid="c@x"))
    services.update_preferences(space.patient, frequency=NotificationPreference.Frequency.NEVER)
    mail.outbox.clear()
    assert tasks.send_appointment_reminders() == 0
    assert mail.outbox == []


def test_the_reminder_task_is_scheduled() -> None:
    from django.conf import settings

    entry = settings.CELERY_BEAT_SCHEDULE["patient-appointment-reminders"]
    assert entry["task"] == "patients.tasks.send_appointment_reminders"


@pytest.mark.django_db(transaction=True)
def test_the_demo_patient_has_one_appointment_to_answer_however_often_seeded() -> None:
    from mssante import demo, demo_mail

    for _ in range(2):
        demo_mail.populate(demo.seed())
    patient = demo.patient_identity().user
    (appointment,) = Appointment.objects.filter(mailbox__owner=patient)
    assert appointment.answer == Appointment.Answer.PENDING and not appointment.cancelled
    assert appointment.start > timezone.now()
    assert appointment.organizer_address == "claire.martin@hopital-demo.mssante.fr"


def test_the_agenda_page_costs_the_same_queries_for_one_or_many_appointments(
    space: Space,
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    doctor, patient = space.doctor_box.address, space.patient_box.address
    client = login(space.patient)
    invite(space)
    client.get(reverse("patients:agenda"))
    with CaptureQueriesContext(connection) as one:
        client.get(reverse("patients:agenda"))
    for n in range(4):
        invite(space, ics(doctor, patient, uid=f"n{n}@x", start=SOON + timedelta(days=n)))
    with CaptureQueriesContext(connection) as many:
        page = client.get(reverse("patients:agenda")).content.decode()
    assert page.count("agenda-card__title") == 5
    assert len(many.captured_queries) == len(one.captured_queries)


def test_a_reminder_the_mail_server_refused_is_sent_at_the_next_run(space: Space) -> None:
    from unittest import mock

    doctor, patient = space.doctor_box.address, space.patient_box.address
    invite(space, ics(doctor, patient, start=timezone.now() + timedelta(hours=3)))
    mail.outbox.clear()
    with mock.patch("patients.services_agenda.send_mail", side_effect=OSError("refusé")):
        assert tasks.send_appointment_reminders() == 0
    assert Appointment.objects.get().reminded_at is None
    assert tasks.send_appointment_reminders() == 1
    assert len(mail.outbox) == 1


def test_recording_the_same_delivery_twice_changes_nothing(space: Space) -> None:
    message = invite(space)
    before = AuditEvent.objects.count()
    assert tasks.record_invitations(space.patient_box.pk, [message.pk]) == 0
    assert Appointment.objects.count() == 1 and AuditEvent.objects.count() == before


def test_an_all_day_appointment_starts_at_local_midnight_and_exports_as_a_date(
    space: Space,
) -> None:
    day = (timezone.localdate() + timedelta(days=4)).strftime("%Y%m%d")
    data = ics(space.doctor_box.address, space.patient_box.address)
    lines = [
        line for line in data.decode().split("\r\n") if not line.startswith(("DTSTART", "DTEND"))
    ]
    lines.insert(lines.index("SEQUENCE:0") + 1, f"DTSTART;VALUE=DATE:{day}")
    invite(space, "\r\n".join(lines).encode())
    appointment = Appointment.objects.get()
    assert appointment.all_day
    assert timezone.localtime(appointment.start).strftime("%Y%m%d %H:%M") == f"{day} 00:00"
    response = login(space.patient).get(reverse("patients:agenda_event_ics", args=[appointment.pk]))
    assert f"DTSTART;VALUE=DATE:{day}" in response.content.decode()


def test_the_conversation_links_to_the_appointment_and_says_its_answer(space: Space) -> None:
    message = invite(space)
    appointment = Appointment.objects.get()
    entry = Entry.objects.get(mailbox=space.patient_box, message=message)
    client = login(space.patient)
    page = client.get(reverse("patients:conversation", args=[entry.pk])).content.decode()
    assert "qui attend votre réponse" in page
    assert f"{reverse('patients:agenda')}#rdv-{appointment.pk}" in page
    answer(space, appointment, "ACCEPTED")
    page = client.get(reverse("patients:conversation", args=[entry.pk])).content.decode()
    assert "vous l&#x27;avez accepté" in page or "vous l'avez accepté" in page
