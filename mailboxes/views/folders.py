"""The user's own folders: create, rename, delete when empty."""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.access import verified_required
from mailboxes import selectors, services
from mailboxes.forms import FolderNameForm
from mailboxes.models import Folder
from mailboxes.views._common import current_user, folder_url, mailbox_home_url


def _report_errors(request: HttpRequest, form: FolderNameForm) -> None:
    for errors in form.errors.values():
        for error in errors:
            messages.error(request, str(error))


def _custom_folder(request: HttpRequest, folder_id: int) -> Folder:
    user = current_user(request)
    folder = selectors.get_folder(user, folder_id)
    # A shared box's folders are everyone's: managers and the holder organise them.
    selectors.require(user, folder.mailbox, selectors.Access.MANAGE)
    if folder.role != Folder.Role.CUSTOM:
        # System folders have no rename or delete URL: same answer as a foreign id.
        raise Http404
    return folder


@verified_required("professional")
@require_POST
def create_folder_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    user = current_user(request)
    mailbox = selectors.get_mailbox(user, mailbox_id, selectors.Access.MANAGE)
    form = FolderNameForm(request.POST)
    if not form.is_valid():
        _report_errors(request, form)
        return redirect(mailbox_home_url(mailbox))
    try:
        folder = services.create_folder(mailbox, form.cleaned_data["name"], by=user)
    except services.FolderError as exc:
        messages.error(request, str(exc))
        return redirect(mailbox_home_url(mailbox))
    messages.success(request, _("Dossier « %(name)s » créé.") % {"name": folder.name})
    return redirect(folder_url(folder))


@verified_required("professional")
@require_POST
def rename_folder_view(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = _custom_folder(request, folder_id)
    form = FolderNameForm(request.POST)
    if not form.is_valid():
        _report_errors(request, form)
        return redirect(folder_url(folder))
    try:
        services.rename_folder(folder, form.cleaned_data["name"], by=current_user(request))
    except services.FolderError as exc:
        messages.error(request, str(exc))
        return redirect(folder_url(folder))
    messages.success(request, _("Dossier renommé."))
    return redirect(folder_url(folder))


@verified_required("professional")
@require_POST
def delete_folder_view(request: HttpRequest, folder_id: int) -> HttpResponse:
    folder = _custom_folder(request, folder_id)
    mailbox = folder.mailbox
    try:
        services.delete_folder(folder, by=current_user(request))
    except services.FolderError as exc:
        messages.error(request, str(exc))
        return redirect(folder_url(folder))
    messages.success(request, _("Dossier supprimé."))
    return redirect(mailbox_home_url(mailbox))
