"""Whose patient space a request shows.

Every view of the patient space asks ``acting_patient(request)`` for the patient whose
space it reads or changes, never ``current_user`` directly: a parent or legal guardian
signed in with their own account may act in their minor child's space (issue 17,
"Family"), and this one function decides which profile the request acts for.
"""

from __future__ import annotations

from django.http import HttpRequest

from accounts.access import current_user
from accounts.models import User


def acting_patient(request: HttpRequest) -> User:
    """The patient whose space this request shows (today: the signed-in patient)."""
    return current_user(request)
