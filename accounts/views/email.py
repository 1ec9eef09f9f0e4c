"""Changing the personal address: a fresh code, then a link sent to the new address.

The personal address receives login codes (patients' choice) and every notice, so
changing it is changing a factor: the holder gives a fresh one-time code, the new
address is applied only when the link sent to it is followed, and the old address
is told. Patients do it from their preferences page, others from /compte/adresse-e-mail/.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_http_methods

from accounts import lockout, services
from accounts.access import current_user, verified_required
from accounts.forms import EmailChangeForm
from accounts.models import EmailChange, User
from accounts.views.login import (
    code_sending_message,
    lockout_message,
    masked_address,
    slowdown_message,
)
from audit import journal

ACTION = "email_action"


@dataclass
class EmailStep:
    """What the page shows for the address, or the response that ends the request."""

    form: EmailChangeForm
    response: HttpResponse | None = None
    context: dict[str, Any] = field(default_factory=dict)


def email_change_step(request: HttpRequest, user: User, *, page_url: str) -> EmailStep:
    """Handle the address part of a page (its forms post ``email_action``)."""
    action = request.POST.get(ACTION, "") if request.method == "POST" else ""
    form = EmailChangeForm(request.POST if action == "change" else None, user=user)
    device = services.email_device(user)
    pending = (
        EmailChange.objects.filter(
            user=user, used_at=None, cancelled_at=None, expires_at__gt=timezone.now()
        )
        .order_by("-created_at")
        .first()
    )
    context: dict[str, Any] = {
        "email_form": form,
        "email_pending": pending,
        "email_code_hint": masked_address(user.email) if device is not None else "",
        "email_action": ACTION,
    }
    if action == "send_code" and device is not None:
        sending = services.send_login_code(device)
        if sending.sent:
            messages.info(
                request,
                _("Un code vous a été envoyé à votre adresse actuelle %(address)s.")
                % {"address": masked_address(user.email)},
            )
        else:
            messages.warning(request, code_sending_message(sending))
        return EmailStep(form, redirect(page_url), context)
    if action == "change" and form.is_valid():
        verdict = lockout.verify_code(request, user, form.cleaned_data["code"])
        if verdict.device is None:
            journal.record("account.code_refused", actor=user, obj=user, request=request)
            if verdict.locked:
                form.add_error("code", lockout_message())
            elif verdict.retry_at is not None:
                form.add_error("code", slowdown_message(verdict.retry_at))
            else:
                form.add_error("code", _("Code incorrect ou déjà utilisé."))
            return EmailStep(form, None, context)
        try:
            services.request_email_change(
                user, form.cleaned_data["new_email"], by=user, request=request
            )
        except services.AccountError as exc:
            form.add_error("new_email", str(exc))
            return EmailStep(form, None, context)
        messages.success(
            request,
            _(
                "Un lien de confirmation a été envoyé à %(address)s. Votre adresse changera "
                "lorsque vous l'aurez suivi ; d'ici là, rien ne change."
            )
            % {"address": form.cleaned_data["new_email"]},
        )
        return EmailStep(form, redirect(page_url), context)
    return EmailStep(form, None, context)


@never_cache
@csrf_protect
@verified_required()
@require_http_methods(["GET", "POST"])
def email_change_view(request: HttpRequest) -> HttpResponse:
    """The personal address of a professional or staff member."""
    user = current_user(request)
    step = email_change_step(request, user, page_url=request.path)
    if step.response is not None:
        return step.response
    status = 400 if request.method == "POST" else 200
    return render(
        request, "accounts/email_change.html", {"account": user, **step.context}, status=status
    )


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def email_confirm_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link sent to the new address: a button (a mail scanner's GET changes nothing)."""
    try:
        change = services.find_email_change(token)
    except services.AccountError as exc:
        return render(request, "accounts/activation_invalid.html", {"reason": str(exc)}, status=410)
    if request.method == "POST":
        try:
            services.confirm_email_change(token, request=request)
        except services.AccountError as exc:
            return render(
                request, "accounts/activation_invalid.html", {"reason": str(exc)}, status=410
            )
        return render(request, "accounts/email_confirmed.html", {"address": change.new_email})
    return render(request, "accounts/email_confirm.html", {"change": change})
