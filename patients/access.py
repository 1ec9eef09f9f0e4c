"""Whose patient space a request shows.

Every view of the patient space asks ``acting_patient(request)`` for the patient whose
space it reads or changes, never ``current_user`` directly: a parent or legal guardian
signed in with their own account may act in their minor child's space (issue 17,
"Family"), and this one function decides which profile the request acts for.

The session holds only the id of the link the guardian switched to (``family.switch``);
it is checked again on every request (link still active and the guardian's, child still
minor). When it no longer holds, the guardian is back in their own space and told so.
A request made in the child's space is journaled with the guardian as actor.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest
from django.utils.translation import gettext as _

from accounts.access import current_user
from accounts.models import User
from patients import family
from patients.models_family import GuardianLink

# Decided once per request (views ask more than once: the page, its header).
_CACHE = "_acting_patient"
_LINK_CACHE = "_acting_link"


def acting_patient(request: HttpRequest) -> User:
    """The patient whose space this request shows: the signed-in patient, or their child."""
    cached = getattr(request, _CACHE, None)
    if cached is not None:
        return cached
    user = current_user(request)
    acting = user
    link = acting_link(request)
    if link is not None:
        acting = link.child.user
        family.record_guardian_access(request, user, link)
    setattr(request, _CACHE, acting)
    return acting


def acting_link(request: HttpRequest) -> GuardianLink | None:
    """The link the guardian switched to, if it still holds; else back to their own space."""
    if hasattr(request, _LINK_CACHE):
        return getattr(request, _LINK_CACHE)
    link = _check_link(request)
    setattr(request, _LINK_CACHE, link)
    return link


def _check_link(request: HttpRequest) -> GuardianLink | None:
    session = getattr(request, "session", None)
    if session is None or family.SESSION_KEY not in session:
        return None
    user = current_user(request)
    link_id = session.get(family.SESSION_KEY)
    link = family.usable_link(user, link_id)
    if link is None:
        session.pop(family.SESSION_KEY, None)
        messages.warning(
            request,
            _(
                "Vous ne pouvez plus consulter cet espace (rattachement terminé) : "
                "voici de nouveau votre propre espace."
            ),
        )
    return link


def is_guardian_view(request: HttpRequest) -> bool:
    """Whether this request shows a child's space to their guardian."""
    return acting_patient(request).pk != current_user(request).pk
