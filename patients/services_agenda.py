"""Mon agenda: every write of the patient's agenda, its export and its reminders.

An appointment comes from a calendar invitation (iTIP REQUEST, RFC 5546) in a message a
professional sent to the patient's box: ``record_invitation`` reads it with
``mailboxes.services.reading.invitation_of`` (bounded: a hostile or oversized part is not
an invitation) once the message is delivered. A later REQUEST with a higher SEQUENCE
moves it, a CANCEL cancels it, but only from the address that sent it first: the key is
(box, UID, sender), so another sender reusing the UID makes another appointment and
hijacks nothing. The patient's Accepté / Refusé is the webmail's own iTIP REPLY
(``reading.answer_invitation``), sent through the ordinary submission, so the patient
rules apply (only to the professional who wrote) and the professional's webmail shows
"X a accepté l'invitation".
"""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

import icalendar
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from audit import journal
from mailboxes.models import Entry, Mailbox, Message
from mailboxes.services import parse
from mailboxes.services import reading as mail_reading
from mssante.lib import invitations
from patients.agenda_rules import answering_appointment
from patients.models import NotificationPreference
from patients.models_agenda import Appointment
from patients.services import PatientError

if TYPE_CHECKING:
    from django.http import HttpRequest

log = logging.getLogger(__name__)

# The answers the agenda offers (the webmail also offers TENTATIVE to professionals).
ANSWERS = (Appointment.Answer.ACCEPTED, Appointment.Answer.DECLINED)
PRODID = "-//MSSante//Mon agenda//FR"


# --- Invitations received -------------------------------------------------------------------


def carries_calendar(message: Message) -> bool:
    """Whether the message lists a calendar part (read from its sealed attachment list)."""
    return any(
        str(a.get("content_type", "")).lower() in mail_reading.CALENDAR_TYPES
        for a in (message.attachments or [])
        if isinstance(a, dict)
    )


def _aware(value: datetime | date) -> datetime:
    if isinstance(value, datetime):
        return value if timezone.is_aware(value) else timezone.make_aware(value)
    # An all-day event starts at midnight, local time.
    return timezone.make_aware(datetime.combine(value, time.min))


def _apply(appointment: Appointment, invitation: invitations.Invitation, message: Message) -> None:
    assert invitation.start is not None
    appointment.message = message
    appointment.sequence = invitation.sequence
    appointment.summary = invitation.summary
    appointment.location = invitation.location
    appointment.organizer_name = invitation.organizer_name or message.from_name
    appointment.start = _aware(invitation.start)
    appointment.end = _aware(invitation.end) if invitation.end is not None else None
    appointment.all_day = invitation.all_day


def record_invitation(mailbox_id: int, message_id: int) -> Appointment | None:
    """Apply the invitation a message delivered to a patient box carries; idempotent.

    Returns the appointment created, moved or cancelled, or None when the message
    carries none (or an old one, or one from another sender than the appointment's).
    """
    entry = (
        Entry.objects.select_related("mailbox", "message", "message__sender_mailbox")
        .filter(mailbox_id=mailbox_id, message_id=message_id, mailbox__kind=Mailbox.Kind.PATIENT)
        .first()
    )
    if entry is None:
        return None
    box, message = entry.mailbox, entry.message
    sender_box = message.sender_mailbox
    if sender_box is not None and sender_box.kind == Mailbox.Kind.PATIENT:
        return None  # only professionals make appointments (the patient's own copy neither)
    if not carries_calendar(message):
        return None
    invitation = mail_reading.invitation_of(entry, parse(message))
    if invitation is None or not invitation.uid:
        return None
    organizer = message.from_addr.lower()[:254]
    uid = invitation.uid[:255]
    with transaction.atomic():
        appointment = (
            Appointment.objects.select_for_update()
            .filter(mailbox=box, uid=uid, organizer_address=organizer)
            .first()
        )
        if invitation.method == "REQUEST" and invitation.start is not None:
            if appointment is None:
                appointment = Appointment(mailbox=box, uid=uid, organizer_address=organizer)
                _apply(appointment, invitation, message)
                appointment.save()
                journal.record("patient.appointment_received", obj=box, appointment=appointment.pk)
                return appointment
            if message.pk == appointment.message_id or invitation.sequence <= appointment.sequence:
                return None  # the same one again, or older than what the agenda shows
            moved = _aware(invitation.start) != appointment.start
            _apply(appointment, invitation, message)
            # A new version needs a new answer, and its own reminder when it moved.
            appointment.answer = Appointment.Answer.PENDING
            appointment.answered_at = None
            appointment.cancelled = False
            if moved:
                appointment.reminded_at = None
            appointment.save()
            journal.record("patient.appointment_updated", obj=box, appointment=appointment.pk)
            return appointment
        if invitation.method == "CANCEL" and appointment is not None:
            if appointment.cancelled or invitation.sequence < appointment.sequence:
                return None
            appointment.cancelled = True
            appointment.message = message
            appointment.sequence = invitation.sequence
            appointment.save()
            journal.record("patient.appointment_cancelled", obj=box, appointment=appointment.pk)
            return appointment
    return None


def record_invitations(mailbox_id: int, message_ids: list[int]) -> int:
    """``record_invitation`` for each message; how many appointments changed."""
    return sum(record_invitation(mailbox_id, m) is not None for m in message_ids)


# --- The patient's answer -------------------------------------------------------------------


def answer(
    appointment: Appointment, choice: str, *, by: User, request: HttpRequest | None = None
) -> Message:
    """Accepté or Refusé: the iTIP REPLY to the professional, and the agenda updated.

    Allowed even in a conversation the professional closed (``agenda_rules``).
    """
    if choice not in ANSWERS:
        raise PatientError(_("Réponse inconnue."))
    with transaction.atomic():
        appointment = Appointment.objects.select_for_update().get(pk=appointment.pk)
        if appointment.cancelled:
            raise PatientError(_("Ce rendez-vous a été annulé : il n'y a plus rien à répondre."))
        if appointment.answer == choice:
            raise PatientError(_("Vous avez déjà donné cette réponse."))
        entry = (
            Entry.objects.select_related("mailbox", "message")
            .filter(mailbox=appointment.mailbox, message=appointment.message)
            .first()
        )
        if entry is None:
            raise PatientError(
                _(
                    "Le message de cette invitation n'est plus dans votre boîte : "
                    "répondez au professionnel par un message."
                )
            )
        with answering_appointment():
            reply = mail_reading.answer_invitation(entry, choice, by=by, request=request)
        appointment.answer = choice
        appointment.answered_at = timezone.now()
        appointment.save(update_fields=["answer", "answered_at", "updated_at"])
        journal.record(
            "patient.appointment_answered",
            actor=by,
            obj=appointment.mailbox,
            request=request,
            appointment=appointment.pk,
            answer=choice,
        )
    return reply


# --- Export ---------------------------------------------------------------------------------


def _when(value: datetime, all_day: bool) -> datetime | date:
    local = timezone.localtime(value)
    return local.date() if all_day else value.astimezone(UTC)


def _event(appointment: Appointment) -> icalendar.Event:
    event = icalendar.Event()
    event.add("uid", appointment.uid)
    event.add("sequence", appointment.sequence)
    event.add("dtstamp", appointment.updated_at.astimezone(UTC))
    event.add("dtstart", _when(appointment.start, appointment.all_day))
    if appointment.end is not None:
        event.add("dtend", _when(appointment.end, appointment.all_day))
    if appointment.summary:
        event.add("summary", appointment.summary)
    if appointment.location:
        event.add("location", appointment.location)
    organizer = icalendar.vCalAddress(f"mailto:{appointment.organizer_address}")
    if appointment.organizer_name:
        organizer.params["CN"] = icalendar.vText(appointment.organizer_name)
    event.add("organizer", organizer, encode=False)
    if appointment.cancelled:
        status = "CANCELLED"
    elif appointment.answer == Appointment.Answer.ACCEPTED:
        status = "CONFIRMED"
    else:
        status = "TENTATIVE"
    event.add("status", status)
    return event


def calendar_of(appointments: list[Appointment]) -> bytes:
    """An iCalendar file (METHOD:PUBLISH) of these appointments (nothing journaled)."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", _("Mon agenda santé"))
    for appointment in appointments:
        calendar.add_component(_event(appointment))
    return bytes(calendar.to_ical())


def export(appointments: list[Appointment], *, by: User, box: Mailbox) -> bytes:
    """An iCalendar file (METHOD:PUBLISH) of these appointments, for the patient's calendar."""
    journal.record("patient.agenda_exported", actor=by, obj=box, count=len(appointments))
    return calendar_of(appointments)


# --- Reminders ------------------------------------------------------------------------------


def reminder_text() -> tuple[str, str]:
    """The fixed subject and body: no professional, no place, no reason, ever."""
    subject = _("Rappel : vous avez bientôt un rendez-vous")
    body = render_to_string(
        "patients/emails/appointment_reminder.txt",
        {
            "url": settings.SITE_URL + reverse("patients:agenda"),
            "hours": settings.PATIENT_REMINDER_HOURS,
            "operator": settings.OPERATOR_NAME,
        },
    )
    return subject, body


def _remind(appointment_id: int, now: datetime) -> bool:
    with transaction.atomic():
        appointment = (
            Appointment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("mailbox__owner")
            .filter(pk=appointment_id, reminded_at__isnull=True, cancelled=False)
            .first()
        )
        if appointment is None:
            return False
        user = appointment.mailbox.owner
        if user is None or not user.email or not user.is_open:
            return False
        pref = NotificationPreference.objects.filter(user=user).first()
        if pref is not None and pref.frequency == NotificationPreference.Frequency.NEVER:
            return False
        subject, body = reminder_text()
        # Sent inside the transaction: if the mail server refuses, nothing is recorded and
        # the next run tries again; once recorded, never again for this appointment.
        send_mail(subject, body, None, [user.email], fail_silently=False)
        appointment.reminded_at = now
        appointment.save(update_fields=["reminded_at", "updated_at"])
        journal.record(
            "patient.appointment_reminded", obj=appointment.mailbox, appointment=appointment.pk
        )
    return True


def send_reminders(*, now: datetime | None = None) -> int:
    """E-mail each patient once per appointment starting within PATIENT_REMINDER_HOURS."""
    now = now or timezone.now()
    due = Appointment.objects.filter(
        start__gt=now,
        start__lte=now + timedelta(hours=settings.PATIENT_REMINDER_HOURS),
        reminded_at__isnull=True,
        cancelled=False,
        mailbox__status=Mailbox.Status.ACTIVE,
    ).exclude(answer=Appointment.Answer.DECLINED)
    sent = 0
    for appointment_id in due.values_list("pk", flat=True):
        try:
            sent += _remind(appointment_id, now)
        except Exception:
            # One refused address must not keep the others from their reminder.
            log.exception("appointment reminder %s failed", appointment_id)
    return sent
