"""The professional's view of a conversation with a patient, as one tag in the reading page."""

from __future__ import annotations

from typing import Any

from django import template

from mailboxes.models import Entry
from patients import selectors

register = template.Library()


@register.inclusion_tag("patients/_pro_thread.html")
def patient_thread(entry: Entry, can_send: bool = False) -> dict[str, Any]:
    """Who the patient is, when they read what was sent, and "Clore la conversation".

    Closing speaks for the box: offered to those who may send from it, where the box
    itself wrote to the patient.
    """
    threads = selectors.patient_threads(entry)
    closable = can_send and any(t.deliveries and not t.closed for t in threads)
    return {"entry": entry, "threads": threads, "closable": closable}
