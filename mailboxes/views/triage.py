"""Triage: actions on a selection, "tout marquer comme lu", new mail, results by patient."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.http import require_GET, require_POST

from accounts.access import verified_required
from mailboxes import listing, selectors
from mailboxes.forms import MoveForm
from mailboxes.models import Folder
from mailboxes.services import bulk
from mailboxes.views._common import (
    back_url,
    current_user,
    folder_url,
    mailbox_home_url,
    render_webmail,
)
from mailboxes.views._sorting import list_url
from mailboxes.views.messages import rows


def _back(request: HttpRequest, fallback: str) -> str:
    """The list the form came from: a path of ours (anything else, the fallback)."""
    target = back_url(request, fallback)
    return target if target.startswith("/") and not target.startswith("//") else fallback


def _done(action: bulk.Action, count: int, folder: str = "") -> str:
    if action == bulk.Action.READ:
        return ngettext(
            "%(count)s message marqué comme lu.", "%(count)s messages marqués comme lus.", count
        ) % {"count": count}
    if action == bulk.Action.UNREAD:
        return ngettext(
            "%(count)s message marqué comme non lu.",
            "%(count)s messages marqués comme non lus.",
            count,
        ) % {"count": count}
    if action == bulk.Action.FLAG:
        return ngettext("%(count)s message suivi.", "%(count)s messages suivis.", count) % {
            "count": count
        }
    if action == bulk.Action.UNFLAG:
        return ngettext(
            "Suivi retiré de %(count)s message.", "Suivi retiré de %(count)s messages.", count
        ) % {"count": count}
    if action in (bulk.Action.MOVE, bulk.Action.ARCHIVE):
        return ngettext(
            "%(count)s message déplacé dans « %(folder)s ».",
            "%(count)s messages déplacés dans « %(folder)s ».",
            count,
        ) % {"count": count, "folder": folder}
    if action == bulk.Action.TRASH:
        return ngettext(
            "%(count)s message mis à la corbeille.", "%(count)s messages mis à la corbeille.", count
        ) % {"count": count}
    if action == bulk.Action.RESTORE:
        return ngettext("%(count)s message restauré.", "%(count)s messages restaurés.", count) % {
            "count": count
        }
    return ngettext(
        "%(count)s message supprimé définitivement.",
        "%(count)s messages supprimés définitivement.",
        count,
    ) % {"count": count}


@verified_required("professional")
@require_POST
def bulk_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """The selection toolbar's one form: ``action``, the ``entries`` ticked, a ``folder``."""
    user = current_user(request)
    mailbox = selectors.get_mailbox(user, mailbox_id)
    back = _back(request, mailbox_home_url(mailbox))
    try:
        action, folder_id = bulk.parse_action(request.POST.get("action"))
        ids = bulk.parse_ids(request.POST.getlist("entries"))
    except bulk.BulkError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    target: Folder | None = None
    if action == bulk.Action.MOVE:
        folder_id = folder_id or request.POST.get("folder", "")
        if not folder_id:
            messages.error(request, _("Choisissez le dossier où déplacer les messages."))
            return redirect(back)
        form = MoveForm({"folder": folder_id}, mailbox_id=mailbox.pk)
        if not form.is_valid():
            # A folder of another box is not found, like any foreign id.
            raise Http404
        target = form.cleaned_data["folder"]
    if action == bulk.Action.DELETE and request.POST.get("confirm") != "1":
        # Deleting for good asks first, also without JavaScript: the same form, confirmed.
        selectors.require(user, mailbox, selectors.Access.MANAGE)
        return render_webmail(
            request,
            "mailboxes/triage_confirm.html",
            mailbox,
            {"ids": ids, "back": back, "count": len(ids)},
        )
    try:
        count = bulk.apply(mailbox, action, ids, by=user, folder=target)
    except bulk.BulkError as exc:
        messages.error(request, str(exc))
        return redirect(back)
    if action == bulk.Action.ARCHIVE:
        archive = selectors.system_folder(mailbox, Folder.Role.ARCHIVE)
        label = selectors.folder_label(archive) if archive else ""
    else:
        label = selectors.folder_label(target) if target else ""
    messages.success(request, _done(action, count, label))
    return redirect(back)


@verified_required("professional")
@require_POST
def mark_folder_read_view(request: HttpRequest, folder_id: int) -> HttpResponse:
    """ "Tout marquer comme lu": every message of the folder, however many."""
    user = current_user(request)
    folder = selectors.get_folder(user, folder_id)
    count = bulk.mark_folder_read(folder, by=user)
    messages.success(request, _done(bulk.Action.READ, count))
    return redirect(_back(request, folder_url(folder)))


@verified_required("professional")
@require_GET
def new_mail_view(request: HttpRequest, folder_id: int) -> HttpResponse:
    """How many messages arrived after the newest one shown (the list asks every minute)."""
    folder = selectors.get_folder(current_user(request), folder_id)
    count = listing.new_count(folder, request.GET.get("depuis"))
    if count >= listing.NEW_COUNT_CAP:
        text = _("%(count)s nouveaux messages ou plus") % {"count": listing.NEW_COUNT_CAP}
    elif count:
        text = ngettext("%(count)s nouveau message", "%(count)s nouveaux messages", count) % {
            "count": count
        }
    else:
        text = ""
    response = JsonResponse({"count": count, "text": text})
    response["Cache-Control"] = "private, no-store"
    return response


@verified_required("professional")
@require_GET
def patients_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """ "Résultats par patient": the patients the box's results name, with their counts."""
    mailbox = selectors.get_mailbox(current_user(request), mailbox_id)
    return render_webmail(
        request,
        "mailboxes/patients.html",
        mailbox,
        {"patients": listing.patients(mailbox), "limit": listing.MAX_PATIENTS},
    )


@verified_required("professional")
@require_GET
def patient_results_view(request: HttpRequest, mailbox_id: int, ins: str) -> HttpResponse:
    """ "Tous les résultats de ce patient", with the selection's actions."""
    mailbox = selectors.get_mailbox(current_user(request), mailbox_id)
    ins = ins.upper()
    entries = listing.patient_results(mailbox, ins)
    if not entries:
        raise Http404
    names = listing.patient_names({ins})
    return render_webmail(
        request,
        "mailboxes/patient_results.html",
        mailbox,
        {
            "ins": ins,
            "ins_formatted": listing.format_ins(ins),
            "patient_label": listing.patient_label(ins, names),
            "known": ins in names,
            "rows": rows(entries),
            "limit": listing.MAX_PATIENT_RESULTS,
            "selectable": True,
            "select_all": request.GET.get("tout") == "1",
            "select_all_url": f"{request.path}?tout=1",
            "back": list_url(request),
            "patients_url": reverse("webmail_patients", args=[mailbox.pk]),
        },
    )
