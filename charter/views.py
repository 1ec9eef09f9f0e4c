"""Charter views for users (thin: parse, authorise, call a service, render)."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_POST

from accounts.access import current_user, verified_required
from charter import inactivity, services
from mailboxes import selectors


class ReportForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Pourquoi ce message est-il indésirable ?"),
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 3}),
    )


@verified_required("professional")
@require_POST
def report_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """ "Signaler un courrier indésirable" on a received message."""
    user = current_user(request)
    # Confined to the user's own mailboxes: someone else's entry is a 404.
    entry = selectors.get_entry(user, entry_id)
    back = reverse("webmail_read", args=[entry.pk])
    form = ReportForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Indiquez en quelques mots pourquoi ce message est indésirable."))
        return redirect(back)
    try:
        services.report_abuse(
            message=entry.message,
            mailbox=entry.mailbox,
            reporter=user,
            reason=form.cleaned_data["reason"],
            request=request,
        )
    except services.CharterError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    messages.success(
        request,
        _(
            "Merci : votre signalement a été transmis à l'équipe de l'opérateur, "
            "qui l'examinera et pourra sanctionner l'expéditeur."
        ),
    )
    return redirect(back)


@require_http_methods(["GET", "POST"])
def inactivity_objection_view(request: HttpRequest, token: str) -> HttpResponse:
    """The link of the inactivity warning: the holder objects to the closure of their box."""
    try:
        warning = inactivity.warning_from_token(token)
    except inactivity.InactivityError as exc:
        return render(request, "charter/inactivity_objection.html", {"error": str(exc)}, status=404)
    context: dict[str, Any] = {"warning": warning, "mailbox": warning.mailbox}
    if request.method == "POST":
        try:
            inactivity.object_to_closure(warning, request=request)
        except inactivity.InactivityError as exc:
            context["error"] = str(exc)
            return render(request, "charter/inactivity_objection.html", context, status=409)
        context["done"] = True
    elif warning.objected_at is not None:
        context["done"] = True
    return render(request, "charter/inactivity_objection.html", context)
