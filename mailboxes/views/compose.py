"""Writing: new message, reply, reply-all, forward, drafts saved as the user types, sending."""

from __future__ import annotations

import html
from typing import Any

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
from accounts.models import PatientIdentity
from mailboxes import preferences_selectors as prefs
from mailboxes import selectors, services
from mailboxes.forms import ComposeForm, XdmForm, join_addresses
from mailboxes.models import Draft, Entry, Folder, Message
from mailboxes.services.structured import XML_TYPES
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


def _draft_url(draft: Draft) -> str:
    return reverse("webmail_draft", args=[draft.pk])


def _links(draft: Draft) -> tuple[Message | None, Message | None]:
    """The messages this draft answers or forwards, kept across saves."""
    content = services.open_draft(draft)
    ids = [i for i in (content.in_reply_to_id, content.forward_of_id) if i]
    found = {m.pk: m for m in Message.objects.filter(pk__in=ids)} if ids else {}
    reply = found.get(content.in_reply_to_id) if content.in_reply_to_id else None
    forward = found.get(content.forward_of_id) if content.forward_of_id else None
    return reply, forward


def _save(request: HttpRequest, draft: Draft, form: ComposeForm) -> Draft:
    # save_draft keeps what the draft answers or forwards: only the typed fields go in.
    return services.save_draft(
        mailbox=draft.mailbox,
        author=current_user(request),
        draft=draft,
        to=form.addresses("to"),
        cc=form.addresses("cc"),
        subject=form.cleaned_data.get("subject", ""),
        text=form.cleaned_data.get("text", ""),
        # The checkbox is part of the compose form: absent means unchecked.
        read_receipt=request.POST.get("read_receipt") == "1",
    )


def _compose_page(
    request: HttpRequest,
    draft: Draft,
    form: ComposeForm,
    *,
    error: str = "",
    upload_error: str = "",
    status: int = 200,
) -> HttpResponse:
    in_reply_to, forward_of = _links(draft)
    content = services.open_draft(draft)
    return render_webmail(
        request,
        "mailboxes/compose.html",
        draft.mailbox,
        {
            "draft": draft,
            "form": form,
            "files": _files(draft),
            "in_reply_to": in_reply_to,
            "forward_of": forward_of,
            "error": error,
            "upload_error": upload_error,
            "max_attachments": settings.MESSAGE_MAX_ATTACHMENTS,
            # Writing to a patient: who they are, and "the patient cannot reply".
            "patient_recipients": selectors.patients_among(content.to + content.cc),
            "patient_no_reply": request.POST.get("patient_no_reply") == "1",
            "read_receipt": content.read_receipt,
            # "Joindre au dossier du patient": the headers of the attached IHE_XDM.ZIP, if any.
            "xdm_headers": content.headers
            if draft.files.filter(filename__iexact=xdm.FILENAME).exists()
            else {},
        },
        current_folder=selectors.system_folder(draft.mailbox, Folder.Role.DRAFTS),
        status=status,
    )


def _files(draft: Draft) -> list[dict[str, Any]]:
    return [{"file": f, "size": mime.human_size(f.size)} for f in draft.files.all().order_by("pk")]


# --------------------------------------------------------------------------- starting


@verified_required("professional")
@require_POST
def compose_new_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    user = current_user(request)
    mailbox = selectors.get_mailbox(user, mailbox_id, selectors.Access.SEND)
    draft = services.save_draft(
        mailbox=mailbox,
        author=user,
        draft=None,
        to=[],
        cc=[],
        subject="",
        # The user's signature for this box at the end of a new message (issue 14, prefs).
        text=prefs.signed("", prefs.signature_for(user, mailbox)),
    )
    return redirect(_draft_url(draft))


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
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id, selectors.Access.SEND)
    mode = request.POST.get("mode", "reply")
    if mode not in REPLY_MODES:
        mode = "reply"
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
        try:
            draft = services.save_draft(
                mailbox=entry.mailbox,
                author=user,
                draft=None,
                to=[],
                cc=[],
                subject=_prefixed("Tr :", message.subject, ("tr:", "fw:", "fwd:")),
                text=f"\n\n{header}\n\n{body}",
                # save_draft copies the forwarded message's attachments into the new draft.
                forward_of=message,
            )
        except services.DraftError as exc:
            messages.error(request, str(exc))
            return redirect(reverse("webmail_read", args=[entry.pk]))
    else:
        to, cc = _reply_recipients(entry, parsed, everyone=(mode == "reply_all"))
        intro = _("%(when)s, %(who)s a écrit :") % {"when": _when(message), "who": _author(message)}
        draft = services.save_draft(
            mailbox=entry.mailbox,
            author=user,
            draft=None,
            to=to,
            cc=cc,
            subject=_prefixed("Re :", message.subject, ("re:",)),
            # The signature above the quoted text (issue 14, prefs).
            text=prefs.signed(
                f"\n\n{intro[:1].upper()}{intro[1:]}\n{_quote(body)}\n",
                prefs.signature_for(user, entry.mailbox),
            ),
            in_reply_to=message,
        )
    return redirect(_draft_url(draft))


# --------------------------------------------------------------------------- drafts


def _initial(draft: Draft) -> dict[str, str]:
    content = services.open_draft(draft)
    return {
        "to": join_addresses(content.to),
        "cc": join_addresses(content.cc),
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
            return redirect(_draft_url(draft))
        return _compose_page(request, draft, form, status=400)
    return _compose_page(request, draft, ComposeForm(initial=_initial(draft)))


@verified_required("professional")
@require_POST
def draft_save_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    """Autosave, from htmx while typing and from sendBeacon when the page is left."""
    draft = selectors.get_draft(current_user(request), draft_id)
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return render(request, "mailboxes/_draft_status.html", {"failed": True}, status=400)
    try:
        _save(request, draft, form)
    except Draft.DoesNotExist:
        raise Http404 from None  # sent meanwhile: the page's last autosave comes too late
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
                form.addresses("to") + form.addresses("cc")
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
    draft = selectors.get_draft(user, draft_id)
    form = ComposeForm(request.POST)
    if not form.is_valid():
        return _compose_page(request, draft, form, status=400)
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
        sent = selectors.system_folder(mailbox, Folder.Role.SENT)
        return redirect(folder_url(sent) if sent else reverse("webmail_home"))
    except services.SubmissionError as exc:
        return _compose_page(request, draft, form, error=str(exc), status=400)
    except services.BlobStoreUnavailable:
        # A temporary failure: the draft keeps everything, nothing was sent.
        response = _compose_page(request, draft, form, error=storage_unavailable_text(), status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return response
    messages.success(request, _("Message envoyé."))
    sent = selectors.system_folder(mailbox, Folder.Role.SENT)
    return redirect(folder_url(sent) if sent else reverse("webmail_home"))


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
    user = current_user(request)
    draft = selectors.get_draft(user, draft_id)
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
    return redirect(_draft_url(draft))


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
    return redirect(_draft_url(draft))


@verified_required("professional")
@require_GET
def draft_attachment_view(request: HttpRequest, draft_id: int, attachment_id: int) -> HttpResponse:
    att = selectors.get_draft_attachment(current_user(request), draft_id, attachment_id)
    return download_response(services.read_draft_attachment(att), att.filename)


# --------------------------------------------------------------------------- patient record (XDM)


def _xdm_files(draft: Draft) -> list[tuple[int, str]]:
    return [
        (f.pk, f.filename)
        for f in draft.files.order_by("pk")
        if f.filename.lower().endswith((".pdf", ".xml"))
        or f.content_type.lower() in ("application/pdf", *XML_TYPES)
    ]


def _patient_label(identity: PatientIdentity) -> str:
    return f"{identity.first_names} {identity.birth_name} — {identity.birth_date:%d/%m/%Y} — INS {identity.ins}"


def _xdm_patient(form: XdmForm, patients: dict[int, PatientIdentity]) -> xdm.Patient:
    data = form.cleaned_data
    identity = patients.get(data["patient"]) if data.get("patient") else None
    if identity is not None:
        return xdm.Patient(
            ins=identity.ins,
            oid=identity.oid,
            birth_name=identity.birth_name,
            first_names=identity.first_names,
            birth_date=identity.birth_date.strftime("%Y%m%d"),
            sex=identity.sex,
            qualified=identity.qualified,
        )
    return xdm.Patient(
        ins=data["ins"],
        oid=data["oid"],
        birth_name=data["birth_name"].strip().upper(),
        first_names=data["first_names"].strip(),
        birth_date=data["birth_date"].strftime("%Y%m%d"),
        sex=data["sex"],
        qualified=bool(data.get("qualified")),
    )


@verified_required("professional")
@require_http_methods(["GET", "POST"])
def draft_xdm_view(request: HttpRequest, draft_id: int) -> HttpResponse:
    """ "Joindre au dossier du patient": build IHE_XDM.ZIP into the draft, record its headers."""
    user = current_user(request)
    draft = selectors.get_draft(user, draft_id)
    content = services.open_draft(draft)
    known = selectors.patients_written_to(draft.mailbox, content.to + content.cc)
    patients = {p.pk: p for p in known}
    recipients = [
        r.identity
        for r in selectors.patients_among(content.to + content.cc)
        if r.identity is not None
    ]
    choices = [(p.pk, _patient_label(p)) for p in known]
    files = _xdm_files(draft)
    form = XdmForm(
        request.POST if request.method == "POST" else None,
        patients=choices,
        files=files,
        # The one patient among the recipients, if there is one, is proposed first.
        initial={"patient": recipients[0].pk if len(recipients) == 1 else None},
    )
    if request.method == "POST" and form.is_valid():
        try:
            services.attach_xdm_package(
                draft,
                by=user,
                patient=_xdm_patient(form, patients),
                type_code=form.cleaned_data["type_code"],
                attachment_ids=form.cleaned_data.get("attachments") or [],
                uploads=request.FILES.getlist("files"),
            )
        except services.DraftError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Documents joints au dossier du patient (IHE_XDM.ZIP)."))
            return redirect(_draft_url(draft))
    return render_webmail(
        request,
        "mailboxes/xdm.html",
        draft.mailbox,
        {"draft": draft, "form": form, "has_files": bool(files)},
        current_folder=selectors.system_folder(draft.mailbox, Folder.Role.DRAFTS),
        status=400 if request.method == "POST" else 200,
    )
