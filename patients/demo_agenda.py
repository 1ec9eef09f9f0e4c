"""Mon agenda in the demo: the invitation Dr Martin sends the demo patient (mssante.demo_mail).

Built with icalendar as a practice's calendar would send it (iTIP REQUEST, RFC 5546);
not answered, so that the demo patient can accept it and the doctor see her answer.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import icalendar
from django.utils import timezone

from mssante.lib import mime

UID = "rdv-suivi-durand@cabinet-martin.hopital-demo.mssante.fr"
SUBJECT = "Rendez-vous de suivi le {when}"
TEXT = (
    "Bonjour Madame Durand,\n\n"
    "Comme convenu, je vous propose un rendez-vous de suivi pour refaire le point sur votre "
    "cholestérol. Vous pouvez l'accepter ou le refuser depuis votre espace santé "
    "(Mon agenda).\n\nBien cordialement,\n\nDr Claire Martin"
)


def start(now: datetime) -> datetime:
    """Five days after the seeding, at 9:30 local time."""
    local = timezone.localtime(now) + timedelta(days=5)
    return local.replace(hour=9, minute=30, second=0, microsecond=0)


def invitation(*, organizer: str, organizer_name: str, attendee: str, at: datetime) -> bytes:
    """The iCalendar REQUEST for the demo appointment at ``at``."""
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Cabinet du Dr Martin//Agenda//FR")
    calendar.add("version", "2.0")
    calendar.add("method", "REQUEST")
    event = icalendar.Event()
    event.add("uid", UID)
    event.add("sequence", 0)
    event.add("dtstamp", datetime.now(UTC))
    event.add("dtstart", at.astimezone(UTC))
    event.add("dtend", (at + timedelta(minutes=30)).astimezone(UTC))
    event.add("summary", "Consultation de suivi — bilan lipidique")
    event.add("location", "Cabinet du Dr Martin, 12 rue de la Santé, 75014 Paris")
    who = icalendar.vCalAddress(f"mailto:{organizer}")
    who.params["CN"] = icalendar.vText(organizer_name)
    event.add("organizer", who, encode=False)
    guest = icalendar.vCalAddress(f"mailto:{attendee}")
    guest.params["PARTSTAT"] = icalendar.vText("NEEDS-ACTION")
    guest.params["RSVP"] = icalendar.vText("TRUE")
    event.add("attendee", guest, encode=False)
    calendar.add_component(event)
    return bytes(calendar.to_ical())


def attachment(
    *, organizer: str, organizer_name: str, attendee: str, at: datetime
) -> mime.Attachment:
    data = invitation(organizer=organizer, organizer_name=organizer_name, attendee=attendee, at=at)
    return mime.Attachment("invitation.ics", "text/calendar", data)
