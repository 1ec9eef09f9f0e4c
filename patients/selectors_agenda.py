"""Mon agenda: the reads of the patient's agenda, always inside the patient's own box."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.http import Http404
from django.utils import timezone

from accounts.models import User
from mailboxes.models import Entry, Folder, Mailbox
from patients.models_agenda import Appointment


def get_appointment(patient: User, appointment_id: int) -> Appointment:
    """An appointment of the patient's own box, or 404 (another patient's does not exist)."""
    appointment = (
        Appointment.objects.select_related("mailbox", "message")
        .filter(pk=appointment_id, mailbox__owner=patient, mailbox__kind=Mailbox.Kind.PATIENT)
        .first()
    )
    if appointment is None:
        raise Http404
    return appointment


def appointments(box: Mailbox | None) -> list[Appointment]:
    """Every appointment of the box, soonest first (times are in clear: ordered in SQL)."""
    if box is None:
        return []
    return list(Appointment.objects.filter(mailbox=box).order_by("start", "pk"))


@dataclass
class Agenda:
    upcoming: list[Appointment]
    past: list[Appointment]


def agenda(box: Mailbox | None, *, now: datetime | None = None) -> Agenda:
    """Upcoming appointments (not over yet) soonest first, past ones latest first."""
    now = now or timezone.now()
    rows = appointments(box)
    upcoming = [a for a in rows if (a.end or a.start) >= now]
    past = [a for a in reversed(rows) if (a.end or a.start) < now]
    by_message = dict(
        Entry.objects.filter(mailbox=box, message_id__in=[a.message_id for a in rows])
        .exclude(folder__role=Folder.Role.TRASH)
        .values_list("message_id", "pk")
    )
    for a in rows:
        # The entry of its message in the box: a link to the conversation.
        a.conversation_entry = by_message.get(a.message_id)  # type: ignore[attr-defined]
    return Agenda(upcoming, past)


def of_messages(box: Mailbox, message_ids: list[int]) -> list[Appointment]:
    """The appointments these messages of the box brought (a conversation links to them)."""
    return list(
        Appointment.objects.filter(mailbox=box, message_id__in=message_ids).order_by("start")
    )
