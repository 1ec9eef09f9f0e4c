"""``{% family_switcher %}``: the profile switcher of the patient space's header."""

from __future__ import annotations

from typing import Any

from django import template

from accounts.access import current_user, is_verified
from patients import family
from patients.access import acting_link
from patients.views_family import SELF

register = template.Library()


@register.inclusion_tag("patients/_family_switcher.html", takes_context=True)
def family_switcher(context: dict[str, Any]) -> dict[str, Any]:
    """The guardian's profiles (their own, each minor child's) and which one is shown."""
    request = context.get("request")
    if request is None or not is_verified(request.user):
        return {"links": []}
    guardian = current_user(request)
    link = acting_link(request)
    links = family.children_of(guardian)
    return {
        "links": links,
        "acting": link,
        "guardian": guardian,
        "self_value": SELF,
        "csrf_token": context.get("csrf_token"),
    }
