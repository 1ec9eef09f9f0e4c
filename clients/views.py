"""The "Logiciels et appareils" page: application passwords and how to set up a client."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST

from accounts import lockout
from accounts.access import verified_required
from clients import selectors, services
from clients.forms import AppPasswordForm
from mailboxes import selectors as mailbox_selectors
from mailboxes.models import Mailbox
from mailboxes.views._common import current_user, render_webmail


def _boxes(request: HttpRequest) -> list[Mailbox]:
    user = current_user(request)
    return list(
        mailbox_selectors.accessible_mailboxes(user)
        .filter(status=Mailbox.Status.ACTIVE)
        .order_by("address")
    )


def _page(
    request: HttpRequest,
    form: AppPasswordForm,
    *,
    created: tuple[object, str] | None = None,
    status: int = 200,
) -> HttpResponse:
    user = current_user(request)
    mailbox = mailbox_selectors.default_mailbox(user)
    if mailbox is None:
        return render(request, "mailboxes/home.html")
    return render_webmail(
        request,
        "clients/app_passwords.html",
        mailbox,
        {
            "form": form,
            "passwords": selectors.app_passwords(user),
            "created": created,
            "app_passwords_page": True,
            "servers": {
                "host": settings.CLIENTS_PUBLIC_HOST,
                "imap_port": settings.IMAP_PUBLIC_PORT,
                "submission_port": settings.SUBMISSION_PUBLIC_PORT,
                "submission_tls_port": settings.SUBMISSION_TLS_PUBLIC_PORT,
            },
        },
        status=status,
    )


@never_cache
@verified_required("professional")
@require_http_methods(["GET", "POST"])
def app_passwords_view(request: HttpRequest) -> HttpResponse:
    """List, and create (second factor again) the user's application passwords."""
    user = current_user(request)
    if request.method == "GET":
        return _page(request, AppPasswordForm(boxes=_boxes(request)))
    form = AppPasswordForm(request.POST, boxes=_boxes(request))
    if form.is_valid():
        verdict = lockout.verify_code(request, user, form.cleaned_data["code"].strip())
        if verdict.device is None:
            form.add_error(
                "code",
                _("Trop d'essais : réessayez dans quelques minutes.")
                if verdict.locked or verdict.retry_at
                else _(
                    "Ce code n'est pas le bon : saisissez le code affiché par votre application."
                ),
            )
    if not form.is_valid():
        return _page(request, form, status=400)
    try:
        password, raw = services.create_app_password(
            user,
            label=form.cleaned_data["label"],
            scope=form.cleaned_data["scope"],
            mailbox=form.chosen_box(),
            request=request,
        )
    except services.AppPasswordError as exc:
        form.add_error(None, str(exc))
        return _page(request, form, status=400)
    # Shown once, in this answer only (never stored in clear, never in the session).
    return _page(request, AppPasswordForm(boxes=_boxes(request)), created=(password, raw))


@verified_required("professional")
@require_POST
def revoke_view(request: HttpRequest, password_id: int) -> HttpResponse:
    user = current_user(request)
    password = selectors.get_app_password(user, password_id)
    services.revoke_app_password(password, by=user, request=request)
    messages.success(
        request,
        _("« %(label)s » ne peut plus se connecter.") % {"label": password.label},
    )
    return redirect(reverse("clients:app_passwords"))
