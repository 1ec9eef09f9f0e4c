"""The reader's settings (read receipts, software access to their boxes) and their answer to a read receipt request."""

from __future__ import annotations

import time

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import match_token

from accounts.access import verified_required
from audit import journal
from mailboxes import selectors, services
from mailboxes.forms import ApiAgreementForm, PreferencesForm
from mailboxes.models import Mailbox
from mailboxes.transport import mdn
from mailboxes.views._common import current_user, render_webmail

# Wrong second-factor codes allowed on the agreement form per session and window: a
# session left open must not let someone try the million codes.
STEP_UP_TRIES = 5
STEP_UP_WINDOW = 15 * 60
_STEP_UP_KEY = "step_up_failures"


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
    return _preferences_page(request, form, status=status)


def _preferences_page(
    request: HttpRequest,
    form: PreferencesForm,
    *,
    api_form: ApiAgreementForm | None = None,
    api_box: Mailbox | None = None,
    status: int = 200,
) -> HttpResponse:
    user = current_user(request)
    mailbox = selectors.default_mailbox(user)
    if mailbox is None:
        return render(request, "mailboxes/home.html")
    boxes = selectors.holder_boxes(user)
    return render_webmail(
        request,
        "mailboxes/preferences.html",
        mailbox,
        {
            "form": form,
            "preferences_page": True,
            # "Accès d'un logiciel à ma boîte": one form per box the user holds.
            "api_boxes": [
                {
                    "box": box,
                    "form": api_form
                    if api_box is not None and api_box.pk == box.pk and api_form is not None
                    else ApiAgreementForm(auto_id=f"api{box.pk}-%s"),
                }
                for box in boxes
            ],
            "api_agreements": selectors.api_agreements(boxes),
        },
        status=status,
    )


def _second_factor(request: HttpRequest, code: str) -> str:
    """An empty string when ``code`` is the user's second factor now, else the French reason."""
    now = time.time()
    failures = [t for t in request.session.get(_STEP_UP_KEY, []) if now - t < STEP_UP_WINDOW]
    if len(failures) >= STEP_UP_TRIES:
        return _("Trop de codes erronés : réessayez dans quelques minutes.")
    user = current_user(request)
    if match_token(user, code.strip()) is not None:
        request.session.pop(_STEP_UP_KEY, None)
        return ""
    request.session[_STEP_UP_KEY] = [*failures, now]
    journal.record("account.step_up_refused", actor=user, obj=user, request=request)
    return _("Ce code n'est pas le bon : saisissez le code affiché par votre application.")


@verified_required("professional")
@require_POST
def api_agreement_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """The holder agrees that software may use their box through the API (second factor again)."""
    user = current_user(request)
    # The holder or the responsible alone: a delegate or a manager gets 403, others 404.
    box = selectors.get_mailbox(user, mailbox_id, selectors.Access.HOLDER)
    form = ApiAgreementForm(request.POST, auto_id=f"api{box.pk}-%s")
    preferences = PreferencesForm(initial={"read_receipts": services.receipt_mode(user)})
    if form.is_valid():
        error = _second_factor(request, form.cleaned_data["code"])
        if error:
            form.add_error("code", error)
    if not form.is_valid():
        return _preferences_page(request, preferences, api_form=form, api_box=box, status=400)
    try:
        services.record_api_agreement(
            box,
            by=user,
            scope=form.cleaned_data["scope"],
            software=form.cleaned_data["software"],
            request=request,
        )
    except services.TokenError as exc:
        form.add_error(None, str(exc))
        return _preferences_page(request, preferences, api_form=form, api_box=box, status=400)
    messages.success(
        request,
        _(
            "Votre accord est enregistré : l'équipe de l'opérateur peut maintenant remettre un "
            "jeton d'API pour %(address)s. Vous pouvez le retirer ici à tout moment."
        )
        % {"address": box.address},
    )
    return redirect(reverse("webmail_preferences") + "#acces-logiciel")


@verified_required("professional")
@require_POST
def api_agreement_withdraw_view(request: HttpRequest, agreement_id: int) -> HttpResponse:
    """The holder withdraws an agreement: the software's token stops working at once."""
    user = current_user(request)
    agreement = selectors.get_api_agreement(user, agreement_id)
    services.withdraw_api_agreement(agreement, by=user, request=request)
    messages.success(
        request,
        _("Accord retiré : le logiciel n'a plus accès à %(address)s.")
        % {"address": agreement.mailbox.address},
    )
    return redirect(reverse("webmail_preferences") + "#acces-logiciel")


@verified_required("professional")
@require_POST
def receipt_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The reader answers "Envoyer l'accusé de lecture" or "Ne pas envoyer"."""
    user = current_user(request)
    # A receipt leaves from the box: a reader gets 403, as for replying.
    entry = selectors.get_entry(user, entry_id, selectors.Access.SEND)
    send = request.POST.get("decision") == "send"
    if mdn.pending_receipts(entry):
        mdn.decide_receipts(entry, send=send, by=user)
        messages.success(
            request,
            _("Accusé de lecture envoyé.")
            if send
            else _("L'accusé de lecture ne sera pas envoyé."),
        )
    return redirect(reverse("webmail_read", args=[entry.pk]))
