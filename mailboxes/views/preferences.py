"""The reader's settings (read receipts) and their answer to a read receipt request."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST

from mailboxes import selectors, services
from mailboxes.forms import PreferencesForm
from mailboxes.transport import mdn
from mailboxes.views._common import current_user, render_webmail
from mssante.access import verified_required


@verified_required("professional")
@require_http_methods(["GET", "POST"])
def preferences_view(request: HttpRequest) -> HttpResponse:
    """The "Préférences" page: read receipts automatic (default) or on request."""
    user = current_user(request)
    if request.method == "POST":
        form = PreferencesForm(request.POST)
        if form.is_valid():
            services.set_receipt_mode(user, form.cleaned_data["read_receipts"])
            messages.success(request, _("Préférences enregistrées."))
            return redirect(reverse("webmail_preferences"))
        status = 400
    else:
        form = PreferencesForm(initial={"read_receipts": services.receipt_mode(user)})
        status = 200
    mailbox = selectors.default_mailbox(user)
    if mailbox is None:
        return render(request, "mailboxes/home.html")
    return render_webmail(
        request,
        "mailboxes/preferences.html",
        mailbox,
        {"form": form, "preferences_page": True},
        status=status,
    )


@verified_required("professional")
@require_POST
def receipt_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The reader answers "Envoyer l'accusé de lecture" or "Ne pas envoyer"."""
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    send = request.POST.get("decision") == "send"
    if mdn.pending_receipts(entry):
        mdn.decide_receipts(entry, send=send)
        messages.success(
            request,
            _("Accusé de lecture envoyé.")
            if send
            else _("L'accusé de lecture ne sera pas envoyé."),
        )
    return redirect(reverse("webmail_read", args=[entry.pk]))
