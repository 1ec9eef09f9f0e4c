"""Calendar invitations (iCalendar, RFC 5545) read with bounds, and iTIP replies (RFC 5546).

A ``text/calendar`` part comes from anyone: it is read only when it is small, shallow and
well formed (``read`` returns None otherwise, and the part stays a plain attachment), and
only what a card shows is taken from it (what, when, where, who), each value cut short.
``build_reply`` writes the REPLY an attendee sends to the organiser.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Final

import icalendar

__all__ = [
    "ANSWERS",
    "MAX_ICS_BYTES",
    "Attendee",
    "Invitation",
    "build_reply",
    "read",
]

# A real invitation is a few kilobytes; Outlook's with time zones, about twenty.
MAX_ICS_BYTES: Final = 256 * 1024
# Components (BEGIN: lines) and their nesting: VCALENDAR > VEVENT > VALARM is 3 deep.
MAX_COMPONENTS: Final = 64
MAX_DEPTH: Final = 4
MAX_ATTENDEES: Final = 100
# Each value shown is cut there.
MAX_TEXT: Final = 500
# Dates outside these years are taken as malformed.
_YEARS: Final = (1900, 2200)
ANSWERS: Final = ("ACCEPTED", "TENTATIVE", "DECLINED")
_BEGIN_END_RE: Final = re.compile(rb"^(BEGIN|END):([A-Za-z-]+)\s*$", re.MULTILINE | re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Attendee:
    """One attendee: address, name and answer (PARTSTAT)."""

    address: str
    name: str
    answer: str


@dataclass(frozen=True, slots=True)
class Invitation:
    """What a card shows of an event: a request, a reply or a cancellation."""

    method: str  # REQUEST, REPLY, CANCEL…
    uid: str
    sequence: int
    summary: str
    start: datetime | date | None
    end: datetime | date | None
    location: str
    organizer: str
    organizer_name: str
    attendees: list[Attendee] = field(default_factory=list)

    @property
    def all_day(self) -> bool:
        return isinstance(self.start, date) and not isinstance(self.start, datetime)


def _shallow(data: bytes) -> bool:
    """At most MAX_COMPONENTS components nested at most MAX_DEPTH deep, balanced."""
    depth = 0
    count = 0
    for match in _BEGIN_END_RE.finditer(data):
        if match.group(1).upper() == b"BEGIN":
            depth += 1
            count += 1
            if depth > MAX_DEPTH or count > MAX_COMPONENTS:
                return False
        else:
            depth -= 1
            if depth < 0:
                return False
    return depth == 0 and count > 0


def _text(value: Any) -> str:
    if value is None:
        return ""
    text = str(value).replace("\r", " ").replace("\n", " ").strip()
    return text[:MAX_TEXT]


def _address(value: Any) -> str:
    text = _text(value)
    if text.lower().startswith("mailto:"):
        text = text[7:]
    return text.strip()[:254]


def _param(value: Any, name: str) -> str:
    params = getattr(value, "params", None)
    if not params:
        return ""
    return _text(params.get(name, ""))


def _when(component: Any, name: str) -> datetime | date | None:
    if name not in component:
        return None
    value = component.decoded(name)
    if isinstance(value, timedelta):
        return None
    if not isinstance(value, date):
        raise ValueError(f"{name}: not a date")
    if not _YEARS[0] <= value.year <= _YEARS[1]:
        raise ValueError(f"{name}: year out of range")
    return value


def read(data: bytes) -> Invitation | None:
    """The first event of an iCalendar object, or None when it is too big, deep or malformed."""
    if not data or len(data) > MAX_ICS_BYTES or not _shallow(data):
        return None
    try:
        calendar = icalendar.Calendar.from_ical(data)
        if calendar.name != "VCALENDAR":
            return None
        events = [c for c in calendar.subcomponents if c.name == "VEVENT"]
        if not events:
            return None
        event = events[0]
        start = _when(event, "DTSTART")
        end = _when(event, "DTEND")
        attendees_raw = event.get("ATTENDEE", [])
        if not isinstance(attendees_raw, list):
            attendees_raw = [attendees_raw]
        attendees = [
            Attendee(
                address=_address(a),
                name=_param(a, "CN"),
                answer=_param(a, "PARTSTAT").upper() or "NEEDS-ACTION",
            )
            for a in attendees_raw[:MAX_ATTENDEES]
        ]
        organizer = event.get("ORGANIZER")
        sequence_raw = event.get("SEQUENCE", 0)
        sequence = int(str(sequence_raw)) if str(sequence_raw).strip().isdigit() else 0
        return Invitation(
            method=_text(calendar.get("METHOD", "")).upper()[:20],
            uid=_text(event.get("UID", "")),
            sequence=min(sequence, 10**6),
            summary=_text(event.get("SUMMARY", "")),
            start=start,
            end=end,
            location=_text(event.get("LOCATION", "")),
            organizer=_address(organizer),
            organizer_name=_param(organizer, "CN"),
            attendees=attendees,
        )
    except Exception:
        return None


def build_reply(
    invitation: Invitation,
    *,
    attendee: str,
    attendee_name: str,
    answer: str,
    organizer: str,
    prodid: str,
    now: datetime | None = None,
) -> bytes:
    """The iTIP REPLY (RFC 5546 §3.2.3) of ``attendee`` to ``invitation``: ``answer`` is a PARTSTAT."""
    if answer not in ANSWERS:
        raise ValueError(f"unknown answer {answer!r}")
    calendar = icalendar.Calendar()
    calendar.add("prodid", prodid)
    calendar.add("version", "2.0")
    calendar.add("method", "REPLY")
    event = icalendar.Event()
    event.add("uid", invitation.uid)
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", (now or datetime.now(UTC)).astimezone(UTC))
    if invitation.start is not None:
        event.add("dtstart", invitation.start)
    if invitation.end is not None:
        event.add("dtend", invitation.end)
    if invitation.summary:
        event.add("summary", invitation.summary)
    event.add("organizer", icalendar.vCalAddress(f"mailto:{organizer}"))
    who = icalendar.vCalAddress(f"mailto:{attendee}")
    who.params["PARTSTAT"] = icalendar.vText(answer)
    if attendee_name:
        who.params["CN"] = icalendar.vText(attendee_name)
    event.add("attendee", who, encode=False)
    calendar.add_component(event)
    return bytes(calendar.to_ical())
