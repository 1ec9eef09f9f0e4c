"""Members and delegations of a mailbox, and its access journal (holder or responsible)."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.access import verified_required
from accounts.identity import resolve
from accounts.models import User
from mailboxes import selectors, services
from mailboxes.forms import JournalFilterForm, MemberForm, MembershipChangeForm
from mailboxes.models import Mailbox, Membership
from mailboxes.views._common import current_user, render_webmail
from mssante.lib.identifiers import IdentifierError


def _roles(mailbox: Mailbox) -> list[tuple[str, str]]:
    if mailbox.kind == Mailbox.Kind.PERSONAL:
        # Delegation of a nominative box: reading or sending on behalf, never managing.
        return [
            (Membership.Role.READ, _("Lecture (lire, classer, marquer)")),
            (Membership.Role.SEND, _("Envoi pour le compte du titulaire")),
        ]
    return [
        (Membership.Role.READ, _("Lecture (lire, classer, marquer)")),
        (Membership.Role.SEND, _("Envoi (lire et envoyer depuis la boîte)")),
        (Membership.Role.MANAGE, _("Gestion (envoyer et gérer les membres)")),
    ]


def _end_of(day: date | None) -> datetime | None:
    """A grant "until" a day lasts until the end of that day, local time."""
    if day is None:
        return None
    return timezone.make_aware(datetime.combine(day + timedelta(days=1), time.min))


def _members_url(mailbox: Mailbox) -> str:
    return reverse("webmail_members", args=[mailbox.pk])


def _members_page(
    request: HttpRequest, mailbox: Mailbox, form: MemberForm, *, status: int = 200
) -> HttpResponse:
    now = timezone.now()
    rows = [
        {
            "membership": m,
            "live": m.is_live(now),
            "form": MembershipChangeForm(
                roles=_roles(mailbox),
                initial={
                    "role": m.role,
                    "expires_on": timezone.localtime(m.expires_at - timedelta(seconds=1)).date()
                    if m.expires_at
                    else None,
                },
                auto_id=f"m{m.pk}-%s",
            ),
        }
        for m in selectors.memberships(mailbox)
    ]
    return render_webmail(
        request,
        "mailboxes/members.html",
        mailbox,
        {"form": form, "rows": rows, "is_personal": mailbox.kind == Mailbox.Kind.PERSONAL},
        status=status,
    )


@verified_required("professional")
@require_http_methods(["GET", "POST"])
def members_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """ "Membres et délégations": the list, and the form adding someone by RPPS or Adeli."""
    user = current_user(request)
    mailbox = selectors.get_mailbox(user, mailbox_id, selectors.Access.MANAGE)
    if request.method != "POST":
        return _members_page(request, mailbox, MemberForm(roles=_roles(mailbox)))
    form = MemberForm(request.POST, roles=_roles(mailbox))
    if not form.is_valid():
        return _members_page(request, mailbox, form, status=400)
    try:
        found = resolve(form.cleaned_data["identifier"])
    except IdentifierError as exc:
        form.add_error("identifier", _(str(exc)))
        return _members_page(request, mailbox, form, status=400)
    member = found.user if found else None
    if member is None or member.kind != User.Kind.PROFESSIONAL:
        form.add_error("identifier", _("Aucun professionnel n'a de compte avec cet identifiant."))
        return _members_page(request, mailbox, form, status=400)
    try:
        services.grant_membership(
            mailbox,
            member,
            form.cleaned_data["role"],
            by=user,
            expires_at=_end_of(form.cleaned_data.get("expires_on")),
            request=request,
        )
    except services.MembershipError as exc:
        form.add_error(None, str(exc))
        return _members_page(request, mailbox, form, status=400)
    messages.success(
        request,
        _("%(name)s a maintenant accès à la boîte.") % {"name": member.get_full_name()},
    )
    return redirect(_members_url(mailbox))


@verified_required("professional")
@require_POST
def member_change_view(request: HttpRequest, mailbox_id: int, membership_id: int) -> HttpResponse:
    user = current_user(request)
    membership = selectors.get_membership(user, mailbox_id, membership_id)
    form = MembershipChangeForm(request.POST, roles=_roles(membership.mailbox))
    if not form.is_valid():
        messages.error(request, _("Choisissez un rôle et une date valides."))
        return redirect(_members_url(membership.mailbox))
    try:
        services.change_membership(
            membership,
            form.cleaned_data["role"],
            by=user,
            expires_at=_end_of(form.cleaned_data.get("expires_on")),
            request=request,
        )
    except services.MembershipError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Accès modifié."))
    return redirect(_members_url(membership.mailbox))


@verified_required("professional")
@require_POST
def member_revoke_view(request: HttpRequest, mailbox_id: int, membership_id: int) -> HttpResponse:
    user = current_user(request)
    membership = selectors.get_membership(user, mailbox_id, membership_id)
    services.revoke_membership(membership, by=user, request=request)
    messages.success(
        request,
        _("Accès retiré à %(name)s.") % {"name": membership.user.get_full_name()},
    )
    if membership.user_id == user.pk:
        # A manager who removed themselves has no business on this page any more.
        return redirect(reverse("webmail_home"))
    return redirect(_members_url(membership.mailbox))


@verified_required("professional")
@require_GET
def journal_view(request: HttpRequest, mailbox_id: int) -> HttpResponse:
    """The access journal of a shared or delegated box, filterable, for its holder."""
    user = current_user(request)
    mailbox = selectors.get_mailbox(user, mailbox_id, selectors.Access.HOLDER)
    form = JournalFilterForm(request.GET or None, actors=selectors.journal_actors(mailbox))
    filters = form.cleaned_data if form.is_bound and form.is_valid() else {}
    since, until = filters.get("since"), filters.get("until")
    events = selectors.access_events(
        mailbox,
        actor_id=filters.get("actor"),
        action=filters.get("action") or "",
        since=timezone.make_aware(datetime.combine(since, time.min)) if since else None,
        until=_end_of(until),
    )
    return render_webmail(
        request,
        "mailboxes/journal.html",
        mailbox,
        {"form": form, "events": events, "limit": selectors.JOURNAL_PAGE},
    )
