"""Mon agenda (/patient/agenda/): the appointments professionals sent, answered, exported.

Every id in a URL is resolved inside the acting patient's own box (404 otherwise);
answers are POST with CSRF and go through ``services_agenda.answer``.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import current_user, verified_required
from mailboxes import services as mailbox_services
from mssante.errors import storage_unavailable_text
from patients import selectors, selectors_agenda, services_agenda
from patients.access import acting_patient
from patients.services import PatientError


def _ics(data: bytes, filename: str) -> HttpResponse:
    response = HttpResponse(data, content_type="text/calendar; charset=utf-8")
    response["Content-Disposition"] = content_disposition_header(True, filename) or ""
    response["X-Content-Type-Options"] = "nosniff"
    return response


@verified_required("patient")
@require_GET
def agenda_view(request: HttpRequest) -> HttpResponse:
    """Upcoming appointments with Accepter / Refuser, then the past ones."""
    patient = acting_patient(request)
    box = selectors.patient_box(patient)
    return render(
        request,
        "patients/agenda.html",
        {
            "box": box,
            "unread_total": selectors.unread_count(box) if box else 0,
            "agenda": selectors_agenda.agenda(box),
            "nav": "agenda",
        },
    )


@verified_required("patient")
@require_POST
def answer_view(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """Accepter or Refuser: the iTIP REPLY goes to the professional who sent it."""
    patient = acting_patient(request)
    appointment = selectors_agenda.get_appointment(patient, appointment_id)
    choice = request.POST.get("answer", "")
    try:
        # The answer leaves the patient's box as theirs, even when a guardian gives it
        # (the guardian is journaled by the family's own event, as for a reply).
        services_agenda.answer(appointment, choice, by=patient, request=request)
    except (PatientError, mailbox_services.SubmissionError) as exc:
        messages.error(request, str(exc))
    except mailbox_services.BlobStoreUnavailable:
        messages.error(request, storage_unavailable_text())
    else:
        if choice == services_agenda.Appointment.Answer.ACCEPTED:
            messages.success(request, _("Rendez-vous accepté : le professionnel est prévenu."))
        else:
            messages.success(request, _("Rendez-vous refusé : le professionnel est prévenu."))
    return redirect(f"{reverse('patients:agenda')}#rdv-{appointment.pk}")


@verified_required("patient")
@require_GET
def appointment_ics_view(request: HttpRequest, appointment_id: int) -> HttpResponse:
    """One appointment as an .ics file, for the patient's own calendar."""
    patient = acting_patient(request)
    appointment = selectors_agenda.get_appointment(patient, appointment_id)
    data = services_agenda.export([appointment], by=current_user(request), box=appointment.mailbox)
    return _ics(data, "rendez-vous.ics")


@verified_required("patient")
@require_GET
def agenda_ics_view(request: HttpRequest) -> HttpResponse:
    """The whole agenda (declined appointments left out) as one .ics file."""
    patient = acting_patient(request)
    box = selectors.patient_box(patient)
    rows = [
        a
        for a in selectors_agenda.appointments(box)
        if a.answer != services_agenda.Appointment.Answer.DECLINED
    ]
    if box is None:
        return _ics(b"", "agenda.ics")
    return _ics(services_agenda.export(rows, by=current_user(request), box=box), "agenda.ics")
