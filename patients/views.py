"""The patient space: conversations, reading, replying, "Mes échanges de données", preferences.

There is deliberately no view to start a conversation: a patient only answers.
Every id in a URL is resolved inside the patient's own box (404 otherwise).
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_protect
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts import services as account_services
from accounts.access import current_user, verified_required
from accounts.views.activation import activated
from accounts.views.email import ACTION, email_change_step
from mailboxes import selectors as mailbox_selectors
from mailboxes import services as mailbox_services
from mailboxes.views.attachments import SOURCE_PART, download_response, inline_response
from mailboxes.views.messages import PREVIEWABLE, _shown, is_held
from mssante.lib import mime
from patients import connected_services, selectors, selectors_agenda, services
from patients.access import acting_patient, is_guardian_view
from patients.forms import EmailActivationForm, PreferencesForm, ReplyForm
from patients.models import NotificationPreference


def _page(
    request: HttpRequest, template: str, context: dict[str, Any], **kwargs: Any
) -> HttpResponse:
    user = acting_patient(request)
    box = selectors.patient_box(user)
    full = {
        "box": box,
        "unread_total": selectors.unread_count(box) if box else 0,
        **context,
    }
    return render(request, template, full, **kwargs)


@verified_required("patient")
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Conversations grouped by professional or establishment, newest first, unread marked."""
    box = selectors.patient_box(acting_patient(request))
    groups = selectors.correspondents(box) if box else []
    return _page(request, "patients/home.html", {"groups": groups, "nav": "messages"})


def _conversation(
    request: HttpRequest,
    entry_id: int,
    *,
    form: ReplyForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    user = acting_patient(request)
    entry = selectors.get_entry(user, entry_id)
    box = entry.mailbox
    items = selectors.thread(entry)
    unseen = [e for e in items if not e.seen]
    if unseen:
        # Marks the deliveries read too: the professional sees when the patient read it.
        mailbox_services.set_flags(unseen, by=user, seen=True)
    shown = [_shown(e, remote_images=False, heading_base=2) for e in items]
    opened, closed = services.conversation_state(box, entry.message.thread_key)
    last_received = next(
        (e for e in reversed(items) if e.message.sender_mailbox_id != box.pk), entry
    )
    return _page(
        request,
        "patients/conversation.html",
        {
            "entry": entry,
            "items": shown,
            "subject": last_received.message.subject,
            "can_reply": opened and not closed,
            "closed": closed,
            "reply_to_entry": last_received,
            "appointments": selectors_agenda.of_messages(box, [e.message_id for e in items]),
            "form": form or ReplyForm(),
            "error": error,
            "nav": "messages",
        },
        status=status,
    )


@verified_required("patient")
@require_GET
def conversation_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    return _conversation(request, entry_id)


@verified_required("patient")
@require_POST
def reply_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The patient's answer; the service refuses it when the rules do (closed, not opened)."""
    user = acting_patient(request)
    entry = selectors.get_entry(user, entry_id)
    form = ReplyForm(request.POST)
    if not form.is_valid():
        return _conversation(request, entry_id, form=form, status=400)
    files = [
        mime.Attachment(f.name or "fichier", f.content_type or "application/octet-stream", f.read())
        for f in request.FILES.getlist("files")
    ]
    try:
        services.reply(
            mailbox=entry.mailbox,
            author=user,
            parent=entry.message,
            text=form.cleaned_data["text"],
            attachments=files,
            request=request,
        )
    except mailbox_services.SubmissionError as exc:
        return _conversation(request, entry_id, form=form, error=str(exc), status=400)
    messages.success(request, _("Votre réponse est envoyée."))
    return redirect(reverse("patients:conversation", args=[entry.pk]))


def _part(request: HttpRequest, entry_id: int, index: int) -> mime.Attachment:
    entry = selectors.get_entry(acting_patient(request), entry_id)
    if is_held(entry.message):
        # Quarantined by the antivirus: its files are not offered.
        raise Http404
    try:
        return mime.get_part(mailbox_services.read_raw(entry.message), index)
    except mime.PartNotFoundError:
        raise Http404 from None


@verified_required("patient")
@require_GET
def download_view(request: HttpRequest, entry_id: int, index: int) -> HttpResponse:
    part = _part(request, entry_id, index)
    return download_response(part.data, part.filename)


@verified_required("patient")
@require_GET
def source_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The message as received (.eml), offered when it cannot be shown here."""
    user = acting_patient(request)
    entry = selectors.get_entry(user, entry_id)
    if is_held(entry.message):
        raise Http404
    raw = mailbox_services.read_raw(entry.message)
    mailbox_services.record_download(entry, SOURCE_PART, by=user)
    return download_response(raw, "message.eml")


@verified_required("patient")
@require_GET
def preview_view(request: HttpRequest, entry_id: int, index: int) -> HttpResponse:
    """PDF and images shown in the browser, sandboxed like the professionals' preview."""
    part = _part(request, entry_id, index)
    content_type = part.content_type.lower()
    if content_type not in PREVIEWABLE or content_type == "text/plain":
        raise Http404
    return inline_response(part.data, content_type, part.filename)


@verified_required("patient")
@require_GET
def exchanges_view(request: HttpRequest) -> HttpResponse:
    """Mes échanges de données: who exchanged what kind of document about the patient, when."""
    user = acting_patient(request)
    box = selectors.patient_box(user)
    return _page(
        request,
        "patients/exchanges.html",
        {
            "exchanges": selectors.exchanges(user, box),
            "service_changes": connected_services.changes(box),
            "nav": "exchanges",
        },
    )


@verified_required("patient")
@require_http_methods(["GET", "POST"])
def preferences_view(request: HttpRequest) -> HttpResponse:
    """How often to be told a message waits, and the personal address (by confirmed link)."""
    user = acting_patient(request)
    # A guardian sets the child's notifications, not the child's personal address: it
    # receives the child's own activation at majority, and only staff record it.
    guardian_view = is_guardian_view(request)
    email_context: dict[str, Any] = {"guardian_view": guardian_view}
    if not guardian_view:
        email_step = email_change_step(request, user, page_url=reverse("patients:preferences"))
        if email_step.response is not None:
            return email_step.response
        email_context.update(email_step.context)
    pref = NotificationPreference.objects.filter(user=user).first()
    initial = {"frequency": pref.frequency if pref else NotificationPreference.Frequency.EACH}
    changing_frequency = request.method == "POST" and ACTION not in request.POST
    form = PreferencesForm(request.POST if changing_frequency else None, initial=initial)
    if changing_frequency and form.is_valid():
        services.update_preferences(user, frequency=form.cleaned_data["frequency"])
        messages.success(request, _("Vos préférences sont enregistrées."))
        return redirect("patients:preferences")
    return _page(
        request,
        "patients/preferences.html",
        {"form": form, "nav": "preferences", "account": user, **email_context},
        status=400 if request.method == "POST" else 200,
    )


# --- Professional side --------------------------------------------------------------------


@verified_required("professional")
@require_POST
def close_conversation_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """ "Clore la conversation": the patient(s) of this conversation can no longer reply."""
    user = current_user(request)
    # Closing speaks for the box: a reader gets 403, as for replying.
    entry = mailbox_selectors.get_entry(user, entry_id, mailbox_selectors.Access.SEND)
    threads = [
        t
        for t in selectors.patient_threads(entry)
        if services.took_part(entry.mailbox, t.box, entry.message.thread_key)
    ]
    if not threads:
        raise Http404
    with transaction.atomic():
        for item in threads:
            services.close_conversation(
                patient_box=item.box,
                thread_key=entry.message.thread_key,
                by=user,
                from_mailbox=entry.mailbox,
            )
    messages.success(request, _("La conversation est close : le patient ne peut plus y répondre."))
    return redirect(reverse("webmail_read", args=[entry.pk]))


# --- Activation with e-mailed codes -------------------------------------------------------


@never_cache
@csrf_protect
@require_http_methods(["GET", "POST"])
def activation_email_view(request: HttpRequest, token: str) -> HttpResponse:
    """A patient activates with a password and chooses codes sent by e-mail (no application)."""
    try:
        link = account_services.find_activation_link(token)
    except account_services.AccountError as exc:
        return render(request, "accounts/activation_invalid.html", {"reason": str(exc)}, status=410)
    user = link.user
    if not user.is_patient:
        raise Http404
    form = EmailActivationForm(request.POST or None, user=user)
    if request.method == "POST" and form.is_valid():
        try:
            enrolment = account_services.activate_with_email_codes(
                link, password=form.cleaned_data["password1"], request=request
            )
        except account_services.AccountError as exc:
            form.add_error(None, str(exc))
        else:
            return activated(request, enrolment)
    return render(
        request,
        "patients/activation_email.html",
        {"form": form, "activated_user": user, "token": token},
    )
