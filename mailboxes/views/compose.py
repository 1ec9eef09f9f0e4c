"""Writing: new message, reply, reply-all, forward, drafts saved as the user types, sending."""

from __future__ import annotations

import html
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from django.conf import settings
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import strip_tags
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import verified_required
from mailboxes import preferences_selectors as prefs
from mailboxes import selectors, services
from mailboxes.forms import ComposeForm, join_addresses
from mailboxes.models import Draft, Entry, Folder, Mailbox, Message
from mailboxes.views._common import current_user, folder_url, render_webmail
from mailboxes.views.attachments import download_response
from mssante.errors import RETRY_AFTER_SECONDS, storage_unavailable_text
from mssante.lib import mime, xdm

REPLY_MODES = ("reply", "reply_all", "forward")


def _is_async(request: HttpRequest) -> bool:
    """True for htmx and our upload script: they want a fragment, not a page."""
    return bool(getattr(request, "htmx", False)) or (
        request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


def draft_url(draft: Draft) -> str:
    return reverse("webmail_draft", args=[draft.pk])


def _links(draft: Draft) -> tuple[Message | None, Message | None]:
    """The messages this draft answers or forwards, kept across saves."""
    content = services.open_draft(draft)
    ids = [i for i in (content.in_reply_to_id, content.forward_of_id) if i]
    found = {m.pk: m for m in Message.objects.filter(pk__in=ids)} if ids else {}
    reply = found.get(content.in_reply_to_id) if content.in_reply_to_id else None
    forward = found.get(content.forward_of_id) if content.forward_of_id else None
    return reply, forward


def _typed(request: HttpRequest, form: ComposeForm) -> dict[str, Any]:
    """What the compose form says, as save_draft takes it."""
    html = form.cleaned_data.get("html", "") if request.POST.get("format") == "html" else ""
    text = form.cleaned_data.get("text", "")
    clean = services.clean_compose_html(html) if html else None
    if clean is not None:
        # The text alternative is made from the sanitised HTML, never taken from the page.
        text = html_to_text(clean)
    return {
        "to": form.addresses("to"),
        "cc": form.addresses("cc"),
        "bcc": form.addresses("bcc"),
        "subject": form.cleaned_data.get("subject", ""),
        "text": text,
        "html": clean,
        # The checkbox is part of the compose form: absent means unchecked.
        "read_receipt": request.POST.get("read_receipt") == "1",
    }


def _save(request: HttpRequest, draft: Draft, form: ComposeForm) -> Draft:
    # save_draft keeps what the draft answers or forwards: only the typed fields go in.
    return services.save_draft(
        mailbox=draft.mailbox, author=current_user(request), draft=draft, **_typed(request, form)
    )


_BLOCK_RE = re.compile(
    r"</?(p|div|ul|ol|h[1-6]|blockquote|tr|table)(\s[^>]*)?>|<br\s*/?>", re.IGNORECASE
)
_LIST_ITEM_RE = re.compile(r"<li(\s[^>]*)?>", re.IGNORECASE)
_BLANK_LINES_RE = re.compile(r"\n{2,}")


def html_to_text(clean: str) -> str:
    """A plain-text alternative of sanitised compose HTML (a line per block, "- " per item)."""
    text = _LIST_ITEM_RE.sub("\n- ", _BLOCK_RE.sub("\n", clean))
    lines = [html.unescape(strip_tags(line)).rstrip() for line in text.split("\n")]
    # Nested blocks (a <div> holding a <ul>) make one line break, not several.
    return _BLANK_LINES_RE.sub("\n", "\n".join(lines)).strip() + "\n"


# Drafts sent from this session: a late autosave of one gets a harmless answer.
_SENT_KEY = "webmail_sent_drafts"
_SENT_KEPT = 50


def _remember_sent(request: HttpRequest, draft_id: int, compose_key: str) -> None:
    sent = [v for v in request.session.get(_SENT_KEY, []) if isinstance(v, str)]
    sent += [f"d{draft_id}"] + ([f"k{compose_key}"] if compose_key else [])
    request.session[_SENT_KEY] = sent[-_SENT_KEPT:]


def _was_sent(request: HttpRequest, *, draft_id: int = 0, compose_key: str = "") -> bool:
    sent = request.session.get(_SENT_KEY, [])
    if draft_id and f"d{draft_id}" in sent:
        return True
    # A compose page's key is recorded with its message: the database says it for sure.
    return bool(compose_key) and services.compose_was_sent(current_user(request), compose_key)


def _already_sent() -> HttpResponse:
    # 200, not 404: the page's last autosave raced its own Send; nothing to report.
    response = HttpResponse(_("Ce message a déjà été envoyé."), content_type="text/plain")
    response["HX-Reswap"] = "none"
    return response


def _draft_urls(draft: Draft) -> dict[str, str]:
    return {
        "page": draft_url(draft),
        "save": reverse("webmail_draft_save", args=[draft.pk]),
        "send": reverse("webmail_draft_send", args=[draft.pk]),
        "keep": draft_url(draft),
        "upload": reverse("webmail_draft_upload", args=[draft.pk]),
        "delete": reverse("webmail_draft_delete", args=[draft.pk]),
        "xdm": reverse("webmail_draft_xdm", args=[draft.pk]),
    }


def _new_urls(mailbox: Mailbox) -> dict[str, str]:
    args = [mailbox.pk]
    return {
        "page": reverse("webmail_compose", args=args),
        "save": reverse("webmail_compose_save", args=args),
        "send": reverse("webmail_compose_send", args=args),
        "keep": reverse("webmail_compose_keep", args=args),
        "upload": reverse("webmail_compose_upload", args=args),
        "delete": "",
        "xdm": "",
    }


def _compose_page(
    request: HttpRequest,
    draft: Draft | None,
    form: ComposeForm,
    *,
    new: NewCompose | None = None,
    error: str = "",
    upload_error: str = "",
    status: int = 200,
) -> HttpResponse:
    if draft is not None:
        mailbox = draft.mailbox
        in_reply_to, forward_of = _links(draft)
        content = services.open_draft(draft)
        recipients = content.to + content.cc + content.bcc
        receipt, html_body = content.read_receipt, content.html
        headers = (
            content.headers if draft.files.filter(filename__iexact=xdm.FILENAME).exists() else {}
        )
        urls = _draft_urls(draft)
        forwarded: list[dict[str, Any]] = []
    else:
        assert new is not None
        mailbox = new.mailbox
        source = new.source.message if new.source is not None else None
        in_reply_to = source if new.mode in ("reply", "reply_all") else None
        forward_of = source if new.mode == "forward" else None
        recipients = form.addresses("to") + form.addresses("cc") if form.is_bound else []
        receipt = request.POST.get("read_receipt") == "1"
        html_body = None
        headers = {}
        urls = _new_urls(mailbox)
        # Forwarding carries the message's files: listed now, copied when the draft is made.
        forwarded = [
            {"filename": a.get("filename", ""), "size": mime.human_size(int(a.get("size") or 0))}
            for a in ((forward_of.attachments or []) if forward_of is not None else [])
        ]
    return render_webmail(
        request,
        "mailboxes/compose.html",
        mailbox,
        {
            "draft": draft,
            "new": new,
            "urls": urls,
            "form": form,
            "files": _files(draft) if draft is not None else [],
            "forwarded": forwarded,
            "in_reply_to": in_reply_to,
            "forward_of": forward_of,
            "error": error,
            "upload_error": upload_error,
            "max_attachments": settings.MESSAGE_MAX_ATTACHMENTS,
            # Writing to a patient: who they are, and "the patient cannot reply".
            "patient_recipients": selectors.patients_among(recipients),
            "patient_no_reply": request.POST.get("patient_no_reply") == "1",
            "read_receipt": receipt,
            "rich": bool(html_body) or request.POST.get("format") == "html",
            # Shown in the editor: what was stored, or what was posted, sanitised either way.
            "html_body": html_body
            or (services.clean_compose_html(form.data.get("html", "")) if form.is_bound else None)
            or "",
            # "Joindre au dossier du patient": the headers of the attached IHE_XDM.ZIP, if any.
            "xdm_headers": headers,
        },
        current_folder=selectors.system_folder(mailbox, Folder.Role.DRAFTS),
        status=status,
    )


def _files(draft: Draft) -> list[dict[str, Any]]:
    return [{"file": f, "size": mime.human_size(f.size)} for f in draft.files.all().order_by("pk")]


# --------------------------------------------------------------------------- starting


@dataclass(slots=True)
class NewCompose:
    """A compose page with no draft yet: its box, what it answers, its key."""

    mailbox: Mailbox
    source: Entry | None
    mode: str
    key: str


def _new_compose(request: HttpRequest, mailbox_id: int, data: Any) -> NewCompose:
    """Who writes from which box, and what they answer (``source``, ``mode``); else 404."""
    user = current_user(request)
    mailbox = selectors.get_mailbox(user, mailbox_id, selectors.Access.SEND)
    source = None
    mode = data.get("mode", "")
    raw_source = str(data.get("source", "") or "")
    if raw_source:
        if not raw_source.isdigit() or len(raw_source) > 18:
            raise Http404
        source = selectors.get_entry(user, int(raw_source), selectors.Access.SEND)
        if source.mailbox_id != mailbox.pk:
            # Answering from a box a message of another box: never (no reading through it).
            raise Http404
        if mode not in REPLY_MODES:
            mode = "reply"
        if mode != "forward" and selectors.is_no_reply(source.message):
            # The platform's no-reply address reads nothing: only forwarding is offered.
            raise Http404
    else:
        mode = ""
    key = str(data.get("compose_key", "") or "")
    if not _COMPOSE_KEY_RE.fullmatch(key):
        key = secrets.token_urlsafe(16)
    return NewCompose(mailbox, source, mode, key)


_COMPOSE_KEY_RE = re.compile(r"[A-Za-z0-9_-]{16,32}")


@verified_required("professional")
@require_http_methods(["GET", "POST"])
def compose_new_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """A new message: nothing is stored until something is typed or a file attached."""
    if request.method == "POST":
        # The "Écrire un message" button (a form): a page to show, nothing to write.
        selectors.get_mailbox(current_user(request), mailbox_id, selectors.Access.SEND)
        return redirect(reverse("webmail_compose", args=[mailbox_id]))
    new = _new_compose(request, mailbox_id, request.GET)
    initial = _prefill(new) if new.source is not None else {}
    if new.mode != "forward":
        # The user's signature for this box: at the end of a new message, above the quoted
        # text of a reply (issue 14, prefs). Shown, not stored: no draft until one types.
        signature = prefs.signature_for(current_user(request), new.mailbox)
        initial["text"] = prefs.signed(initial.get("text", ""), signature)
    return _compose_page(request, None, ComposeForm(initial=initial), new=new)


def _prefill(new: NewCompose) -> dict[str, str]:
    """The recipients, subject and quoted text of a reply or a forward."""
    assert new.source is not None
    entry, mode = new.source, new.mode
    message = entry.message
    parsed = services.parse(message)
    body = _plain_body(parsed)
    if mode == "forward":
        header = "\n".join(
            [
                _("-------- Message transféré --------"),
                _("De : %(who)s") % {"who": _author(message)},
                _("Date : %(when)s") % {"when": _when(message)},
                _("Objet : %(subject)s") % {"subject": message.subject},
                _("À : %(to)s") % {"to": join_addresses(message.to_addrs)},
            ]
        )
        return {
            "subject": _prefixed("Tr :", message.subject, ("tr:", "fw:", "fwd:")),
            "text": f"\n\n{header}\n\n{body}",
        }
    to, cc = _reply_recipients(entry, parsed, everyone=(mode == "reply_all"))
    intro = _("%(when)s, %(who)s a écrit :") % {"when": _when(message), "who": _author(message)}
    return {
        "to": join_addresses(to),
        "cc": join_addresses(cc),
        "subject": _prefixed("Re :", message.subject, ("re:",)),
        "text": f"\n\n{intro[:1].upper()}{intro[1:]}\n{_quote(body)}\n",
    }


def _create(
    request: HttpRequest, new: NewCompose, form: ComposeForm, *, force: bool
) -> Draft | None:
    """The draft of a new compose page, made now if something was typed (or ``force``)."""
    user = current_user(request)
    typed = _typed(request, form)
    existing = services.compose_draft(user, new.mailbox, new.key)
    if existing is not None:
        return services.save_draft(mailbox=new.mailbox, author=user, draft=existing, **typed)
    content = services.DraftContent(
        to=typed["to"],
        cc=typed["cc"],
        subject=typed["subject"],
        text=typed["text"],
        in_reply_to_id=None,
        forward_of_id=None,
        bcc=typed["bcc"],
        html=typed["html"],
    )
    if content.is_empty() and not force:
        return None
    source = new.source.message if new.source is not None else None
    return services.save_draft(
        mailbox=new.mailbox,
        author=user,
        draft=None,
        compose_key=new.key,
        in_reply_to=source if new.mode in ("reply", "reply_all") else None,
        forward_of=source if new.mode == "forward" else None,
        **typed,
    )


def _created_trigger(response: HttpResponse, draft: Draft) -> HttpResponse:
    # The page learns its draft's addresses (static/js/compose.js): delete, XDM, reload.
    response["HX-Trigger"] = json.dumps({"draftCreated": _draft_urls(draft)})
    response["X-Draft-Page"] = draft_url(draft)
    return response


@verified_required("professional")
@require_POST
def compose_save_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Autosave of a new compose page: the draft is made by the first save with content."""
    new = _new_compose(request, mailbox_id, request.POST)
    if _was_sent(request, compose_key=new.key):
        return _already_sent()
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return render(request, "mailboxes/_draft_status.html", {"failed": True}, status=400)
    try:
        draft = _create(request, new, form, force=False)
    except services.DraftError as exc:
        return render(
            request, "mailboxes/_draft_status.html", {"failed": True, "error": str(exc)}, status=400
        )
    except Draft.DoesNotExist:
        return _already_sent()
    if draft is None:
        # Nothing typed yet: nothing stored.
        return HttpResponse(status=204)
    return _created_trigger(_save_answer(request, form, draft), draft)


@verified_required("professional")
@require_POST
def compose_keep_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """ "Enregistrer le brouillon" without JavaScript, or on the way to the XDM page."""
    new = _new_compose(request, mailbox_id, request.POST)
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return _compose_page(request, None, form, new=new, status=400)
    to_xdm = request.POST.get("next") == "xdm"
    try:
        draft = _create(request, new, form, force=to_xdm)
    except services.DraftError as exc:
        return _compose_page(request, None, form, new=new, error=str(exc), status=400)
    except Draft.DoesNotExist:
        raise Http404 from None
    if draft is None:
        messages.info(request, _("Le message est vide : aucun brouillon n'a été enregistré."))
        return redirect(reverse("webmail_compose", args=[new.mailbox.pk]))
    if to_xdm:
        return redirect(reverse("webmail_draft_xdm", args=[draft.pk]))
    messages.success(request, _("Brouillon enregistré."))
    return redirect(draft_url(draft))


@verified_required("professional")
@require_POST
def compose_send_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Send from a new compose page (its draft, made now if no autosave made it)."""
    new = _new_compose(request, mailbox_id, request.POST)
    if _was_sent(request, compose_key=new.key):
        messages.info(request, _("Ce message a déjà été envoyé."))
        return _after_send(new.mailbox)
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return _compose_page(request, None, form, new=new, status=400)
    try:
        draft = _create(request, new, form, force=False)
    except services.DraftError as exc:
        return _compose_page(request, None, form, new=new, error=str(exc), status=400)
    except Draft.DoesNotExist:
        messages.info(request, _("Ce message a déjà été envoyé."))
        return _after_send(new.mailbox)
    if draft is None:
        # Nothing stored for an empty page: the same refusal as the service's.
        return _compose_page(
            request, None, form, new=new, error=_("Indiquez au moins un destinataire."), status=400
        )
    return _send(request, draft, form)


@verified_required("professional")
@require_POST
def compose_upload_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """Files added on a new compose page: the draft is made with them."""
    new = _new_compose(request, mailbox_id, request.POST)
    if not request.FILES.getlist("files"):
        error = _("Choisissez au moins un fichier.")
        if _is_async(request):
            return render(
                request,
                "mailboxes/_draft_files.html",
                {"draft": None, "files": [], "upload_error": error},
                status=400,
            )
        messages.error(request, error)
        return redirect(reverse("webmail_compose", args=[new.mailbox.pk]))
    # The files go to the page's draft, made now if needed.
    draft = services.compose_draft(current_user(request), new.mailbox, new.key)
    try:
        if draft is None:
            # The page's script sends what was typed with the first files (none without it).
            form = ComposeForm(request.POST)
            if not form.is_valid():
                form = ComposeForm({})
                form.is_valid()
            draft = _create(request, new, form, force=True)
    except services.DraftError as exc:
        messages.error(request, str(exc))
        return redirect(reverse("webmail_compose", args=[new.mailbox.pk]))
    assert draft is not None
    response = _upload(request, draft)
    return _created_trigger(response, draft) if _is_async(request) else response


def _quote(text: str) -> str:
    return "\n".join(("> " + line) if line else ">" for line in text.splitlines())


def _plain_body(parsed: mime.ParsedMessage) -> str:
    if parsed.text is not None:
        return parsed.text
    if parsed.html:
        return html.unescape(strip_tags(parsed.html))
    return ""


def _prefixed(prefix: str, subject: str, known: tuple[str, ...]) -> str:
    """Subject with a reply or forward prefix, not stacked on one already there."""
    if subject.lower().replace(" ", "").startswith(known):
        return subject
    return f"{prefix} {subject}".strip()


def _reply_recipients(
    entry: Entry, parsed: mime.ParsedMessage, everyone: bool
) -> tuple[list[str], list[str]]:
    own = entry.mailbox.address.lower()
    message = entry.message
    if message.sender_mailbox_id == entry.mailbox_id:
        # Answering one's own sent message means writing again to its recipients.
        to = list(message.to_addrs or [])
    else:
        reply_to = [addr for _name, addr in parsed.reply_to]
        to = reply_to or [message.from_addr]
    cc = list(message.cc_addrs or []) if everyone else []
    if everyone and message.sender_mailbox_id != entry.mailbox_id:
        to += list(message.to_addrs or [])
    seen: set[str] = set()

    def unique(values: list[str]) -> list[str]:
        out = []
        for value in values:
            key = value.lower()
            if key and key != own and key not in seen:
                seen.add(key)
                out.append(value)
        return out

    to = unique(to)
    return to, unique(cc)


def _when(message: Message) -> str:
    local = timezone.localtime(message.date)
    return _("le %(date)s à %(time)s") % {
        "date": local.strftime("%d/%m/%Y"),
        "time": local.strftime("%H:%M"),
    }


def _author(message: Message) -> str:
    return f"{message.from_name} <{message.from_addr}>" if message.from_name else message.from_addr


@verified_required("professional")
@require_POST
def reply_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Répondre, Répondre à tous, Transférer: a compose page, no draft until something is typed."""
    entry = selectors.get_entry(current_user(request), entry_id, selectors.Access.SEND)
    mode = request.POST.get("mode", "reply")
    if mode not in REPLY_MODES:
        mode = "reply"
    if mode != "forward" and selectors.is_no_reply(entry.message):
        messages.error(
            request,
            _(
                "Ce message vient d'une adresse qui ne reçoit pas de réponse : transférez-le si besoin."
            ),
        )
        return redirect(reverse("webmail_read", args=[entry.pk]))
    query = urlencode({"source": entry.pk, "mode": mode})
    return redirect(f"{reverse('webmail_compose', args=[entry.mailbox_id])}?{query}")


# --------------------------------------------------------------------------- drafts


def _initial(draft: Draft) -> dict[str, str]:
    content = services.open_draft(draft)
    return {
        "to": join_addresses(content.to),
        "cc": join_addresses(content.cc),
        "bcc": join_addresses(content.bcc),
        "subject": content.subject,
        "text": content.text,
    }


@verified_required("professional")
@require_http_methods(["GET", "POST"])
def draft_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    """The compose page of a draft; a plain POST (no JavaScript) saves it."""
    draft = selectors.get_draft(current_user(request), draft_id)
    if request.method == "POST":
        form = ComposeForm(request.POST)
        if form.is_valid():
            try:
                draft = _save(request, draft, form)
            except Draft.DoesNotExist:
                raise Http404 from None  # sent or deleted meanwhile
            messages.success(request, _("Brouillon enregistré."))
            return redirect(draft_url(draft))
        return _compose_page(request, draft, form, status=400)
    return _compose_page(request, draft, ComposeForm(initial=_initial(draft)))


@verified_required("professional")
@require_POST
def draft_save_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    """Autosave, from htmx while typing and from sendBeacon when the page is left."""
    try:
        draft = selectors.get_draft(current_user(request), draft_id)
    except Http404:
        if _was_sent(request, draft_id=draft_id):
            return _already_sent()
        raise
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return render(request, "mailboxes/_draft_status.html", {"failed": True}, status=400)
    try:
        _save(request, draft, form)
    except Draft.DoesNotExist:
        # Sent meanwhile: the page's last autosave came too late. Nothing to save, no error.
        return _already_sent()
    return _save_answer(request, form, draft)


def _save_answer(request: HttpRequest, form: ComposeForm, draft: Draft) -> HttpResponse:
    if not _is_async(request):
        # sendBeacon ignores the answer; keep it empty.
        return HttpResponse(status=204)
    return render(
        request,
        "mailboxes/_draft_status.html",
        {
            "saved_at": timezone.localtime(timezone.now()),
            # The patient panel follows the recipients as they are typed (htmx out of band).
            "oob": True,
            "patient_recipients": selectors.patients_among(
                form.addresses("to") + form.addresses("cc") + form.addresses("bcc")
            ),
            "patient_no_reply": request.POST.get("patient_no_reply") == "1",
        },
    )


def _send_headers(request: HttpRequest, draft: Draft) -> dict[str, str]:
    headers = {}
    if request.POST.get("patient_no_reply") == "1":
        # "Le patient ne peut pas répondre" (DOMAIN.md: X-MSS-MES: FIN to a patient).
        headers["X-MSS-MES"] = "FIN"
    if services.open_draft(draft).read_receipt:
        # "Demander un accusé de lecture" (RFC 8098): receipts come back to the sending box.
        headers["Disposition-Notification-To"] = f"<{draft.mailbox.address}>"
    return headers


@verified_required("professional")
@require_POST
def draft_send_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    user = current_user(request)
    try:
        draft = selectors.get_draft(user, draft_id)
    except Http404:
        if _was_sent(request, draft_id=draft_id):
            messages.info(request, _("Ce message a déjà été envoyé."))
            return redirect(reverse("webmail_home"))
        raise
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return _compose_page(request, draft, form, status=400)
    return _send(request, draft, form)


def _after_send(mailbox: Mailbox) -> HttpResponse:
    sent = selectors.system_folder(mailbox, Folder.Role.SENT)
    return redirect(folder_url(sent) if sent else reverse("webmail_home"))


def _send(request: HttpRequest, draft: Draft, form: ComposeForm) -> HttpResponse:
    user = current_user(request)
    mailbox = draft.mailbox
    try:
        # Saved first: a refused message stays a draft with everything the user typed.
        draft = _save(request, draft, form)
        services.send_draft(
            draft,
            by=user,
            request=request,
            extra_headers=_send_headers(request, draft) or None,
        )
    except Draft.DoesNotExist:
        # Sent by an earlier click, or a try whose answer was lost: never sent twice.
        messages.info(request, _("Ce message a déjà été envoyé."))
        return _after_send(mailbox)
    except services.SubmissionError as exc:
        # The draft exists now (it has content): the page becomes its page.
        return _compose_page(request, draft, form, error=str(exc), status=400)
    except services.BlobStoreUnavailable:
        # A temporary failure: the draft keeps everything, nothing was sent.
        response = _compose_page(request, draft, form, error=storage_unavailable_text(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    _remember_sent(request, draft.pk, draft.compose_key)
    messages.success(request, _("Message envoyé."))
    return _after_send(mailbox)


@verified_required("professional")
@require_POST
def draft_delete_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    user = current_user(request)
    draft = selectors.get_draft(user, draft_id)
    mailbox = draft.mailbox
    services.delete_draft(draft, by=user)
    messages.success(request, _("Brouillon supprimé."))
    drafts = selectors.system_folder(mailbox, Folder.Role.DRAFTS)
    return redirect(folder_url(drafts) if drafts else reverse("webmail_home"))


@verified_required("professional")
@require_POST
def draft_upload_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    """Files added to a draft; the page's script shows the upload's progress."""
    return _upload(request, selectors.get_draft(current_user(request), draft_id))


def _upload(request: HttpRequest, draft: Draft) -> HttpResponse:
    user = current_user(request)
    error = ""
    status = 400
    uploads = request.FILES.getlist("files")
    if not uploads:
        error = _("Choisissez au moins un fichier.")
    for upload in uploads:
        try:
            services.add_draft_attachment(
                draft,
                upload.name or "fichier",
                upload.content_type or "application/octet-stream",
                upload.read(),
                by=user,
            )
        except services.DraftError as exc:
            error = str(exc)
            break
        except services.BlobStoreUnavailable:
            error, status = storage_unavailable_text(), 503
            break
    if _is_async(request):
        return render(
            request,
            "mailboxes/_draft_files.html",
            {"draft": draft, "files": _files(draft), "upload_error": error},
            status=status if error else 200,
        )
    if error:
        messages.error(request, error)
    return redirect(draft_url(draft))


@verified_required("professional")
@require_POST
def draft_attachment_delete_view(
    request: HttpRequest, draft_id: int, attachment_id: int
) -> HttpResponse:
    user = current_user(request)
    att = selectors.get_draft_attachment(user, draft_id, attachment_id)
    draft = att.draft
    services.remove_draft_attachment(att, by=user)
    if _is_async(request):
        return render(
            request, "mailboxes/_draft_files.html", {"draft": draft, "files": _files(draft)}
        )
    return redirect(draft_url(draft))


@verified_required("professional")
@require_GET
def draft_attachment_view(request: HttpRequest, draft_id: int, attachment_id: int) -> HttpResponse:
    att = selectors.get_draft_attachment(current_user(request), draft_id, attachment_id)
    return download_response(services.read_draft_attachment(att), att.filename)
