"""The professional's view of a conversation with a patient, shown on the webmail's reading page.

Added to the page by ``PatientsConfig.ready`` (``mailboxes.hooks.add_reading_panel``):
mailboxes, below this app, does not know it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe

from mailboxes.models import Entry
from patients import selectors

if TYPE_CHECKING:
    from django.http import HttpRequest


def patient_thread(request: HttpRequest, entry: Entry, *, can_send: bool) -> SafeString:
    """Who the patient is, when they read what was sent, and "Clore la conversation".

    Closing speaks for the box: offered to those who may send from it, where the box
    itself wrote to the patient.
    """
    threads = selectors.patient_threads(entry)
    closable = can_send and any(t.deliveries and not t.closed for t in threads)
    # Rendered HTML, escaped by the template (nothing when there is no patient); the
    # request gives the closing form its CSRF token.
    return mark_safe(  # noqa: S308
        render_to_string(
            "patients/_pro_thread.html",
            {"entry": entry, "threads": threads, "closable": closable},
            request=request,
        )
    )
