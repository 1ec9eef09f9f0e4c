"""A message printed, and its headers and source (issue 14)."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from accounts.access import verified_required
from mailboxes import selectors, services
from mailboxes.services import reading
from mailboxes.views._common import current_user, render_webmail
from mailboxes.views.messages import _shown, is_held
from mssante.errors import storage_unavailable_text


@verified_required("professional")
@require_GET
def print_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The message alone on a page made for paper: headers, body, list of attachments."""
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    services.open_entry(entry, by=user)
    shown = _shown(entry, remote_images=False, heading_base=1)
    return render(request, "mailboxes/print.html", {"entry": entry, "shown": shown, "level": 1})


def _decoded(raw: bytes) -> str:
    # Mail is 7-bit or 8-bit bytes: shown as UTF-8 when it is, byte for byte otherwise.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


@verified_required("professional")
@require_GET
def headers_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """The message's headers and its source as stored (text), for a reader of the box."""
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id)
    if is_held(entry.message):
        # The antivirus held it back: its content is never handed out.
        raise Http404
    raw = reading.read_source(entry, by=user)
    head, _sep, _body = raw.partition(b"\r\n\r\n")
    if len(head) == len(raw):
        head = raw.partition(b"\n\n")[0]
    if request.GET.get("format") == "texte":
        response = HttpResponse(raw, content_type="text/plain; charset=utf-8")
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        # Shown as text, never interpreted: nothing of the message runs in the portal.
        response["Content-Security-Policy"] = "default-src 'none'; sandbox"
        return response
    cut = len(raw) > reading.SOURCE_SHOWN_MAX
    return render_webmail(
        request,
        "mailboxes/headers.html",
        entry.mailbox,
        {
            "entry": entry,
            "headers": _decoded(head[: reading.SOURCE_SHOWN_MAX]),
            "source": _decoded(raw[: reading.SOURCE_SHOWN_MAX]),
            "cut": cut,
        },
        current_folder=entry.folder,
    )


@verified_required("professional")
@require_POST
def invitation_answer_view(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Accepter / Peut-être / Refuser: the box's iTIP REPLY, sent like any message."""
    user = current_user(request)
    entry = selectors.get_entry(user, entry_id, selectors.Access.SEND)
    answer = request.POST.get("answer", "")
    try:
        reading.answer_invitation(entry, answer, by=user, request=request)
    except services.SubmissionError as exc:
        messages.error(request, str(exc))
    except services.BlobStoreUnavailable:
        messages.error(request, storage_unavailable_text())
    else:
        messages.success(request, _("Votre réponse à l'invitation est envoyée."))
    return redirect(reverse("webmail_read", args=[entry.pk]))
