"""The reader's settings (read receipts, signature, out-of-office reply, rules, software access
to their boxes) and their answer to a read receipt request."""

from __future__ import annotations

import time
from datetime import timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import match_token

from accounts.access import verified_required
from audit import journal
from mailboxes import preferences_selectors as prefs
from mailboxes import selectors, services
from mailboxes.forms import ApiAgreementForm, PreferencesForm
from mailboxes.models import Mailbox
from mailboxes.preferences_forms import AutoReplyForm, RuleForm, SignatureForm
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
    """The "Préférences" page: read receipts, and for the box chosen its signature,
    out-of-office reply and rules."""
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


def _receipts_form(request: HttpRequest) -> PreferencesForm:
    return PreferencesForm(initial={"read_receipts": services.receipt_mode(current_user(request))})


def _chosen_box(request: HttpRequest) -> Mailbox | None:
    """The box whose settings are shown: ``?boite=<id>`` among the user's, else their own."""
    user = current_user(request)
    raw = request.GET.get("boite", "")
    if raw.isdigit() and len(raw) < 12:
        return selectors.get_mailbox(user, int(raw))
    return selectors.default_mailbox(user)


def _box_url(box: Mailbox, anchor: str) -> str:
    return f"{reverse('webmail_preferences')}?boite={box.pk}#{anchor}"


def _preferences_page(
    request: HttpRequest,
    form: PreferencesForm,
    *,
    api_form: ApiAgreementForm | None = None,
    api_box: Mailbox | None = None,
    box: Mailbox | None = None,
    signature_form: SignatureForm | None = None,
    auto_form: AutoReplyForm | None = None,
    rule_form: RuleForm | None = None,
    status: int = 200,
) -> HttpResponse:
    user = current_user(request)
    mailbox = selectors.default_mailbox(user)
    if mailbox is None:
        return render(request, "mailboxes/home.html")
    box = box or _chosen_box(request) or mailbox
    boxes = selectors.holder_boxes(user)
    level = selectors.access(user, box) or 0
    can_send = level >= selectors.Access.SEND
    can_manage = level >= selectors.Access.MANAGE and box.kind != Mailbox.Kind.APPLICATIVE
    reply = prefs.auto_reply_of(box)
    if auto_form is None and can_manage:
        today = timezone.localdate()
        auto_form = AutoReplyForm(
            initial={
                "enabled": reply.enabled,
                "start": reply.start,
                "end": reply.end,
                "text": reply.text,
                "professionals_only": reply.professionals_only,
                "interval_days": reply.interval_days,
            }
            if reply is not None
            else {"start": today, "end": today + timedelta(days=7), "interval_days": 4}
        )
    folders = prefs.rule_folders(box)
    return render_webmail(
        request,
        "mailboxes/preferences.html",
        mailbox,
        {
            "form": form,
            "preferences_page": True,
            "box": box,
            "boxes": list(selectors.accessible_mailboxes(user).order_by("address")),
            "can_send": can_send,
            "can_manage": can_manage,
            "signature_form": signature_form
            or SignatureForm(initial={"text": prefs.signature_for(user, box)}),
            "auto_form": auto_form,
            "auto_reply": reply,
            "auto_reply_active": reply is not None and reply.is_active(),
            "rules": prefs.rules_of(box) if can_manage else [],
            "rule_form": rule_form or RuleForm(folders=folders),
            # "Accès d'un logiciel à ma boîte": one form per box the user holds.
            "api_boxes": [
                {
                    "box": holder_box,
                    "form": api_form
                    if api_box is not None and api_box.pk == holder_box.pk and api_form is not None
                    else ApiAgreementForm(auto_id=f"api{holder_box.pk}-%s"),
                }
                for holder_box in boxes
            ],
            "api_agreements": selectors.api_agreements(boxes),
            "mail_alert": prefs.mail_alert_on(user),
        },
        status=status,
    )


@verified_required("professional")
@require_POST
def mail_alert_view(request: HttpRequest) -> HttpResponse:
    """Switch the new-mail alert to the personal address on or off."""
    user = current_user(request)
    enabled = request.POST.get("alert") == "1"
    try:
        services.set_mail_alert(user, enabled=enabled, request=request)
    except services.PreferencesError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("webmail_preferences") + "#alerte")
    messages.success(
        request,
        _("Alerte activée : un courriel sans contenu, au plus une fois par heure.")
        if enabled
        else _("Alerte désactivée."),
    )
    return redirect(reverse("webmail_preferences") + "#alerte")


@verified_required("professional")
@require_POST
def signature_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Record the user's signature for a box they may send from."""
    user = current_user(request)
    box = selectors.get_mailbox(user, mailbox_id, selectors.Access.SEND)
    form = SignatureForm(request.POST)
    if form.is_valid():
        try:
            services.set_signature(user, box, form.cleaned_data["text"], request=request)
        except services.PreferencesError as exc:
            form.add_error("text", str(exc))
    if not form.is_valid():
        return _preferences_page(
            request, _receipts_form(request), box=box, signature_form=form, status=400
        )
    messages.success(request, _("Signature enregistrée."))
    return redirect(_box_url(box, "signature"))


@verified_required("professional")
@require_POST
def auto_reply_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Record the out-of-office reply of a box the user manages."""
    user = current_user(request)
    box = selectors.get_mailbox(user, mailbox_id, selectors.Access.MANAGE)
    form = AutoReplyForm(request.POST)
    if form.is_valid():
        data = form.cleaned_data
        try:
            reply = services.set_auto_reply(
                box,
                by=user,
                enabled=data["enabled"],
                start=data["start"],
                end=data["end"],
                text=data["text"],
                professionals_only=data["professionals_only"],
                interval_days=data["interval_days"],
                request=request,
            )
        except services.PreferencesError as exc:
            form.add_error(None, str(exc))
    if not form.is_valid():
        return _preferences_page(
            request, _receipts_form(request), box=box, auto_form=form, status=400
        )
    if reply.enabled:
        messages.success(
            request,
            _("Réponse automatique activée du %(start)s au %(end)s.")
            % {"start": date_format(reply.start), "end": date_format(reply.end)},
        )
    else:
        messages.success(request, _("Réponse automatique désactivée."))
    return redirect(_box_url(box, "absence"))


@verified_required("professional")
@require_POST
def rule_add_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Add a rule at the end of a box's rules."""
    user = current_user(request)
    box = selectors.get_mailbox(user, mailbox_id, selectors.Access.MANAGE)
    form = RuleForm(request.POST, folders=prefs.rule_folders(box))
    if form.is_valid():
        data = form.cleaned_data
        try:
            services.add_rule(
                box,
                by=user,
                condition=data["condition"],
                value=data["value"],
                action=data["action"],
                folder_id=data["folder"],
                request=request,
            )
        except services.PreferencesError as exc:
            form.add_error(None, str(exc))
    if not form.is_valid():
        return _preferences_page(
            request, _receipts_form(request), box=box, rule_form=form, status=400
        )
    messages.success(request, _("Règle ajoutée."))
    return redirect(_box_url(box, "regles"))


@verified_required("professional")
@require_POST
def rule_move_view(request: HttpRequest, mailbox_id: int, rule_id: int) -> HttpResponse:
    """Move a rule up or down in the order rules apply in."""
    user = current_user(request)
    rule = prefs.get_rule(user, mailbox_id, rule_id)
    services.move_rule(rule, by=user, up=request.POST.get("direction") != "down", request=request)
    messages.success(request, _("Ordre des règles enregistré."))
    return redirect(_box_url(rule.mailbox, "regles"))


@verified_required("professional")
@require_POST
def rule_delete_view(request: HttpRequest, mailbox_id: int, rule_id: int) -> HttpResponse:
    """Delete a rule."""
    user = current_user(request)
    rule = prefs.get_rule(user, mailbox_id, rule_id)
    services.delete_rule(rule, by=user, request=request)
    messages.success(request, _("Règle supprimée."))
    return redirect(_box_url(rule.mailbox, "regles"))


@verified_required("professional")
@require_POST
def rules_apply_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Apply a box's rules to the messages already in its inbox."""
    user = current_user(request)
    box = selectors.get_mailbox(user, mailbox_id, selectors.Access.MANAGE)
    changed = services.apply_rules_to_inbox(box, by=user)
    messages.success(
        request,
        ngettext(
            "Règles appliquées : %(count)d message traité.",
            "Règles appliquées : %(count)d messages traités.",
            changed,
        )
        % {"count": changed},
    )
    return redirect(_box_url(box, "regles"))


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
