"""Family (issue 17): the guardian switches between their own space and a child's."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import current_user, verified_required
from patients import family

SELF = "moi"


@verified_required("patient")
@require_POST
def switch_view(request: HttpRequest) -> HttpResponse:
    """Show the child's space (``profile`` = a link id of this guardian) or one's own (``moi``)."""
    guardian = current_user(request)
    profile = request.POST.get("profile", "")[:20]
    if profile == SELF:
        family.switch(request, guardian, None)
        messages.info(request, _("Vous êtes dans votre propre espace."))
        return redirect("patient_home")
    # At most 18 digits: a larger number is no link id (and SQLite could not compare it).
    ok = profile.isascii() and profile.isdigit() and len(profile) <= 18
    link_id = int(profile) if ok else None
    try:
        if link_id is None:
            raise family.FamilyError(_("Vous ne pouvez pas consulter cet espace."))
        family.switch(request, guardian, link_id)
    except family.FamilyError as exc:
        # Nothing changes: the space shown stays the one before (own, or a child's still valid).
        messages.error(request, str(exc))
        return redirect("patient_home")
    # The page's header now says whose space it is ("Vous consultez l'espace de …").
    return redirect("patient_home")
