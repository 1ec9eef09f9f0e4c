"""Mes données (/patient/mes-donnees/): download everything as one archive; close the space."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth import logout
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from accounts import lockout
from accounts.access import current_user, verified_required
from accounts.views.login import lockout_message, slowdown_message
from patients import archive, closing, selectors
from patients.access import acting_patient, is_guardian_view
from patients.forms_data import CloseSpaceForm
from patients.services import PatientError


def _page(request: HttpRequest, form: CloseSpaceForm, *, status: int = 200) -> HttpResponse:
    box = selectors.patient_box(acting_patient(request))
    return render(
        request,
        "patients/my_data.html",
        {
            "box": box,
            "unread_total": selectors.unread_count(box) if box else 0,
            "form": form,
            "nav": "my_data",
            "guardian_view": is_guardian_view(request),
            "retention_days": settings.PATIENT_CLOSED_RETENTION_DAYS,
        },
        status=status,
    )


@never_cache
@verified_required("patient")
@require_GET
def my_data_view(request: HttpRequest) -> HttpResponse:
    return _page(request, CloseSpaceForm())


@never_cache
@verified_required("patient")
@require_GET
def archive_view(request: HttpRequest) -> HttpResponse:
    """The archive (ZIP), built into a temporary file and streamed from it."""
    patient = acting_patient(request)
    data = archive.build_archive(patient, by=current_user(request), request=request)
    name = f"mon-espace-sante-{timezone.localdate():%Y-%m-%d}.zip"
    response = FileResponse(data, as_attachment=True, filename=name, content_type="application/zip")
    return response  # type: ignore[return-value]  # a streaming response, as downloads are


@never_cache
@verified_required("patient")
@require_http_methods(["POST"])
def close_view(request: HttpRequest) -> HttpResponse:
    """Close the space: the password again, the box, then the account; signed out."""
    user = current_user(request)
    form = CloseSpaceForm(request.POST)
    if is_guardian_view(request):
        # A minor's space is handed over at majority, never closed by a guardian: the
        # page says so in place of the form.
        return _page(request, form, status=403)
    # The password is checked under the same guessing bounds as at the login page.
    refusal = lockout.may_try(request, user)
    if refusal is not None:
        form.is_valid()
        form.add_error(
            None, slowdown_message(refusal.retry_at) if refusal.retry_at else lockout_message()
        )
        return _page(request, form, status=429)
    if not form.is_valid():
        lockout.refund_attempt(request, lockout.target_for(user))
        return _page(request, form, status=400)
    if not user.check_password(form.cleaned_data["password"]):
        lockout.wrong_secret(request, user)
        form.add_error("password", _("Mot de passe incorrect."))
        return _page(request, form, status=400)
    lockout.refund_attempt(request, lockout.target_for(user))
    try:
        closing.close_space(acting_patient(request), by=user, request=request)
    except PatientError as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=400)
    logout(request)
    return render(
        request,
        "patients/space_closed.html",
        {"retention_days": settings.PATIENT_CLOSED_RETENTION_DAYS},
    )
