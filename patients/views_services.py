"""Services connectés (/patient/services/): the applications that may write to the patient.

The patient allows or revokes each; the choice is enforced by a rule of the submission
(``patients.connected_services.check_submission``), not by this page.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import current_user, verified_required
from patients import connected_services, selectors
from patients.access import acting_patient


@verified_required("patient")
@require_GET
def services_view(request: HttpRequest) -> HttpResponse:
    """The catalogue of applications, each allowed or revoked."""
    box = selectors.patient_box(acting_patient(request))
    return render(
        request,
        "patients/services.html",
        {
            "box": box,
            "unread_total": selectors.unread_count(box) if box else 0,
            "services": connected_services.catalogue(box) if box else [],
            "nav": "services",
        },
    )


@verified_required("patient")
@require_POST
def service_change_view(request: HttpRequest, service_id: int) -> HttpResponse:
    """Allow (``allow=1``) or revoke (``allow=0``) one application of the catalogue."""
    box = selectors.patient_box(acting_patient(request))
    if box is None:
        raise Http404
    service = connected_services.get_service(box, service_id)
    choice = request.POST.get("allow", "")
    if choice not in ("0", "1"):
        messages.error(request, _("Choix inconnu : rien n'a changé."))
        return redirect("patients:services")
    allowed = choice == "1"
    connected_services.set_allowed(
        box, service, allowed=allowed, by=current_user(request), request=request
    )
    name = service.display_name or service.address
    if allowed:
        messages.success(request, _("« %(name)s » peut de nouveau vous écrire.") % {"name": name})
    else:
        messages.success(
            request,
            _("« %(name)s » ne peut plus vous écrire : ses messages seront refusés.")
            % {"name": name},
        )
    return redirect("patients:services")
