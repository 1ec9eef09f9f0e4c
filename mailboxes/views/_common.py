"""Helpers shared by the webmail views: the current user, the side menu, safe redirects."""

from __future__ import annotations

from typing import Any, cast

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme

from accounts.models import User
from mailboxes import selectors
from mailboxes.forms import FolderNameForm
from mailboxes.models import Folder, Mailbox


def current_user(request: HttpRequest) -> User:
    # verified_required has already refused anonymous users.
    return cast(User, request.user)


def folder_url(folder: Folder) -> str:
    return reverse("webmail_folder", args=[folder.pk])


def mailbox_home_url(mailbox: Mailbox) -> str:
    inbox = selectors.system_folder(mailbox, Folder.Role.INBOX)
    return folder_url(inbox) if inbox else reverse("webmail_home")


def back_url(request: HttpRequest, fallback: str) -> str:
    """Where to go after a write: the page the form names, when it is one of ours."""
    target = request.POST.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def render_webmail(
    request: HttpRequest,
    template: str,
    mailbox: Mailbox,
    context: dict[str, Any],
    *,
    current_folder: Folder | None = None,
    status: int = 200,
) -> HttpResponse:
    """Render a webmail page with its side menu (folders and their counts)."""
    user = current_user(request)
    folders = selectors.folders_with_counts(mailbox)
    level = selectors.access(user, mailbox)
    full = {
        "mailbox": mailbox,
        "folders": folders,
        "custom_folders": [f.folder for f in folders if f.folder.role == Folder.Role.CUSTOM],
        "draft_count": selectors.draft_count(mailbox, user),
        "switcher": selectors.switcher(user),
        "can_send": level is not None and level >= selectors.Access.SEND,
        "can_manage": level is not None and level >= selectors.Access.MANAGE,
        "is_holder": level == selectors.Access.HOLDER,
        "is_shared": mailbox.owner_id != user.pk,
        "current_folder": current_folder,
        "new_folder_form": FolderNameForm(auto_id="new-folder-%s"),
        **context,
    }
    return render(request, template, full, status=status)
